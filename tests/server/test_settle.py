"""At shutdown the lifespan waits (``LanewayApp.settle``, at most 1 s) for requests the
server has just cancelled to finish their cleanup — each writes its ledger row in a
``finally`` — before it closes the ledger; it closed it at once, and a row recorded after
that was lost (seen on the relayed /v1/responses path by the SDK fault sweep)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from laneway.server._app import LanewayApp
from laneway.settings import default_settings


def _app(hold_s: float) -> LanewayApp:
    async def slow(request: Request) -> Response:
        await asyncio.sleep(hold_s)  # a request still cleaning up
        return Response(b"")

    gateway = SimpleNamespace(settings=default_settings(env={}))
    return LanewayApp(Starlette(routes=[Route("/slow", slow)]), gateway)  # type: ignore[arg-type]


async def _settle_while(app: LanewayApp, limit_s: float) -> tuple[float, asyncio.Task[None]]:
    scope = {"type": "http", "method": "GET", "path": "/slow", "headers": [],
             "query_string": b""}  # fmt: skip
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    task = asyncio.ensure_future(app(scope, receive, send))
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
