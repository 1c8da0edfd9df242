"""The bare passthrough of the benchmark: the floor any gateway is compared against.

A Starlette app that forwards the raw request body to an upstream with one shared
``aiohttp.ClientSession`` and returns the raw bytes: no JSON parsing, no policy, no ledger.
An SSE answer (``text/event-stream``) is relayed chunk by chunk as it arrives.

``python benchmarks/_passthrough.py --port P --upstream http://127.0.0.1:U [--upstream ...]``
runs it under uvicorn (uvloop + httptools, one worker). The ``i``-th ``--upstream`` is
served at ``/u{i}/v1/chat/completions``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

__all__ = ["build_app", "main"]

_FORWARDED = ("content-type", "authorization")


def build_app(upstreams: list[str]) -> Starlette:
    """The passthrough app; ``upstreams`` are base URLs (``http://127.0.0.1:PORT``)."""
    holder: dict[str, aiohttp.ClientSession] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=60)
        holder["session"] = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        try:
            yield
        finally:
            await holder["session"].close()

    async def chat(request: Request) -> Response:
        base = upstreams[int(request.path_params["slot"])]
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k in _FORWARDED}
        upstream = await holder["session"].post(
            f"{base}/v1/chat/completions", data=body, headers=headers
        )
        media_type = upstream.headers.get("content-type", "application/json")
        if media_type.startswith("text/event-stream"):

            async def relay() -> AsyncIterator[bytes]:
                try:
                    async for chunk in upstream.content.iter_any():
                        yield chunk
                finally:
                    upstream.release()

            return StreamingResponse(relay(), status_code=upstream.status, media_type=media_type)
        try:
            payload = await upstream.read()
        finally:
            upstream.release()
        return Response(payload, status_code=upstream.status, media_type=media_type)

    async def health(request: Request) -> Response:
        return Response(b"ok", media_type="text/plain")

    return Starlette(
        routes=[
            Route("/u{slot:int}/v1/chat/completions", chat, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", action="append", required=True)
    args = parser.parse_args(argv)
    uvicorn.run(
        build_app(args.upstream),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
