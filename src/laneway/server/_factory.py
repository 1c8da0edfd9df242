"""Building the app inside a uvicorn worker process (``--workers N``)."""

from __future__ import annotations

import os
from typing import Any

from laneway.settings import load_settings

__all__ = ["app_from_environment"]


def app_from_environment() -> Any:
    """uvicorn factory: settings from ``LANEWAY_CONFIG`` (set by ``laneway serve``)."""
    from laneway.server._app import create_app

    return create_app(load_settings(os.environ.get("LANEWAY_CONFIG") or None))
