"""Building a gateway from settings: adapters, deployments, governance, ledger, router and
shadow mirror (used by the server, the CLI, evals and benchmarks; no HTTP here)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping

from sqlalchemy import Engine

from laneway.catalog import Catalog, default_catalog
from laneway.errors import ConfigError, LanewayError
from laneway.gateway._core import Gateway
from laneway.gateway._deployments import load_deployments
from laneway.gateway._metrics import Metrics
from laneway.gateway._shadow import ShadowMirror
from laneway.governance import Governance, GovernanceStore, KeyCache, KillSwitchCache, Scanner
from laneway.ledger import LedgerWriter, open_database
from laneway.providers import AiohttpUpstream, ChatModel, UpstreamClient, build_adapter
from laneway.router import Router
from laneway.settings import DeploymentSettings, Settings

__all__ = ["build_gateway"]

log = logging.getLogger("laneway.gateway")


def build_gateway(
    settings: Settings,
    *,
    upstream: UpstreamClient | None = None,
    catalog: Catalog | None = None,
    env: Mapping[str, str] | None = None,
    engine: Engine | None = None,
    local_factory: Callable[[DeploymentSettings], ChatModel] | None = None,
) -> Gateway:
    """The gateway without HTTP (used by the server, evals and benchmarks). ``upstream``
    is the HTTP client for every provider (default: one shared aiohttp session, closed by
    :meth:`Gateway.aclose`); ``engine`` the ledger database (default:
    ``settings.database.url``). Call ``await gateway.start()`` before use."""
    # another process can rebuild this gateway from its settings only without injections
    portable = env is None and upstream is None and catalog is None and local_factory is None
    env = os.environ if env is None else env
    catalog = catalog or default_catalog()
    client = upstream or AiohttpUpstream()
    adapters = {
        d.name: build_adapter(d, client, env, local_factory=local_factory)
        for d in settings.deployments
    }
    deployments = load_deployments(settings, catalog, adapters)
    scanner = Scanner(settings.policies.sensitive)  # config errors before the database exists
    engine = engine or open_database(settings.database.url)
    ledger = LedgerWriter(engine, flush_interval=settings.ledger.flush_interval)
    store = GovernanceStore(engine)
    governance = Governance(
        settings,
        deployments,
        settings.tiers,
        scanner=scanner,
        store=store,
        kills=KillSwitchCache(store.active_kills),
        keys=KeyCache(store),
        master_key=env.get("LANEWAY_MASTER_KEY") or None,
    )
    gateway = Gateway(
        settings,
        catalog,
        deployments,
        ledger,
        Metrics(),
        governance,
        upstream=client,
        owns_upstream=upstream is None,
        engine=engine,
    )
    gateway.router = _load_router(settings)
    if settings.shadow.rules:
        gateway.shadow = ShadowMirror(settings.shadow, engine, gateway, portable=portable)
    return gateway


def _load_router(settings: Settings) -> Router | None:
    """The learned router restricted to the configured tiers; ``None`` (and ``auto``
    then uses the default tier) when it is disabled or cannot load."""
    if not settings.router.enabled or not settings.tiers:
        return None
    from pathlib import Path

    from laneway.router import load_router

    try:
        path = Path(settings.router.path) if settings.router.path else None
        router = load_router(path).with_tiers(list(settings.tiers))
    except LanewayError as exc:
        log.error("router not loaded (auto uses the default tier): %s", exc.message)
        return None
    except Exception as exc:  # a broken router file must not stop the gateway
        log.error("router not loaded (auto uses the default tier): %s", type(exc).__name__)
        return None
    if settings.router.cascades:  # a wrong cascade is a config error: it stops the start
        router = _with_cascades(router, settings.router.cascades)
    return router


def _with_cascades(router: Router, cascades: Mapping[str, object]) -> Router:
    """``router`` with the configured cascades set on their profiles."""
    from laneway.router import parse_cascade

    profiles = {name: router.profile(name) for name in router.profiles()}
    for name, body in cascades.items():
        if name not in profiles:
            raise ConfigError(
                f"router.cascades: unknown profile {name!r}; known: {', '.join(profiles)}"
            )
        profiles[name] = profiles[name].with_cascade(parse_cascade(body, router.tiers))
    return Router(router.scorer, profiles, router.tiers)
