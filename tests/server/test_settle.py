"""At shutdown the lifespan waits (``LanewayApp.settle``, at most 1 s) for requests the
server has just cancelled to finish their cleanup — each writes its ledger row in a
``finally`` — before it closes the ledger; it closed it at once, and a row recorded after
that was lost (seen on the relayed /v1/responses path by the SDK fault sweep)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.applications import Starlette

from laneway.server._app import LanewayApp


def _app(hold_s: float) -> LanewayApp:
    app = LanewayApp(Starlette(), gateway=None)  # type: ignore[arg-type]

    async def handler(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(hold_s)  # a request still cleaning up

    app._http = handler  # type: ignore[method-assign]
    return app


async def _settle_while(app: LanewayApp, limit_s: float) -> tuple[float, asyncio.Task[None]]:
    task = asyncio.ensure_future(app({"type": "http"}, None, None))  # type: ignore[arg-type]
    await asyncio.sleep(0)  # the request has started
    assert app.open_requests == 1
    started = time.monotonic()
    await app.settle(limit_s)
    return time.monotonic() - started, task


def test_settle_waits_for_open_requests_to_finish() -> None:
    async def main() -> None:
        app = _app(0.05)
        waited, task = await _settle_while(app, limit_s=5.0)
        assert task.done() and app.open_requests == 0
        assert waited < 2.0

    asyncio.run(main())


def test_settle_gives_up_at_its_limit() -> None:
    async def main() -> None:
        app = _app(30.0)
        waited, task = await _settle_while(app, limit_s=0.1)
        assert 0.09 <= waited < 5.0 and app.open_requests == 1
        task.cancel()

    asyncio.run(main())


def test_settle_returns_at_once_when_nothing_is_open() -> None:
    async def main() -> None:
        started = time.monotonic()
        await _app(0).settle(5.0)
        assert time.monotonic() - started < 1.0

    asyncio.run(main())
