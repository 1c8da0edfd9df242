"""OpenAI's Responses API as an upstream (``POST {api_base}/responses``), for requests that
only it can honour: reasoning items replayed from an earlier answer
(``encrypted_content``), ``include: ["reasoning.encrypted_content"]``, and a
``previous_response_id`` the upstream itself stored.

A relay, not a translation: the client's body goes out unchanged but for ``model`` (the
deployment's upstream model), and the answer (a response object, or the SSE stream of
semantic events) comes back unchanged. Only what the gateway needs is read from it: the
usage (``usage.input_tokens`` with ``input_tokens_details.cached_tokens``,
``output_tokens`` which include the reasoning tokens), the response id and status.
Deployments whose vendor row sets the quirk ``responses_api: true`` (OpenAI) have one
(:func:`relay_for`). Errors are mapped as the OpenAI chat adapter maps them: by status.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from laneway.errors import UpstreamBadResponse, UpstreamError
from laneway.providers._http import UpstreamClient
from laneway.providers._sse import iter_sse
from laneway.providers._status import Endpoint, describe_body, error_for_status
from laneway.providers._types import Usage, token_count

__all__ = ["RelayEvent", "ResponsesRelay", "parse_responses_usage", "relay_for"]

# The events that end a Responses stream, each carrying the final response object.
_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


def parse_responses_usage(raw: Any, provider: str = "openai") -> Usage | None:
    """A Responses ``usage`` object → :class:`Usage` (``None`` when absent or negative)."""
    if not isinstance(raw, dict):
        return None
    details = raw.get("input_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    prompt = token_count(raw.get("input_tokens"), provider)
    completion = token_count(raw.get("output_tokens"), provider)
    cached_count = token_count(cached, provider)
    if min(prompt, completion, cached_count) < 0:
        return None
    return Usage(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached_count)


@dataclass(slots=True)
class RelayEvent:
    """One upstream SSE event as received (``raw``: the bytes to send on) and, for the
    terminal event, the final response and its usage."""

    raw: bytes
    kind: str
    response: dict[str, Any] | None = None
    usage: Usage | None = None


class ResponsesRelay:
    """``POST {api_base}/responses`` for one deployment."""

    provider = "openai"

    def __init__(self, endpoint: Endpoint, client: UpstreamClient) -> None:
        self.endpoint = endpoint
        self._client = client
        self._url = endpoint.api_base.rstrip("/") + "/responses"
        self._headers = endpoint.bearer_headers()

    def body(self, doc: Mapping[str, Any]) -> bytes:
        """The client's body with this deployment's model."""
        return orjson.dumps({**doc, "model": self.endpoint.upstream_model})

    async def create(self, doc: Mapping[str, Any]) -> tuple[dict[str, Any], Usage | None]:
        """A non-streamed answer: the response object as sent, and its usage."""
        response = await self._client.post(
            self._url, self._headers, self.body({**doc, "stream": False}), self.endpoint.timeouts
        )
        if response.status >= 400:
            raise self._error(response.status, response.headers, response.body)
        try:
            payload = orjson.loads(response.body)
        except orjson.JSONDecodeError as exc:
            raise UpstreamBadResponse(
                f"{self.provider} sent {describe_body(response.headers, response.body)}",
                upstream_status=response.status,
            ) from exc
        if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
            raise UpstreamBadResponse(
                f"{self.provider} sent a malformed response object", upstream_status=200
            )
        return payload, parse_responses_usage(payload.get("usage"), self.provider)

    async def stream(self, doc: Mapping[str, Any]) -> AsyncGenerator[RelayEvent, None]:
        """The upstream's events, each as received; raises before the first one when the
        upstream refused, and :class:`UpstreamBadResponse` when the stream ended without a
        terminal event (``response.completed`` / ``incomplete`` / ``failed``)."""
        body = self.body({**doc, "stream": True})
        async with self._client.post_stream(
            self._url, self._headers, body, self.endpoint.timeouts
        ) as response:
            if response.status >= 400:
                raise self._error(response.status, response.headers, await response.read_body())
            async for event in iter_sse(response.lines()):
                relayed = self._event(event.data)
                yield relayed
                if relayed.kind in _TERMINAL or relayed.kind == "error":
                    return
        raise UpstreamBadResponse(f"{self.provider} stream ended before response.completed")

    def _event(self, data: bytes) -> RelayEvent:
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamBadResponse(f"{self.provider} sent a malformed stream event") from exc
        kind = payload.get("type") if isinstance(payload, dict) else None
        if not isinstance(kind, str):
            raise UpstreamBadResponse(f"{self.provider} sent a stream event without a type")
        raw = b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"
        if kind not in _TERMINAL:
            return RelayEvent(raw, kind)
        final = payload.get("response")
        if not isinstance(final, dict):
            raise UpstreamBadResponse(f"{self.provider} sent {kind} without a response")
        return RelayEvent(raw, kind, final, parse_responses_usage(final.get("usage")))

    def _error(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        message = ""
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            message = describe_body(headers, raw)
        else:
            err = payload.get("error") if isinstance(payload, dict) else None
            if isinstance(err, dict):
                message = str(err.get("message") or "")[:500]
        return error_for_status(status, headers, message, provider=self.provider)


def relay_for(adapter: object) -> ResponsesRelay | None:
    """The Responses relay of a deployment's adapter (set by the registry), if any."""
    relay = getattr(adapter, "responses_relay", None)
    return relay if isinstance(relay, ResponsesRelay) else None
