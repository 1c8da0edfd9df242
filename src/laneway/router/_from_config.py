"""What ``laneway router`` takes from the gateway's config and ledger when not told.

* calibration prompts: a sample of the prompts the ledger logged (API traffic, newest
  first, never a row whose audit says it was sensitive);
* tier costs per 1,000 requests: each tier's first priced deployment (config price
  override, else the catalog) at the ledger's mean tokens per request;
* the model → tier mapping for training: each tier's deployments as catalog model ids.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from laneway.errors import ConfigError
from laneway.router._conversation import conversation_from_messages

__all__ = ["config_tier_models", "ledger_prompt_rows", "ledger_tokens_per_request", "tier_costs"]


def _sensitive(audit: Any) -> bool:
    if isinstance(audit, str):
        try:
            audit = json.loads(audit)
        except ValueError:
            return True  # unreadable audit: do not use the prompt
    return isinstance(audit, dict) and bool(audit.get("sensitive"))


def ledger_prompt_rows(engine: Any, limit: int = 2000) -> list[dict[str, Any]]:
    """Calibration rows (no outcomes) from the newest logged API prompts, with the
    request's task (so per-task effects count when calibrating)."""
    import sqlalchemy as sa

    from laneway.ledger import LEDGER

    query = (
        sa.select(LEDGER.c.prompt, LEDGER.c.audit, LEDGER.c.task)
        .where(LEDGER.c.attempt == 0, LEDGER.c.source == "api", LEDGER.c.prompt.is_not(None))
        .order_by(LEDGER.c.id.desc())
        .limit(limit)
    )
    rows: list[dict[str, Any]] = []
    with engine.connect() as conn:
        for prompt, audit, task in conn.execute(query):
            if _sensitive(audit):
                continue
            try:
                messages = json.loads(prompt)
            except ValueError:
                continue
            if isinstance(messages, list) and messages:
                conv = conversation_from_messages(messages)
                rows.append({"conversation": conv, "outcomes": {}, "task": task or None})
    return rows


def ledger_tokens_per_request(engine: Any) -> tuple[float, float] | None:
    """Mean (prompt, completion) tokens per API request in the ledger; None if empty."""
    from laneway.ledger import usage_summary

    groups = usage_summary(engine, since=None, by="tier", source="api")
    requests = sum(g.requests for g in groups)
    if requests == 0:
        return None
    prompt = sum(g.prompt_tokens for g in groups) / requests
    completion = sum(g.completion_tokens for g in groups) / requests
    return prompt, completion


def tier_costs(
    settings: Any, catalog: Any, tiers: Sequence[str], tokens: tuple[float, float]
) -> dict[str, Decimal | None]:
    """USD per 1,000 requests per tier (None where no deployment has a known price)."""
    from laneway.router._report import baseline_price

    costs: dict[str, Decimal | None] = {}
    for tier in tiers:
        if tier not in settings.tiers:
            costs[tier] = None
            continue
        try:
            price = baseline_price(settings, catalog, tier, tiers)
        except ConfigError:  # an unpriced tier is reported as None, not raised
            costs[tier] = None
            continue
        if price.input_per_mtok is None or price.output_per_mtok is None:
            costs[tier] = None
            continue
        per_request = (
            Decimal(str(tokens[0])) * price.input_per_mtok
            + Decimal(str(tokens[1])) * price.output_per_mtok
        ) / 1_000_000
        costs[tier] = per_request * 1000
    return costs


def config_tier_models(settings: Any, catalog: Any) -> dict[str, tuple[str, ...]]:
    """Tier → catalog model ids of its deployments, in the config's tier order. A catalog
    model served by two or more deployments is also listed as ``MODEL@DEPLOYMENT``: the
    column an outcome export (``eval export-outcomes``, ``shadow export``) writes for it,
    so such rows train without ``--tiers``."""

    def model_of(name: str) -> str | None:
        d = settings.deployment(name)
        if d is None:
            return None
        info = catalog.get(d.model)
        return str(info.id) if info is not None else str(d.model)

    served: dict[str, int] = {}
    for d in settings.deployments:
        model = model_of(d.name)
        if model is not None:
            served[model] = served.get(model, 0) + 1
    mapping: dict[str, tuple[str, ...]] = {}
    for tier, members in settings.tiers.items():
        models: list[str] = []
        for name in members:
            model = model_of(name)
            if model is None:
                continue
            shared = served.get(model, 0) > 1
            for column in (model, f"{model}@{name}") if shared else (model,):
                if column not in models:
                    models.append(column)
        mapping[tier] = tuple(models)
    return mapping
