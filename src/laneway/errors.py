"""The one exception tree of Laneway.

Every error a client can see carries an HTTP ``status``, an OpenAI ``type`` and a
stable ``code`` string (documented in the README). The server turns any
``LanewayError`` into ``{"error": {"message", "type", "param", "code"}}`` in exactly
one place (``laneway.server``); adapters convert foreign errors into this tree in
exactly one place each, by exception type and HTTP status, never by message text.

::

    LanewayError
    ├── ConfigError                      (start-up: invalid settings file)
    ├── InvalidRequest          400 invalid_request
    │   ├── KeyNameTaken        400 invalid_request (an active key has this name)
    │   ├── MethodNotAllowed    405 method_not_allowed (with an Allow header)
    │   └── UnsupportedParameter 400 unsupported_parameter
    ├── AuthenticationFailed    401 invalid_api_key
    ├── PermissionDenied        403 permission_denied
    │   ├── PolicyDenied        403 policy_denied  (license / origin / open-weights / key scope)
    │   ├── SensitiveDataBlocked 403 sensitive_data_blocked
    │   └── InjectionBlocked    403 prompt_injection_blocked (opt-in)
    ├── ModelNotFound           404 model_not_found
    ├── RouteNotFound           404 not_found      (no such path)
    ├── ResponseNotFound        404 response_not_found (a stored /v1/responses answer)
    ├── RequestTimeout          408 request_timeout (the body did not arrive in time)
    ├── PayloadTooLarge         413 payload_too_large
    ├── UnsupportedMediaType    415 unsupported_media_type
    ├── HeadersTooLarge         431 request_header_fields_too_large
    ├── ClientClosed            499 client_closed (ledger only: the client left mid-call)
    ├── RateLimited             429 rate_limited
    │   ├── QueueFull           429 queue_full
    │   └── BudgetExceeded      429 budget_exceeded
    ├── NoDeploymentAvailable   503 no_deployment_available
    │   ├── ShuttingDown        503 shutting_down      (the server stopped before the answer)
    │   ├── NoPrivateRoute      503 no_private_route   (sensitive data, no healthy private model)
    │   ├── CircuitOpen         503 circuit_open (every deployment's breaker is open; Retry-After)
    │   └── DeploymentDisabled  503 deployment_disabled (kill switch)
    ├── StoreUnavailable        503 store_unavailable (the database will not take a write:
    │   │                           a stored response cannot be deleted; Retry-After)
    │   └── GovernanceUnavailable 503 governance_unavailable (budget / rate-limit store
    │                               cannot be written: fail closed)
    ├── InvalidOutput           502 invalid_output     (answer fails the requested JSON schema)
    └── UpstreamError           502 upstream_error
        ├── UpstreamRateLimited 429 rate_limited (upstream said 429; retryable, Retry-After)
        ├── UpstreamServerError   (upstream 5xx; retryable)
        ├── UpstreamConnectionError (connect/reset; retryable)
        ├── UpstreamTimeout     504 upstream_timeout (next deployment at once, no retry)
        ├── UpstreamBadResponse   (malformed body; retryable once)
        ├── UpstreamAuthError     (upstream 401/403: Laneway's key is wrong; next deployment)
        ├── UpstreamInvalidRequest 400 (upstream rejected the request; not retried)
        │   └── ContextLengthExceeded 400 context_length_exceeded (never sent elsewhere)
        ├── ContentFiltered     400 content_filter (never retried, never sent elsewhere)
        └── StreamInterrupted     (failure after the first byte of a stream)
"""

from __future__ import annotations

import math

