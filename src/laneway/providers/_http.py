"""The upstream HTTP client: a small protocol of our own, and its aiohttp implementation.

Adapters receive an :class:`UpstreamClient`; nothing builds a client at import time.
Transport failures are mapped to Laneway's exception tree here, in one place, by
exception type: connection problems → ``UpstreamConnectionError``, time-outs (connect,
read, stream idle, a stream's maximum duration) → ``UpstreamTimeout``; a body past its
size limit (:data:`MAX_RESPONSE_BYTES`) → ``UpstreamBadResponse``, as a stream event past
``MAX_EVENT_BYTES`` is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from yarl import URL

from laneway.errors import UpstreamBadResponse, UpstreamConnectionError, UpstreamTimeout
from laneway.providers._sse import MAX_EVENT_BYTES, event_too_large

__all__ = [
    "EMBEDDING_BYTES_PER_INPUT",
    "MAX_RESPONSE_BYTES",
    "AiohttpUpstream",
    "Timeouts",
    "UpstreamClient",
    "UpstreamResponse",
    "UpstreamStream",
    "response_limit",
]


MAX_RESPONSE_BYTES = 32 * 1024 * 1024
"""The most a whole upstream body read at once may hold (a non-streamed answer, or the
error body of a stream), decoded: far above any real answer (128k tokens of text are
well under 1 MiB; with 20 top logprobs per token, 16k tokens are ~20 MiB), and a bound on
what a broken or hostile upstream sending gigabytes, or a chunked body without end, can
make the gateway buffer. Over it: ``UpstreamBadResponse`` (502), the connection dropped."""

EMBEDDING_BYTES_PER_INPUT = 128 * 1024
"""What one input may add to the limit of an embeddings answer, whose size grows with its
inputs: 4096 floats in pretty-printed JSON are ~90 KiB, and 2048 inputs (OpenAI's
maximum, sent in one call) of 3072 dimensions make ~140 MiB."""


def response_limit(inputs: int = 0) -> int:
    """The most an answer's body may hold: :data:`MAX_RESPONSE_BYTES`, and
    :data:`EMBEDDING_BYTES_PER_INPUT` more per input of an embeddings call."""
    return MAX_RESPONSE_BYTES + inputs * EMBEDDING_BYTES_PER_INPUT


def _size(limit: int) -> str:
    mib = 1024 * 1024
    return f"{limit // mib} MiB" if limit % mib == 0 else f"{limit} bytes"


def body_too_large(limit: int, status: int) -> UpstreamBadResponse:
    return UpstreamBadResponse(
        f"upstream response body exceeds {_size(limit)}", upstream_status=status
    )


async def _read_limited(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, or ``UpstreamBadResponse`` (the connection closed) once more than
    ``limit`` bytes arrived, or at once when ``Content-Length`` says so. The loop is
    aiohttp's own ``read()`` (``readany`` until the end) with a count."""
    length = response.content_length
    if length is not None and length > limit:
        response.close()
        raise body_too_large(limit, response.status)
    read = response.content.readany
    blocks: list[bytes] = []
    size = 0
    while block := await read():
        size += len(block)
        if size > limit:
            response.close()
            raise body_too_large(limit, response.status)
        blocks.append(block)
    return blocks[0] if len(blocks) == 1 else b"".join(blocks)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. ``read`` bounds a whole non-streaming try; for streams ``idle`` bounds
    each wait for the next bytes (the first byte included) and ``stream`` the whole
    stream, however steadily it drips."""

    connect: float = 10.0
    read: float = 120.0
    idle: float = 60.0
    stream: float = 600.0


@dataclass(slots=True)  # a value; not frozen because a frozen __init__ is slow
class UpstreamResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


class UpstreamStream(Protocol):
    status: int
    headers: Mapping[str, str]

    async def read_body(self) -> bytes: ...

    def lines(self) -> AsyncIterator[bytes]:
        """The body split into lines (without the line ending), as it arrives."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """The body in the pieces it arrives in (all that is buffered, each time)."""
        ...


class UpstreamClient(Protocol):
    async def post(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        timeouts: Timeouts,
        *,
        limit: int | None = None,
    ) -> UpstreamResponse:
        """The whole answer; ``limit``: the most its body may hold (default
        :func:`response_limit`; ``UpstreamBadResponse`` past it)."""
        ...

    def post_stream(
        self, url: str, headers: Mapping[str, str], body: bytes, timeouts: Timeouts
    ) -> AbstractAsyncContextManager[UpstreamStream]: ...

    async def close(self) -> None: ...


class _Chunks:
    """The body's pieces as they arrive (``iter_any``), transport errors mapped. A class,
    not an async generator: a reader that stops at ``[DONE]`` leaves it unfinished, and an
    unfinished async generator costs a task to close when it is collected."""

    __slots__ = ("_read",)

    def __init__(self, content: aiohttp.StreamReader) -> None:
        self._read = content.readany

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._read()
        except TimeoutError as exc:
            raise UpstreamTimeout("upstream stream stalled") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamConnectionError(f"upstream stream broke: {type(exc).__name__}") from exc
        if not chunk:  # the body's end
            raise StopAsyncIteration
        return chunk


class _AiohttpStream:
    def __init__(self, response: aiohttp.ClientResponse, limit: float, deadline: float) -> None:
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        self._limit = limit
        # One timer per stream (not a check per chunk): at the deadline the body reader
        # fails with UpstreamTimeout, so the wait in progress ends at once.
        loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        self._timer = None
        self._response.content.set_exception(
            UpstreamTimeout(f"the stream ran past its maximum duration ({self._limit:g} s)")
        )

    def cancel_deadline(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def read_body(self) -> bytes:
        try:
            return await _read_limited(self._response, response_limit())
        except TimeoutError as exc:
            raise UpstreamTimeout("upstream stalled while sending its body") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamConnectionError(
                f"upstream connection failed: {type(exc).__name__}"
            ) from exc

    def chunks(self) -> AsyncIterator[bytes]:
        return _Chunks(self._response.content)

    async def lines(self) -> AsyncIterator[bytes]:
        buffer = b""
        try:
            async for chunk in self._response.content.iter_any():
                buffer += chunk
                if b"\n" not in chunk:
                    if len(buffer) > MAX_EVENT_BYTES:  # a line that never ends
                        raise event_too_large()
                    continue
                *complete, buffer = buffer.split(b"\n")
                for line in complete:
                    yield line.rstrip(b"\r")
        except TimeoutError as exc:
            raise UpstreamTimeout("upstream stream stalled") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamConnectionError(f"upstream stream broke: {type(exc).__name__}") from exc
        if buffer:
            yield buffer.rstrip(b"\r")


# How long a stream read to its end (``[DONE]``) may wait for the body's last bytes.
_LINGER_S = 1.0


class AiohttpUpstream:
    """:class:`UpstreamClient` over one shared ``aiohttp.ClientSession``.

    The session is created on first use inside the running event loop.
    """

    def __init__(self, *, limit: int = 1000) -> None:
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[Timeouts, aiohttp.ClientTimeout] = {}
        self._stream_timeouts: dict[Timeouts, aiohttp.ClientTimeout] = {}
        self._urls: dict[str, URL] = {}
        # Streams read to their end whose body's last bytes had not arrived yet: closed by a
        # timer, or by close() (a timer that never fires would leave the connection open).
        self._lingering: dict[aiohttp.ClientResponse, asyncio.TimerHandle] = {}

    def _url(self, url: str) -> URL:
        """The parsed URL, kept per string: aiohttp would parse the same upstream URL on
        every request (~4% of a call's CPU). Upstream URLs come from the config only."""
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = URL(url)
            if len(self._urls) < 4096:
                self._urls[url] = parsed
        return parsed

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._limit, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=True, trust_env=False
            )
        return self._session

    async def post(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        timeouts: Timeouts,
        *,
        limit: int | None = None,
    ) -> UpstreamResponse:
        timeout = self._timeouts.get(timeouts)
        if timeout is None:
            # sock_connect, not connect: it bounds opening a socket only, so a pooled
            # connection costs no second timer per request
            timeout = aiohttp.ClientTimeout(total=timeouts.read, sock_connect=timeouts.connect)
            self._timeouts[timeouts] = timeout
        try:
            async with self._get_session().post(
                self._url(url), data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                data = await _read_limited(response, response_limit() if limit is None else limit)
                return UpstreamResponse(response.status, response.headers, data)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"upstream did not answer within {timeouts.read:g} s") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamConnectionError(
                f"upstream connection failed: {type(exc).__name__}"
            ) from exc

    @asynccontextmanager
    async def post_stream(
        self, url: str, headers: Mapping[str, str], body: bytes, timeouts: Timeouts
    ) -> AsyncIterator[UpstreamStream]:
        timeout = self._stream_timeouts.get(timeouts)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=timeouts.connect, sock_read=timeouts.idle
            )
            self._stream_timeouts[timeouts] = timeout
        deadline = asyncio.get_running_loop().time() + timeouts.stream
        try:
            response = await self._get_session().post(
                self._url(url), data=body, headers=headers, timeout=timeout, allow_redirects=False
            )
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"upstream sent no response headers within {timeouts.idle:g} s"
            ) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamConnectionError(
                f"upstream connection failed: {type(exc).__name__}"
            ) from exc
        stream = _AiohttpStream(response, timeouts.stream, deadline)
        try:
            yield stream
        except BaseException:  # cut short (an error, the client gone): drop the connection
            stream.cancel_deadline()
            response.close()
            raise
        stream.cancel_deadline()
        self._release(response)

    def _release(self, response: aiohttp.ClientResponse) -> None:
        """After a stream its reader finished: the connection goes back to the pool as soon
        as the body has ended (aiohttp releases it at the end of the body). The reader stops
        at the answer's last event, often just before the body's closing bytes arrive;
        closing then would cost the next stream a new connection (more CPU than all its
        chunks), so the connection is closed only if the body has not ended ``_LINGER_S``
        later (or when this client closes)."""
        if response.content.is_eof():
            response.release()
            return
        loop = asyncio.get_running_loop()
        self._lingering[response] = loop.call_later(_LINGER_S, self._linger_over, response)

    def _linger_over(self, response: aiohttp.ClientResponse) -> None:
        self._lingering.pop(response, None)
        response.close()

    async def close(self) -> None:
        for response, timer in self._lingering.items():
            timer.cancel()
            response.close()
        self._lingering.clear()
        if self._session is not None and not self._session.closed:
            await self._session.close()
            await asyncio.sleep(0)
