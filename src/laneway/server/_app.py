"""The ASGI application factory and the small endpoints (models, health, metrics)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from itertools import chain

import orjson
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from laneway.catalog import Catalog
from laneway.errors import (
    HeadersTooLarge,
    InvalidRequest,
    LanewayError,
    MethodNotAllowed,
    ResponseNotFound,
    RouteNotFound,
)
from laneway.gateway import Gateway, RequestContext, build_gateway
from laneway.providers import ChatModel, UpstreamClient, estimate_prompt_tokens
from laneway.resilience import CircuitState
from laneway.server._admin import admin_routes
from laneway.server._chat import (
    chat_completions,
    error_response,
    handle,
    handle_chat,
    read_request,
    refuse,
)
from laneway.server._embeddings import embeddings
from laneway.server._messages import parse_messages_request
from laneway.server._messages_render import ANTHROPIC_MESSAGES
from laneway.server._protocol import OPENAI_CHAT, ClientProtocol
from laneway.server._response_store import ResponseStore
from laneway.server._responses_render import ResponsesProtocol
from laneway.settings import DeploymentSettings, Settings

__all__ = ["LanewayApp", "create_app"]

log = logging.getLogger("laneway.server")
_JSON = "application/json"


def _json(payload: object, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type=_JSON)


async def list_models(request: Request) -> Response:
    """``GET /v1/models`` in a shape both SDKs read: OpenAI's (``object``, ``created``,
    ``owned_by``) and Anthropic's (``type``, ``display_name``, ``created_at``,
    ``has_more``, ``first_id``, ``last_id``) side by side; keys by ``Authorization`` or
    ``x-api-key``."""
    gateway: Gateway = request.app.state.gateway
    if gateway.governance.auth_required:
        try:
            await asyncio.to_thread(
                gateway.governance.authenticate, ANTHROPIC_MESSAGES.credentials(request.headers)
            )
        except LanewayError as exc:
            return error_response(exc)
    entries: list[tuple[str, dict[str, object]]] = []
    for name, d in gateway.deployments.items():
        entries.append((name, {"kind": "deployment", "model": d.model_id, "hosting": d.hosting}))
    for tier, members in gateway.resolver.tiers.items():
        entries.append((f"tier:{tier}", {"kind": "tier", "deployments": list(members)}))
    if gateway.router is not None:
        for profile in ("", *gateway.router.profiles()):
            entries.append(
                (
                    f"auto:{profile}" if profile else "auto",
                    {"kind": "router", "profile": profile or "default"},
                )
            )
    for name in gateway.resolver.model_names():
        deployments = list(gateway.resolver.resolve(name).deployments)
        entries.append((name, {"kind": "model", "deployments": deployments}))
    created = int(gateway.started_at)
    created_at = datetime.fromtimestamp(created, UTC).isoformat().replace("+00:00", "Z")
    data = [
        {
            "id": model_id,
            "object": "model",
            "created": created,
            "owned_by": "laneway",
            "type": "model",
            "display_name": model_id,
            "created_at": created_at,
            "laneway": info,
        }
        for model_id, info in entries
    ]
    return _json(
        {
            "object": "list",
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
    )


async def messages(request: Request) -> Response:
    """``POST /v1/messages``: Anthropic Messages in and out, any deployment behind it."""
    return await handle(request.app.state.gateway, request, ANTHROPIC_MESSAGES)


async def responses(request: Request) -> Response:
    """``POST /v1/responses``: OpenAI Responses in and out, any deployment behind it."""
    gateway: Gateway = request.app.state.gateway
    store = request.app.state.responses
    protocol = ResponsesProtocol(store, gateway.settings.responses)
    from laneway.server._responses_relay import serve_responses  # reasoning items: relayed

    return await serve_responses(gateway, request, protocol, store, gateway.settings.responses)


async def stored_response(request: Request) -> Response:
    """``GET`` / ``DELETE /v1/responses/{id}``: a stored response of the caller's key."""
    gateway: Gateway = request.app.state.gateway
    response_id = request.path_params["response_id"]
    try:
        key_id = None
        if gateway.governance.auth_required:
            key = await asyncio.to_thread(
                gateway.governance.authenticate, request.headers.get("authorization")
            )
            key_id = key.id if key is not None else None
        store: ResponseStore = request.app.state.responses
        missing = ResponseNotFound(
            f"no stored response {response_id[:80]!r} for this key", param="response_id"
        )
        if store is None:
            raise missing
        if request.method == "DELETE":
            if not await store.delete(response_id, key_id):
                raise missing
            return _json({"id": response_id, "object": "response.deleted", "deleted": True})
        found = await store.load(response_id, key_id)
        if found is None:
            raise missing
    except LanewayError as exc:
        return error_response(exc)
    return _json(found.response)


