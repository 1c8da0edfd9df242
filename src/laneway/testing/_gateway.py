"""Run a gateway app on a real loopback port in a background thread (for tests and
benchmarks), so that real clients such as the official ``openai`` SDK can call it."""

from __future__ import annotations

import socket
import threading
import time
from typing import Self

import uvicorn
from starlette.types import ASGIApp

__all__ = ["RunningGateway"]


class RunningGateway:
    """``with RunningGateway(app) as gw: OpenAI(base_url=gw.base_url, api_key="x")``.

    :meth:`stop` lets requests in flight finish for ``graceful_shutdown_s``, then cancels
    them (as ``laneway serve`` does after ``server.graceful_shutdown_s``)."""

    def __init__(
        self, app: ASGIApp, *, log_level: str = "warning", graceful_shutdown_s: float = 5
    ) -> None:
        self.app = app
        self.port = 0
        self._server = uvicorn.Server(
            uvicorn.Config(
                app,
                log_level=log_level,
                lifespan="on",
                access_log=False,
                # annotated int; uvicorn waits with asyncio.wait_for, which takes a float
                timeout_graceful_shutdown=graceful_shutdown_s,  # type: ignore[arg-type]
            )
        )
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._socket = sock
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the gateway failed to start (see the log above)")
            if time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start within 60 s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