__all__ = [
    "AuthenticationFailed",
    "BudgetExceeded",
    "CircuitOpen",
    "ClientClosed",
    "ConfigError",
    "ContentFiltered",
    "ContextLengthExceeded",
    "DeploymentDisabled",
    "GovernanceUnavailable",
    "HeadersTooLarge",
    "InjectionBlocked",
    "InvalidOutput",
    "InvalidRequest",
    "KeyNameTaken",
    "LanewayError",
    "MethodNotAllowed",
    "ModelNotFound",
    "NoDeploymentAvailable",
    "NoPrivateRoute",
    "PayloadTooLarge",
    "PermissionDenied",
    "PolicyDenied",
    "QueueFull",
    "RateLimited",
    "RequestTimeout",
    "ResponseNotFound",
    "RouteNotFound",
    "SensitiveDataBlocked",
    "ShuttingDown",
    "StoreUnavailable",
    "StreamInterrupted",
    "UnsupportedMediaType",
    "UnsupportedParameter",
    "UpstreamAuthError",
    "UpstreamBadResponse",
    "UpstreamConnectionError",
    "UpstreamError",
    "UpstreamInvalidRequest",
    "UpstreamRateLimited",
    "UpstreamServerError",
    "UpstreamTimeout",
]


_UPSTREAM_RETRY_AFTER = 5.0
"""Seconds a client is told to wait after an upstream 429 that named no Retry-After."""


def _retry_after_seconds(value: float | None, default: float) -> int:
    """A ``Retry-After`` header value: whole seconds, at least 1."""
    return max(1, math.ceil(default if value is None else value))


class LanewayError(Exception):
    """Base of every error Laneway raises on purpose."""

    status: int = 500
    type: str = "server_error"
    code: str = "internal_error"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def headers(self) -> dict[str, str]:
        """Extra HTTP headers to send with the error response."""
        return {}


class ConfigError(LanewayError):
    """The settings file or environment is invalid; raised at start-up only."""

    code = "config_error"


