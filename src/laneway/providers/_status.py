"""Mapping of upstream HTTP statuses to Laneway's exception tree (shared by adapters).

Each adapter first recognises its provider's structured error codes (for example
OpenAI's ``context_length_exceeded``) and then falls back on :func:`error_for_status`.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from laneway.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamInvalidRequest,
    UpstreamRateLimited,
    UpstreamServerError,
    UpstreamTimeout,
)
from laneway.providers._http import Timeouts

__all__ = ["Endpoint", "describe_body", "error_for_status", "parse_retry_after"]

_DEFAULT_TIMEOUTS = Timeouts()


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Everything an adapter needs to reach one deployment's upstream.

    ``quirks`` come from the vendor table (``vendors.yaml``) and the deployment config.
    """

    deployment: str
    api_base: str
    upstream_model: str
    api_key: str | None = None
    timeouts: Timeouts = _DEFAULT_TIMEOUTS
    quirks: Mapping[str, Any] | None = None
    extra_headers: Mapping[str, str] | None = None

    def quirk(self, name: str, default: Any = None) -> Any:
        return default if self.quirks is None else self.quirks.get(name, default)

    def bearer_headers(self) -> dict[str, str]:
        """JSON in and out, the key as a Bearer token (when there is one), then the
        deployment's own extra headers (OpenAI-format, Responses API and TEI upstreams)."""
        headers = {"content-type": "application/json", "accept": "application/json"}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        headers.update(self.extra_headers or {})
        return headers


MAX_RETRY_AFTER_HEADER = 3600.0


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date);
    ``None`` when neither says a number (``nan`` is none: it would reach ``ceil``)."""
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            seconds = float(value) / 1000.0
        except ValueError:
            pass
        else:
            if not math.isnan(seconds):
                return min(max(seconds, 0.0), MAX_RETRY_AFTER_HEADER)
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return None if math.isnan(seconds) else min(max(seconds, 0.0), MAX_RETRY_AFTER_HEADER)
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(parsed.timestamp() - time.time(), 0.0), MAX_RETRY_AFTER_HEADER)


_MEDIA_TYPE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789!#$&-^_.+/")


def describe_body(headers: Mapping[str, str], raw: bytes) -> str:
    """What an upstream body that is not the expected JSON was, without any of its text
    (an HTML error page from a proxy, say, must never reach the client): its media type
    and size, e.g. ``"a non-JSON body (text/html, 5123 bytes)"``."""
    media = headers.get("content-type", "").partition(";")[0].strip().lower()[:64]
    if not media or not set(media) <= _MEDIA_TYPE_CHARS:
        media = "no content type" if not media else "unknown content type"
    return f"a non-JSON body ({media}, {len(raw)} bytes)"


def error_for_status(
    status: int, headers: Mapping[str, str], message: str, *, provider: str
) -> UpstreamError:
    """The exception for an upstream HTTP error status, by status alone."""
    text = (
        f"{provider} returned HTTP {status}: {message}"
        if message
        else (f"{provider} returned HTTP {status}")
    )
    retry_after = parse_retry_after(headers)
    if status == 429:
        return UpstreamRateLimited(text, upstream_status=status, retry_after=retry_after)
    if status in (408, 504):
        return UpstreamTimeout(text, upstream_status=status)
    if status >= 500:
        return UpstreamServerError(text, upstream_status=status, retry_after=retry_after)
    if status in (401, 403):
        return UpstreamAuthError(text, upstream_status=status)
    if status == 404:
        # The upstream does not know the model or path: a configuration problem of
        # this deployment, so the next deployment may still serve the request.
        return UpstreamError(text, upstream_status=status)
    return UpstreamInvalidRequest(text, upstream_status=status)
