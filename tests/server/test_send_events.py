"""send_events: ready SSE events leave in one write, held ones before the source waits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from laneway.server._render import send_events


class Recorder:
    """An ASGI ``send`` that keeps each body write; ``fail`` makes the next write raise."""

    def __init__(self) -> None:
        self.writes: list[tuple[bytes, bool]] = []
        self.wrote = asyncio.Event()
        self.fail: BaseException | None = None

    async def __call__(self, message: Any) -> None:
        if self.fail is not None:
            raise self.fail
        self.writes.append((message["body"], message["more_body"]))
        self.wrote.set()


def _same(event: bytes) -> bytes:
    return event


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 5))


def test_ready_events_leave_in_one_write_and_waits_split_them() -> None:
    async def scenario() -> list[tuple[bytes, bool]]:
        gate = asyncio.Event()
        send = Recorder()

        async def events() -> AsyncGenerator[bytes, None]:
            yield b"a"
            yield b"b"
            await gate.wait()  # held a+b must be written before this wait ends
            yield b"c"
            yield b""  # nothing to write: skipped
            yield b"d"

        async def open_gate() -> None:
            await send.wrote.wait()
            gate.set()

        opener = asyncio.ensure_future(open_gate())
        await send_events(events(), _same, send)
        await opener
        return send.writes

    assert run(scenario()) == [(b"ab", True), (b"cd", False)]


def test_every_wait_flushes_so_a_trickle_is_written_event_by_event() -> None:
    async def scenario() -> list[tuple[bytes, bool]]:
        send = Recorder()

        async def events() -> AsyncGenerator[bytes, None]:
            for piece in (b"1", b"2", b"3"):
                await asyncio.sleep(0)
                yield piece

        await send_events(events(), _same, send)
        return send.writes

    assert run(scenario()) == [(b"1", True), (b"2", True), (b"3", False)]


def test_an_empty_source_ends_the_body() -> None:
    async def events() -> AsyncGenerator[bytes, None]:
        return
        yield b""  # pragma: no cover

    send = Recorder()
    run(send_events(events(), _same, send))
    assert send.writes == [(b"", False)]


def test_a_large_ready_batch_is_split_at_the_batch_size() -> None:
    big = b"x" * 20_000

    async def events() -> AsyncGenerator[bytes, None]:
        for _ in range(4):
            yield big

    send = Recorder()
    run(send_events(events(), _same, send))
    assert [len(body) for body, _ in send.writes] == [40_000, 40_000, 0]
    assert b"".join(body for body, _ in send.writes) == big * 4
    assert [more for _, more in send.writes] == [True, True, False]


def test_a_source_error_after_a_wait_propagates_and_held_events_were_written() -> None:
    async def events() -> AsyncGenerator[bytes, None]:
        yield b"a"
        await asyncio.sleep(0)
        raise RuntimeError("boom")

    send = Recorder()
    with pytest.raises(RuntimeError, match="boom"):
        run(send_events(events(), _same, send))
    assert send.writes == [(b"a", True)]


def test_a_failed_write_cancels_the_waiting_source_where_it_waits() -> None:
    seen: list[str] = []

    async def scenario() -> None:
        send = Recorder()
        never = asyncio.Event()

        async def events() -> AsyncGenerator[bytes, None]:
            yield b"a"
            try:
                await never.wait()
            except asyncio.CancelledError:
                seen.append("cancelled at its wait")
                await asyncio.sleep(0)  # clean-up may await
                seen.append("cleaned up")
                raise
            yield b"never"  # pragma: no cover

        send.fail = OSError("client gone")
        await send_events(
            events(), _same, send, before_cancel=lambda exc: seen.append(f"told {exc}")
        )

    with pytest.raises(OSError, match="client gone"):
        run(scenario())
    assert seen == ["told client gone", "cancelled at its wait", "cleaned up"]


def test_cancelling_the_task_reaches_the_source_where_it_waits() -> None:
    seen: list[str] = []

    async def scenario() -> None:
        send = Recorder()

        async def events() -> AsyncGenerator[bytes, None]:
            yield b"a"
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise
            yield b"never"  # pragma: no cover

        task = asyncio.ensure_future(send_events(events(), _same, send))
        await send.wrote.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert send.writes == [(b"a", True)]

    run(scenario())
    assert seen == ["cancelled"]


def test_a_source_that_turns_a_cancellation_into_a_last_event_still_sends_it() -> None:
    """The shutdown path of the stream loop: cancelled, it yields an error event and ends."""

    async def scenario() -> list[tuple[bytes, bool]]:
        send = Recorder()

        async def events() -> AsyncGenerator[bytes, None]:
            yield b"a"
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                current = asyncio.current_task()
                assert current is not None
                current.uncancel()
                yield b"error"

        task = asyncio.ensure_future(send_events(events(), _same, send))
        await send.wrote.wait()
        task.cancel()
        await task
        return send.writes

    assert run(scenario()) == [(b"a", True), (b"error", False)]


def test_held_bytes_go_out_with_the_first_ready_items_and_render_is_applied() -> None:
    async def events() -> AsyncGenerator[int, None]:
        yield 1
        yield 2
        await asyncio.sleep(0)
        yield 3

    send = Recorder()
    run(send_events(events(), lambda n: b"<%d>" % n, send, held=b"first"))
    assert send.writes == [(b"first<1><2>", True), (b"<3>", False)]


def test_a_render_failure_leaves_the_source_at_its_yield() -> None:
    """What render raises comes out between steps: the source can still be thrown into
    (the SSE response hands a rendering failure to the core's stream that way)."""

    async def scenario() -> str:
        got: list[str] = []

        async def events() -> AsyncGenerator[bytes, None]:
            try:
                yield b"bad"
            except ValueError as exc:
                got.append(str(exc))
                yield b"error event"

        def render(event: bytes) -> bytes:
            raise ValueError("cannot render")

        source = events()
        send = Recorder()
        with pytest.raises(ValueError, match="cannot render"):
            await send_events(source, render, send, held=b"first")
        assert send.writes == [(b"first", True)]  # what was held went out before
        assert await source.athrow(ValueError("handed back")) == b"error event"
        return got[0]

    assert run(scenario()) == "handed back"
