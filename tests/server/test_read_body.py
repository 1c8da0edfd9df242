"""The request body read (``server._chat._read_body``): a body that came with the headers
is taken without arming the body-deadline timer; one still arriving is read under the
deadline (408 when it stalls or never starts); a body over the limit, declared or read, is
413; a client that leaves is ``ClientDisconnect``; a cancelled read is a cancellation, not
a 408."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest
from starlette.requests import ClientDisconnect

from laneway.errors import PayloadTooLarge, RequestTimeout
from laneway.server._chat import _read_body

Message = dict[str, Any]


def receiver(items: list[Message | float]) -> Callable[[], Awaitable[Message]]:
    """ASGI ``receive`` giving ``items`` in order; a float first sleeps that long; with
    nothing left it waits (a client that sends no more)."""
    queue = list(items)

    async def receive() -> Message:
        if not queue:
            await asyncio.sleep(3600)
        item = queue.pop(0)
        if isinstance(item, float):
            await asyncio.sleep(item)
            item = queue.pop(0)
        assert isinstance(item, dict)
        return item

    return receive


def run(coro: Coroutine[Any, Any, bytes]) -> bytes:
    return asyncio.run(coro)


def part(body: bytes, more: bool) -> Message:
    return {"type": "http.request", "body": body, "more_body": more}


def test_a_body_that_came_with_the_headers_is_taken_whole() -> None:
    assert run(_read_body(receiver([part(b"abc", False)]), "3", 10, 1.0)) == b"abc"


def test_a_body_in_parts_is_joined() -> None:
    r = receiver([part(b"ab", True), part(b"cd", False)])
    assert run(_read_body(r, None, 10, 1.0)) == b"abcd"


def test_a_body_still_on_its_way_is_waited_for() -> None:
    assert run(_read_body(receiver([0.01, part(b"xy", False)]), None, 10, 1.0)) == b"xy"


def test_a_body_that_stalls_after_its_first_part_is_408() -> None:
    with pytest.raises(RequestTimeout):
        run(_read_body(receiver([part(b"ab", True)]), None, 10, 0.05))


def test_a_body_that_never_starts_is_408() -> None:
    with pytest.raises(RequestTimeout):
        run(_read_body(receiver([]), None, 10, 0.05))


def test_a_body_read_over_the_limit_is_413() -> None:
    with pytest.raises(PayloadTooLarge):
        run(_read_body(receiver([part(b"x" * 11, False)]), None, 10, 1.0))


def test_a_declared_length_over_the_limit_is_413_before_reading() -> None:
    with pytest.raises(PayloadTooLarge):
        run(_read_body(receiver([]), "11", 10, 1.0))


def test_a_client_that_leaves_first_is_a_disconnect() -> None:
    with pytest.raises(ClientDisconnect):
        run(_read_body(receiver([{"type": "http.disconnect"}]), None, 10, 1.0))


def test_without_a_deadline_the_read_waits() -> None:
    r = receiver([0.01, part(b"ab", True), part(b"c", False)])
    assert run(_read_body(r, None, 10, None)) == b"abc"


def test_a_cancelled_read_is_a_cancellation_not_a_408() -> None:
    async def main() -> None:
        task = asyncio.ensure_future(_read_body(receiver([]), None, 10, 5.0))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
