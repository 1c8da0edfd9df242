"""A lazy registry: provider kind → a loader that imports its adapter module only when a
deployment uses it, and builds the adapter for one deployment."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

from laneway.errors import ConfigError
from laneway.providers._http import Timeouts, UpstreamClient
from laneway.providers._status import Endpoint
from laneway.providers._types import ChatModel
from laneway.settings import DeploymentSettings, Vendor, resolve_secret, vendors

__all__ = ["ADAPTERS", "build_adapter", "endpoint_for", "vendor_for"]

# wire format → (module, class). The OpenAI format serves OpenAI and every compatible
# vendor; the local kind has its own constructor (no HTTP). An adapter with an ``embed``
# method serves /v1/embeddings too (``tei`` serves embeddings only).
ADAPTERS: Mapping[str, tuple[str, str]] = {
    "openai": ("laneway.providers._openai_chat", "OpenAIChatAdapter"),
    "anthropic": ("laneway.providers._anthropic", "AnthropicAdapter"),
    "gemini": ("laneway.providers._gemini", "GeminiAdapter"),
    "tei": ("laneway.providers._tei", "TEIAdapter"),  # text-embeddings-inference, /embed
}


def vendor_for(deployment: DeploymentSettings) -> Vendor | None:
    table = vendors()
    if deployment.provider == "openai_compatible":
        if deployment.vendor is None:
            return None
        vendor = table.get(deployment.vendor)
        if vendor is None:
            raise ConfigError(
                f"deployment {deployment.name!r}: unknown vendor {deployment.vendor!r} "
                f"(known: {', '.join(sorted(table))})"
            )
        return vendor
    if deployment.provider == "local":
        return None
    return table[deployment.provider]


def endpoint_for(deployment: DeploymentSettings, env: Mapping[str, str]) -> Endpoint:
    vendor = vendor_for(deployment)
    api_base = deployment.api_base or (vendor.api_base if vendor else None)
    if api_base is None:
        raise ConfigError(f"deployment {deployment.name!r} needs an api_base")
    key_ref = deployment.api_key
    if (
        key_ref is None
        and vendor is not None
        and vendor.key_env
        and vendor.hosting != "self_hosted"
    ):
        key_ref = f"env:{vendor.key_env}"
    quirks: dict[str, Any] = dict(vendor.quirks) if vendor else {}
    t = deployment.timeouts
    return Endpoint(
        deployment=deployment.name,
        api_base=api_base,
        upstream_model=deployment.upstream_model
        or (vendor.upstream_model if vendor and vendor.default_model == deployment.model else None)
        or deployment.model,
        api_key=resolve_secret(key_ref, env),
        timeouts=Timeouts(connect=t.connect, read=t.read, idle=t.idle, stream=t.stream),
        quirks=quirks,
    )


def build_adapter(
    deployment: DeploymentSettings,
    client: UpstreamClient,
    env: Mapping[str, str],
    *,
    local_factory: Callable[[DeploymentSettings], ChatModel] | None = None,
) -> ChatModel:
    """The adapter for one deployment (imports its module on first use)."""
    if deployment.provider == "local":
        if local_factory is not None:
            return local_factory(deployment)
        from laneway.providers._local import LocalLlamaAdapter
        from laneway.settings import LocalModelSettings

        return LocalLlamaAdapter(deployment.name, deployment.local or LocalModelSettings())
    vendor = vendor_for(deployment)
    fmt = vendor.format if vendor is not None else "openai"
    module_name, class_name = ADAPTERS[fmt]
    try:
        module = import_module(module_name)
    except ImportError as exc:  # an optional dependency of that adapter is missing
        raise ConfigError(
            f"deployment {deployment.name!r} needs the {fmt} adapter, which failed to import: {exc}"
        ) from exc
    endpoint = endpoint_for(deployment, env)
    adapter: ChatModel = getattr(module, class_name)(endpoint, client)
    if fmt == "openai" and endpoint.quirk("responses_api", False):
        from laneway.providers._responses_api import ResponsesRelay

        # /v1/responses requests only OpenAI's Responses API can honour go out unchanged
        setattr(adapter, "responses_relay", ResponsesRelay(endpoint, client))  # noqa: B010
    return adapter
