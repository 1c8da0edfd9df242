"""The admin API (behind the master key): keys, kill switches, policy report."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, is_dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from laneway.errors import AuthenticationFailed, InvalidRequest, LanewayError, PermissionDenied
from laneway.gateway import Gateway
from laneway.governance import GovernanceStore, check_kill_target
from laneway.server._chat import error_response, read_body

__all__ = ["admin_routes"]

log = logging.getLogger("laneway.admin")

_KILL_KINDS = ("deployment", "model", "provider", "tier")
Handler = Callable[[Request, Gateway], Awaitable[Any]]


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if hasattr(value, "model_dump"):
        return value.model_dump()
    raise TypeError(type(value).__name__)


def _guarded(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        gateway: Gateway = request.app.state.gateway
        governance = gateway.governance
        try:
            if not governance.auth_required:
                raise PermissionDenied("the admin API is disabled: set LANEWAY_MASTER_KEY")
            header = request.headers.get("authorization", "")
            token = header[7:].strip() if header[:7].lower() == "bearer " else None
            if not governance.is_master(token):
                raise AuthenticationFailed("the admin API needs the master key")
            payload = await handler(request, gateway)
        except LanewayError as exc:
            return error_response(exc)
        return Response(orjson.dumps(payload, default=_default), media_type="application/json")

    return endpoint


def _store(gateway: Gateway) -> GovernanceStore:
    store = gateway.governance.store
    if store is None:  # build_gateway always gives governance a store
        raise LanewayError("the gateway has no governance store")
    return store


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await read_body(request, 64 * 1024, 30.0)
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise InvalidRequest("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body


def _only(body: dict[str, Any], allowed: frozenset[str]) -> None:
    """Refuse a field the endpoint does not know (a mistyped option must not be ignored:
    ``budget`` for ``budget_usd`` would create a key without a budget)."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidRequest(
            f"unknown field {unknown[0][:80]!r}; expected {', '.join(sorted(allowed))}",
            param=unknown[0][:80],
        )


_KILL_FIELDS = frozenset({"kind", "name", "reason", "force"})
_UNKILL_FIELDS = frozenset({"kind", "name"})
_KEY_FIELDS = frozenset({
    "name", "budget_usd", "period", "models", "tiers", "rpm", "tpm", "allow_unknown_price",
    "log_prompts", "policy",
})  # fmt: skip
_MAX_REASON = 500


def _kill_target(body: dict[str, Any]) -> tuple[str, str]:
    kind, name = body.get("kind"), body.get("name")
    if kind not in _KILL_KINDS:
        raise InvalidRequest(f"kind must be one of {', '.join(_KILL_KINDS)}", param="kind")
    if not isinstance(name, str) or not name:
        raise InvalidRequest("name must be a non-empty string", param="name")
    return kind, name


async def _kills(request: Request, gateway: Gateway) -> Any:
    return {"kills": await asyncio.to_thread(_store(gateway).active_kills)}


async def _kill(request: Request, gateway: Gateway) -> Any:
    body = await _json_body(request)
    _only(body, _KILL_FIELDS)
    kind, name = _kill_target(body)
    force = body.get("force", False)
    if type(force) is not bool:
        raise InvalidRequest("force must be true or false", param="force")
    reason = body.get("reason")
    if reason is not None and (type(reason) is not str or len(reason) > _MAX_REASON):
        raise InvalidRequest(
            f"reason must be a string of at most {_MAX_REASON} characters", param="reason"
        )
    if not force:
        check_kill_target(kind, name, gateway.settings)
    record = await asyncio.to_thread(
        _store(gateway).kill, kind, name, reason=reason, actor="admin-api"
    )
    return {"killed": record}


async def _unkill(request: Request, gateway: Gateway) -> Any:
    body = await _json_body(request)
    _only(body, _UNKILL_FIELDS)
    kind, name = _kill_target(body)
    done = await asyncio.to_thread(_store(gateway).unkill, kind, name, actor="admin-api")
    return {"unkilled": done}


async def _list_keys(request: Request, gateway: Gateway) -> Any:
    return {"keys": await asyncio.to_thread(_store(gateway).list_keys)}


_MAX_RATE = 2**31 - 1  # the database column is a 32-bit integer on PostgreSQL
_MAX_BUDGET = Decimal(10) ** 9
_PERIODS = ("day", "month")


