"""``from-ledger``: a suite sampled from real logged traffic.

Only requests with a logged prompt are used (the key or the gateway opted in to prompt
logging), only client traffic (``source == "api"``: never eval, canary or shadow calls),
only successful ones, and never a row whose ``audit`` JSON says ``"sensitive": true``
(governance marks those).
Identical prompts are taken once. The cases carry no expected answer: they are for judge
rubrics, pairwise comparison, consistency, latency and cost.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from laneway.errors import ConfigError
from laneway.ledger import LEDGER, parse_since

__all__ = ["WHERE_FIELDS", "check_where", "suite_from_ledger"]

WHERE_FIELDS = ("deployment", "model", "tier", "key", "requested_model", "since")
_DEFAULT_RUBRIC = "The answer addresses the request correctly, completely and concisely."


def _filters(where: Sequence[str]) -> list[sa.ColumnElement[bool]]:
    columns = {
        "deployment": LEDGER.c.deployment,
        "model": LEDGER.c.model_id,
        "tier": LEDGER.c.tier,
        "key": LEDGER.c.key_id,
        "requested_model": LEDGER.c.requested_model,
    }
    out: list[sa.ColumnElement[bool]] = []
    for item in where:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in WHERE_FIELDS:
            raise ConfigError(
                f"--where {item!r}: use FIELD=VALUE with FIELD one of {', '.join(WHERE_FIELDS)}"
            )
        if name == "since":
            out.append(LEDGER.c.ts >= parse_since(value.strip()))
        else:
            out.append(columns[name] == value.strip())
    return out


def check_where(where: Sequence[str]) -> None:
    """``ConfigError`` (or ``InvalidRequest`` for a ``since`` that is no time) for the
    first ``--where`` filter that cannot be one, before any database is opened."""
    _filters(where)


def _sensitive(audit: Any) -> bool:
    if isinstance(audit, str):
        try:
            audit = orjson.loads(audit)
        except orjson.JSONDecodeError:
            return True  # unreadable audit: do not take the risk
    return isinstance(audit, dict) and audit.get("sensitive") is True


def suite_from_ledger(
    engine: sa.Engine, *, sample: int, where: Sequence[str] = (), seed: int = 0, name: str
) -> dict[str, Any]:
    """A suite dict (ready for YAML) of up to ``sample`` distinct logged prompts."""
    query = (
        sa.select(LEDGER.c.request_id, LEDGER.c.prompt, LEDGER.c.audit)
        .where(
            LEDGER.c.attempt == 0,
            LEDGER.c.prompt.is_not(None),
            LEDGER.c.source == "api",
            LEDGER.c.status == 200,
            *_filters(where),
        )
        .order_by(LEDGER.c.id)
    )
    seen: set[str] = set()
    pool: list[tuple[str, list[dict[str, Any]]]] = []
    with engine.connect() as conn:
        for request_id, prompt, audit in conn.execute(query):
            if _sensitive(audit) or prompt in seen:
                continue
            seen.add(prompt)
            try:
                messages = orjson.loads(prompt)
            except orjson.JSONDecodeError:
                continue
            if isinstance(messages, list) and messages:
                pool.append((request_id, messages))
    picked = random.Random(seed).sample(pool, min(sample, len(pool)))
    cases = [
        {
            "id": f"ledger-{rid}"[:128],
            "messages": [
                {"role": m.get("role", "user"), "content": _text(m.get("content"))}
                for m in msgs
                if m.get("role") in ("system", "user", "assistant")
            ],
            "tags": ["ledger"],
        }
        for rid, msgs in picked
    ]
    return {
        "name": name,
        "description": f"{len(cases)} prompts sampled from the ledger (seed {seed})",
        "defaults": {"rubric": _DEFAULT_RUBRIC},
        "cases": cases,
    }


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""
