"""The ASGI gateway: OpenAI-compatible endpoints over every configured deployment."""

from laneway.server._app import create_app
from laneway.server._factory import app_from_environment
from laneway.server._gateway import Gateway
from laneway.server._validate import parse_chat_request

__all__ = ["Gateway", "app_from_environment", "create_app", "parse_chat_request"]
