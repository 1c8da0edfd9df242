"""One call of a candidate or a judge through the gateway in-process, with the
harness's own retries on transient errors and a weaker response format where a model
does not support the one asked (the answer's format is still checked by the scorer)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING

from laneway.providers import ChatRequest

if TYPE_CHECKING:
    from laneway.gateway import CallReport, Gateway

__all__ = ["RETRYABLE", "call_model"]

RETRYABLE = frozenset(
    {
        "rate_limited",
        "upstream_rate_limited",
        "upstream_error",
        "upstream_timeout",
        "upstream_connection_error",
        "stream_interrupted",
        "no_deployment_available",
        "queue_full",
        "upstream_server_error",
        "upstream_bad_response",
    }
)


def _downgraded(request: ChatRequest) -> ChatRequest | None:
    """A JSON Schema request as plain JSON mode, JSON mode as no response format (the
    answer's format is still checked by the scorer); ``None`` when nothing is left."""
    rf = request.response_format
    if rf is None:
        return None
    kind = rf.get("type")
    return replace(
        request, response_format={"type": "json_object"} if kind == "json_schema" else None
    )


async def call_model(
    gateway: Gateway, request: ChatRequest, *, retries: int, delay: float
) -> CallReport:
    """One call with harness-level retries on transient errors (after the gateway's
    own), and a weaker response format where a model does not support the one asked."""
    attempt = 0
    while True:
        from laneway.gateway import run_request

        report = await run_request(gateway, request, source="eval")
        error = report.error
        if error is not None and error.code == "shutting_down":
            # The gateway answers a request cancelled from outside with `shutting_down`
            # and un-cancels its task (for a server, the grace period after SIGTERM has
            # ended). In-process, only Ctrl-C or SIGTERM of the harness cancels a call:
            # stop. Swallowed, it left every worker going on to its next call: the run
            # went on to the end before it said "interrupted".
            raise asyncio.CancelledError
        if error is None:
            return report
        if error.code == "unsupported_parameter":
            weaker = _downgraded(request)
            if weaker is not None:
                request = weaker
                continue
        if attempt >= retries or error.code not in RETRYABLE:
            return report
        await asyncio.sleep(delay * 2**attempt)
        attempt += 1