def _key_options(body: dict[str, Any]) -> dict[str, Any]:
    """The options of ``POST /admin/keys``, each checked with a message that says what
    is expected (never a Python exception's text)."""
    _only(body, _KEY_FIELDS)
    options: dict[str, Any] = {}
    if body.get("period") is not None and body.get("budget_usd") is None:
        raise InvalidRequest("period is the budget's: give budget_usd with it", param="period")
    if body.get("budget_usd") is not None:
        options["budget_usd"] = _budget(body["budget_usd"])
        period = body.get("period") or "month"
        if period not in _PERIODS:
            raise InvalidRequest("period must be 'day' or 'month'", param="period")
        options["period"] = period
    for name in ("models", "tiers"):
        value = body.get(name)
        if value is not None:
            if not isinstance(value, list) or not all(
                isinstance(v, str) and 0 < len(v) <= 256 for v in value
            ):
                raise InvalidRequest(f"{name} must be a list of names", param=name)
            options[name] = tuple(value)
    for name in ("rpm", "tpm"):
        value = body.get(name)
        if value is not None:
            if type(value) is not int or not 1 <= value <= _MAX_RATE:
                raise InvalidRequest(
                    f"{name} must be a whole number from 1 to {_MAX_RATE:,}", param=name
                )
            options[name] = value
    for name in ("allow_unknown_price", "log_prompts"):
        value = body.get(name, False)
        if type(value) is not bool:
            raise InvalidRequest(f"{name} must be true or false", param=name)
        options[name] = value
    if body.get("policy") is not None:
        from pydantic import ValidationError

        from laneway.settings import KeyPolicy

        try:
            options["policy"] = KeyPolicy.model_validate(body["policy"])
        except ValidationError as exc:
            raise InvalidRequest(
                f"invalid key policy: {exc.errors()[0]['msg']}", param="policy"
            ) from None
    return options


def _budget(value: Any) -> Decimal:
    if type(value) not in (int, float, str):
        raise InvalidRequest("budget_usd must be a number of dollars", param="budget_usd")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise InvalidRequest("budget_usd must be a number of dollars", param="budget_usd") from None
    if not amount.is_finite() or not 0 <= amount <= _MAX_BUDGET:
        raise InvalidRequest(
            f"budget_usd must be between 0 and {_MAX_BUDGET:,} dollars", param="budget_usd"
        )
    return amount


async def _create_key(request: Request, gateway: Gateway) -> Any:
    body = await _json_body(request)
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest("name must be a non-empty string", param="name")
    try:
        secret, record = await asyncio.to_thread(
            _store(gateway).create_key, name, **_key_options(body)
        )
    except (TypeError, ValueError) as exc:
        log.info("key creation refused: %s", type(exc).__name__)
        raise InvalidRequest(_creation_problem(exc)) from None
    return {"key": secret, "record": record, "note": "the key is shown once"}


def _creation_problem(exc: Exception) -> str:
    """What went wrong creating a key, in words (the store raises ``ValueError`` with a
    message written for users, e.g. a duplicate name; anything else is generic)."""
    message = str(exc) if isinstance(exc, ValueError) else ""
    if message and len(message) < 200 and "\n" not in message and "Traceback" not in message:
        return message
    return "the key could not be created with these options"


async def _revoke(request: Request, gateway: Gateway) -> Any:
    target = request.path_params["key"]
    return {"revoked": await asyncio.to_thread(_store(gateway).revoke, target)}


async def _rotate(request: Request, gateway: Gateway) -> Any:
    target = request.path_params["key"]
    secret, record = await asyncio.to_thread(_store(gateway).rotate, target)
    return {"key": secret, "record": record, "note": "the key is shown once"}


async def _policy(request: Request, gateway: Gateway) -> Any:
    verdicts = gateway.governance.verdicts()
    return {
        "deployments": {
            name: {"passed": v.passed, "checks": [asdict(c) for c in v.checks]}
            for name, v in verdicts.items()
        }
    }


def admin_routes() -> list[Route]:
    return [
        Route("/admin/kills", _guarded(_kills), methods=["GET"]),
        Route("/admin/kill", _guarded(_kill), methods=["POST"]),
        Route("/admin/unkill", _guarded(_unkill), methods=["POST"]),
        Route("/admin/keys", _guarded(_list_keys), methods=["GET"]),
        Route("/admin/keys", _guarded(_create_key), methods=["POST"]),
        Route("/admin/keys/{key}/revoke", _guarded(_revoke), methods=["POST"]),
        Route("/admin/keys/{key}/rotate", _guarded(_rotate), methods=["POST"]),
        Route("/admin/policy", _guarded(_policy), methods=["GET"]),
    ]