class InvalidRequest(LanewayError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class KeyNameTaken(InvalidRequest):
    """An active virtual key already has this name (still ``invalid_request`` over HTTP)."""


class MethodNotAllowed(InvalidRequest):
    """The path exists but not for this method (the response's ``Allow`` header says
    which)."""

    status = 405
    code = "method_not_allowed"


class UnsupportedParameter(InvalidRequest):
    """A parameter the chosen provider cannot honour (rejected, never dropped)."""

    code = "unsupported_parameter"


class AuthenticationFailed(LanewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(LanewayError):
    status = 403
    type = "permission_error"
    code = "permission_denied"


class ModelNotFound(LanewayError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class RouteNotFound(LanewayError):
    """No endpoint at this path."""

    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ResponseNotFound(LanewayError):
    """No stored response with this id for this key (unknown, expired or deleted)."""

    status = 404
    type = "invalid_request_error"
    code = "response_not_found"


class PayloadTooLarge(LanewayError):
    status = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class RequestTimeout(LanewayError):
    """The request body did not arrive within ``server.body_timeout_s``."""

    status = 408
    type = "invalid_request_error"
    code = "request_timeout"


class UnsupportedMediaType(LanewayError):
    """A body that is not ``application/json``."""

    status = 415
    type = "invalid_request_error"
    code = "unsupported_media_type"


class HeadersTooLarge(LanewayError):
    """Too many request headers, or headers too large."""

    status = 431
    type = "invalid_request_error"
    code = "request_header_fields_too_large"


class ClientClosed(LanewayError):
    """Recorded on an upstream call the client walked away from (never sent: the
    client is gone)."""

    status = 499
    type = "client_error"
    code = "client_closed"


class _RetryAfter(LanewayError):
    """An error that may say when to try again (``retry_after`` seconds, sent as the
    ``Retry-After`` header). A base of leaf classes only; never raised itself."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, param: str | None = None
    ) -> None:
        super().__init__(message, param=param)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"retry-after": str(max(1, math.ceil(self.retry_after)))}


class RateLimited(_RetryAfter):
    status = 429
    type = "rate_limit_error"
    code = "rate_limited"


class QueueFull(RateLimited):
    code = "queue_full"


class PolicyDenied(PermissionDenied):
    """No deployment passes the license / origin / open-weights policy or the key's scope."""

    code = "policy_denied"


class SensitiveDataBlocked(PermissionDenied):
    code = "sensitive_data_blocked"


class InjectionBlocked(PermissionDenied):
    code = "prompt_injection_blocked"


class BudgetExceeded(RateLimited):
    code = "budget_exceeded"


class NoDeploymentAvailable(LanewayError):
    """Every deployment that could serve the request was skipped or failed."""

    status = 503
    type = "server_error"
    code = "no_deployment_available"


class NoPrivateRoute(_RetryAfter, NoDeploymentAvailable):
    """Sensitive data may only go to self-hosted or embedded models, and none is healthy
    (or none answered). ``retry_after``: when one is expected back (a circuit's probe)."""

    code = "no_private_route"


class ShuttingDown(NoDeploymentAvailable):
    """The server is shutting down and its grace period ended before the answer."""

    code = "shutting_down"

    def headers(self) -> dict[str, str]:
        return {"retry-after": "1"}


class CircuitOpen(_RetryAfter, NoDeploymentAvailable):
    """Every deployment that could serve the request has an open circuit breaker (or its
    one half-open probe is out): fail fast. ``retry_after`` is the seconds until the
    first of them lets a probe through."""

    code = "circuit_open"

    def headers(self) -> dict[str, str]:
        return {"retry-after": str(_retry_after_seconds(self.retry_after, 1.0))}


class DeploymentDisabled(NoDeploymentAvailable):
    """Only killed deployments could serve the request."""

    code = "deployment_disabled"


class StoreUnavailable(LanewayError):
    """A write to stored state that the database would not take (full, read-only, locked
    past the busy timeout, its file deleted): nothing was changed, and the client may
    retry. As such: deleting a stored ``/v1/responses`` answer."""

    status = 503
    type = "server_error"
    code = "store_unavailable"

    def headers(self) -> dict[str, str]:
        return {"retry-after": "5"}


class GovernanceUnavailable(StoreUnavailable):
    """A key's budget or rate limit had to be written and the database would not take the
    write: the request is refused, never served unmetered (governance fails closed)."""

    code = "governance_unavailable"


class InvalidOutput(LanewayError):
    """The answer did not satisfy the requested JSON schema, after retries."""

    status = 502
    type = "server_error"
    code = "invalid_output"


class UpstreamError(LanewayError):
    """The upstream provider failed. ``upstream_status`` is its HTTP status, if any."""

    status = 502
    type = "server_error"
    code = "upstream_error"
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int | None = None,
        retry_after: float | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message, param=param)
        self.upstream_status = upstream_status
        self.retry_after = retry_after


class UpstreamRateLimited(UpstreamError):
    """The upstream said 429 (after Laneway's own retries): passed on as a 429 with the
    upstream's ``Retry-After``, or 5 seconds when it named none."""

    status = 429
    type = "rate_limit_error"
    code = "rate_limited"
    retryable = True

    def headers(self) -> dict[str, str]:
        default = _UPSTREAM_RETRY_AFTER
        return {"retry-after": str(_retry_after_seconds(self.retry_after, default))}


class UpstreamServerError(UpstreamError):
    retryable = True


class UpstreamConnectionError(UpstreamError):
    retryable = True


class UpstreamTimeout(UpstreamError):
    """Not retried on the same deployment (a silent upstream would cost another whole
    time-out): the next deployment is tried at once."""

    status = 504
    code = "upstream_timeout"


class UpstreamBadResponse(UpstreamError):
    retryable = True


class UpstreamAuthError(UpstreamError):
    """Laneway's own credentials were refused upstream: not retried, next deployment."""


class UpstreamInvalidRequest(UpstreamError):
    status = 400
    type = "invalid_request_error"
    code = "upstream_invalid_request"


class ContextLengthExceeded(UpstreamInvalidRequest):
    code = "context_length_exceeded"


class ContentFiltered(UpstreamError):
    status = 400
    type = "invalid_request_error"
    code = "content_filter"


class StreamInterrupted(UpstreamError):
    """A stream failed after its first byte reached the client."""
