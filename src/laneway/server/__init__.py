"""The HTTP layer: OpenAI chat completions, Anthropic Messages, OpenAI Responses and
embeddings over the gateway core (``laneway.gateway``), which it calls once per request.

``build_gateway``, ``Gateway``, ``CallReport`` and ``run_request`` are the core's, re-exported
for callers that already import them from here."""

from laneway.gateway import CallReport, Gateway, build_gateway, run_request
from laneway.server._app import create_app
from laneway.server._factory import app_from_environment
from laneway.server._validate import parse_chat_request

__all__ = [
    "CallReport",
    "Gateway",
    "app_from_environment",
    "build_gateway",
    "create_app",
    "parse_chat_request",
    "run_request",
]
