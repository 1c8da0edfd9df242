"""The ASGI gateway: OpenAI-compatible endpoints over every configured deployment."""

from laneway.server._app import build_gateway, create_app
from laneway.server._direct import CallReport, run_request
from laneway.server._factory import app_from_environment
from laneway.server._gateway import Gateway
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