async def count_tokens(request: Request) -> Response:
    """``POST /v1/messages/count_tokens``: the prompt's size as the gateway estimates it
    (about 4 characters a token, images at the most a provider charges), so that clients
    can check a request before sending it; no upstream is called."""
    gateway: Gateway = request.app.state.gateway
    ctx = RequestContext(request_id="", started=0.0, requested_model="")
    try:
        credentials = ANTHROPIC_MESSAGES.credentials(request.headers)
        body, _ = await read_request(gateway, request, ctx, credentials)
        depth = gateway.settings.server.max_json_depth
        chat = parse_messages_request(body, max_depth=depth, count_only=True)
        if chat.model != "auto" and not chat.model.startswith("auto:"):
            gateway.resolver.resolve(chat.model)  # 404 for a model never served, as Messages
    except LanewayError as exc:
        return error_response(exc, None, ANTHROPIC_MESSAGES)
    return _json({"input_tokens": estimate_prompt_tokens(chat)})


async def health_live(request: Request) -> Response:
    return _json({"status": "ok"})


async def health_ready(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    report = {}
    any_ready = False
    for name, d in gateway.deployments.items():
        state = d.breaker.state
        loaded = getattr(d.adapter, "loaded", True)
        problem = d.disabled_reason or gateway.governance.killed_reason(d)
        ready = loaded and state is not CircuitState.OPEN and problem is None
        any_ready = any_ready or ready
        report[name] = {
            "ready": ready,
            "circuit": state.value,
            "hosting": d.hosting,
            "model": d.model_id,
            "loaded": loaded,
            "disabled": problem,
        }
    return _json(
        {
            "status": "ok" if any_ready else "unavailable",
            "deployments": report,
            "ledger": _ledger_health(gateway),
        },
        200 if any_ready else 503,
    )


def _ledger_health(gateway: Gateway) -> dict[str, object] | None:
    """Whether the ledger's writes go through. Not a reason to take the worker out of
    service (all workers share the database; unkeyed requests are still answered and their
    rows kept), but what an operator looks at when ``writing`` is false."""
    writer = gateway.ledger
    if writer is None:
        return None
    since = writer.failing_since
    return {
        "writing": since is None,
        "failing_for_s": None if since is None else round(time.monotonic() - since, 1),
        "error": writer.last_error,
        "queued": writer.queued,
        "dropped": writer.dropped,
    }


async def metrics(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    return Response(gateway.metrics.render(), media_type="text/plain; version=0.0.4")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    err: LanewayError
    if exc.status_code == 404:
        err = RouteNotFound(f"no route {request.url.path}")
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        err = MethodNotAllowed(f"method {request.method} is not allowed on {request.url.path}"
                               + (f"; use {allowed}" if allowed else ""))  # fmt: skip
    else:  # the router raises only the two above
        err = InvalidRequest(str(exc.detail))
    response = error_response(err, None, _protocol_of(request.url.path))
    if exc.headers:  # e.g. Allow on a 405
        response.headers.update(exc.headers)
    return response


async def _unhandled(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path)
    err = LanewayError("internal error (see the gateway's log)")
    return error_response(err, None, _protocol_of(request.url.path))


class LanewayApp:
    """The ASGI app: chat completions go straight to their handler (Starlette's routing and
    middleware cost ~5% of a request's CPU); everything else, lifespan included, goes
    through the Starlette application (``.starlette``; ``.state`` is its state)."""

    def __init__(self, starlette: Starlette, gateway: Gateway) -> None:
        self.starlette = starlette
        self.state = starlette.state
        self.gateway = gateway
        self.open_requests = 0  # HTTP requests whose handler has not returned, every route
        self._idle: asyncio.Event | None = None  # set when open_requests reaches 0 (settle)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.starlette(scope, receive, send)
            return
        self.open_requests += 1
        try:
            problem = self._header_problem(scope["headers"])
            if problem is not None:
                refuse(self.gateway, scope, problem)
                protocol = _protocol_of(scope["path"])
                await error_response(problem, None, protocol)(scope, receive, send)
                return
            if scope["method"] == "POST" and scope["path"] in _CHAT_PATHS:
                scope["app"] = self.starlette
                gateway = self.gateway
                gateway.inflight += 1
                try:
                    try:
                        response = await handle_chat(gateway, Request(scope, receive))
                    except Exception:
                        log.exception("unhandled error on %s", scope["path"])
                        response = error_response(
                            LanewayError("internal error (see the gateway's log)")
                        )
                    await response(scope, receive, send)
                finally:
                    gateway.inflight -= 1
                return
            await self.starlette(scope, receive, send)
        finally:
            self.open_requests -= 1
            if self.open_requests == 0 and self._idle is not None:
                self._idle.set()

    async def settle(self, limit_s: float = 1.0) -> None:
        """At shutdown, after the server has cancelled the requests still running: give
        their cleanup (the ledger row each writes in its ``finally``) up to ``limit_s``
        to finish before the ledger closes; rows recorded after it would be lost."""
        if self.open_requests == 0:
            return
        self._idle = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), limit_s)

    def _header_problem(self, headers: list[tuple[bytes, bytes]]) -> LanewayError | None:
        """431 for too many headers or too many header bytes (the HTTP parser has no
        limit of its own: a 1 MB header or 2,000 headers would be accepted)."""
        limits = self.gateway.settings.server
        if len(headers) > limits.max_headers:
            return HeadersTooLarge(
                f"{len(headers)} request headers; at most {limits.max_headers} are accepted"
            )
        # name + value + 4 bytes (": ", CRLF) a header, summed in C (no loop in Python)
        size = sum(map(len, chain.from_iterable(headers))) + 4 * len(headers)
        if size > limits.max_header_bytes:
            return HeadersTooLarge(
                f"request headers of {size} bytes; at most {limits.max_header_bytes} "
                "bytes are accepted"
            )
        return None


_CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})


def _protocol_of(path: str) -> ClientProtocol:
    """The error shape of a request refused before its handler ran (431, 404, 405):
    Anthropic's under ``/v1/messages``, where the anthropic SDK reads it; else OpenAI's."""
    if path == "/v1/messages" or path.startswith("/v1/messages/"):
        return ANTHROPIC_MESSAGES
    return OPENAI_CHAT


def create_app(
    settings: Settings,
    *,
    upstream: UpstreamClient | None = None,
    catalog: Catalog | None = None,
    env: Mapping[str, str] | None = None,
    engine: Engine | None = None,
    local_factory: Callable[[DeploymentSettings], ChatModel] | None = None,
) -> LanewayApp:
    """The ASGI app (arguments as for :func:`~laneway.gateway.build_gateway`); the
    stored ``/v1/responses`` answers and the drift gauges share its database."""
    gateway = build_gateway(
        settings,
        upstream=upstream,
        catalog=catalog,
        env=env,
        engine=engine,
        local_factory=local_factory,
    )
    engine = gateway.engine
    assert engine is not None  # build_gateway always opens one
    from laneway.evals import DriftCollector  # the latest drift checks, read at scrape time

    gateway.metrics.registry.register(DriftCollector(engine))
    responses_store = ResponseStore(
        engine,
        retention_days=settings.responses.retention_days,
        memory_items=settings.responses.memory_items,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await wrapper.settle()
            await gateway.aclose()
            responses_store.close()

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
            Route("/v1/responses", responses, methods=["POST"]),
            Route("/v1/responses/{response_id}", stored_response, methods=["GET", "DELETE"]),
            Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/health/live", health_live, methods=["GET"]),
            Route("/health/ready", health_ready, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            *admin_routes(),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _unhandled},
        lifespan=lifespan,
    )
    # No 307 to the same path with a slash added or dropped: it is built from the
    # client's Host header and is not an OpenAI-shaped answer; such paths get a 404.
    app.router.redirect_slashes = False
    app.state.gateway = gateway
    app.state.responses = responses_store
    wrapper = LanewayApp(app, gateway)  # the lifespan's settle() reads its open requests
    return wrapper
