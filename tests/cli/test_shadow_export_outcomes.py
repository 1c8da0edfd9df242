"""``laneway shadow export``: a column per deployment, named by catalog model id.

Shadowing a model on another provider (or self-hosted) is the common case: the candidate
and the primary serve one catalog model. The export keyed both sides by the model id the
upstreams reported, so when they reported the same one the primary's score overwrote the
candidate's (a win for the candidate was exported as a 0), and otherwise the columns were
ids that `router train`'s tier mapping (catalog ids) does not name."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from typer.testing import CliRunner

from laneway.cli import build_app
from laneway.gateway import SHADOW_PAIRS
from laneway.ledger import LEDGER, open_database

LLAMA = "llama-3.1-70b-instruct"  # the catalog id of both llama deployments


def _ledger(request_id: str, deployment: str, model_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "attempt": 0,
        "ts": datetime.now(UTC),
        "source": "api",
        "requested_model": "chat",
        "deployment": deployment,
        "model_id": model_id,
        "stream": False,
        "status": 200,
        "fallbacks": 0,
        "partial": False,
        "mirror_of": None,  # every row has every key: an executemany takes the first's
        **extra,
    }


# Pair i + 1: (primary deployment, its catalog id, candidate, its catalog id or None: no
# copy row in the ledger, the model id the candidate's upstream reported, verdict)
PAIRS: list[tuple[str, str, str, str | None, str, str | None]] = [
    ("groq-llama", LLAMA, "local-llama", LLAMA, "llama-3.1-70b", "a"),
    ("groq-llama", LLAMA, "local-llama", LLAMA, "llama-3.1-70b", "b"),
    ("groq-llama", LLAMA, "local-llama", LLAMA, "llama-3.1-70b", "tie"),
    ("groq-llama", LLAMA, "gpt-mini", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "b"),
    ("groq-llama", LLAMA, "groq-llama", LLAMA, "llama-3.1-70b", "tie"),  # itself
    ("groq-llama", LLAMA, "local-llama", LLAMA, "llama-3.1-70b", None),  # not judged
    ("groq-llama", LLAMA, "orphan", None, "orphan-served", "a"),
]


def _database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = open_database(url)
    pairs, ledger = [], []
    for i, (primary, p_model, cand, c_model, served, verdict) in enumerate(PAIRS):
        ledger.append(_ledger(f"r{i}", primary, p_model))
        if c_model is not None:
            ledger.append(_ledger(f"s{i}", cand, c_model, source="shadow", mirror_of=f"r{i}"))
        pairs.append(
            {
                "id": i + 1,  # exported as shadow-1, shadow-2, ...
                "request_id": f"r{i}",
                "ts": datetime.now(UTC),
                "rule": "try",
                "task": "chat",
                "prompt": [{"role": "user", "content": f"question {i}"}],
                "primary_deployment": primary,
                "primary_model": "llama-3.1-70b",  # what groq-llama reports
                "primary_output": f"answer {i}",
                "candidate": cand,
                "candidate_model": served,
                "candidate_output": f"other {i}",
                "verdict": verdict,
            }
        )
    with engine.begin() as conn:
        conn.execute(sa.insert(LEDGER), ledger)
        conn.execute(SHADOW_PAIRS.insert(), pairs)
    engine.dispose()
    return url


def test_each_deployment_keeps_its_outcomes_under_its_catalog_id(tmp_path: Path) -> None:
    out = tmp_path / "outcomes.jsonl"
    args = ["shadow", "export", "--out", str(out), "--database", _database(tmp_path)]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    groq, local = f"{LLAMA}@groq-llama", f"{LLAMA}@local-llama"
    # shadow-1 was {"llama-3.1-70b": 0}: the primary's loss overwrote the candidate's win.
    assert rows["shadow-1"]["outcomes"] == {local: 1.0, groq: 0.0}
    assert rows["shadow-2"]["outcomes"] == {local: 0.0, groq: 1.0}
    assert rows["shadow-3"]["outcomes"] == {local: 1.0, groq: 1.0}
    # Catalog ids, not the ids the upstreams reported (gpt-4o-mini-2024-07-18).
    assert rows["shadow-4"]["outcomes"] == {"gpt-4o-mini": 0.0, groq: 1.0}
    # No copy in the ledger: the reported id, as before.
    assert rows["shadow-7"]["outcomes"] == {"orphan-served": 1.0, groq: 0.0}
    assert sorted(rows) == ["shadow-1", "shadow-2", "shadow-3", "shadow-4", "shadow-7"]
    assert rows["shadow-1"]["messages"] == [{"role": "user", "content": "question 0"}]
    assert rows["shadow-1"]["task"] == "chat"
    notes = result.stderr.splitlines()
    assert notes[0] == (
        "note: 1 pair(s) left out: the candidate was the deployment that answered the "
        "request itself"
    )
    assert notes[1].startswith(
        f"note: catalog model {LLAMA} was served by 2 deployments: one column each "
        f"({groq}, {local})"
    )
    assert len(notes) == 2
    assert result.stdout == f"wrote 5 outcome rows to {out}\n"


def test_one_deployment_per_model_keeps_plain_catalog_ids(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    url = _database(tmp_path)
    args = ["shadow", "export", "--candidate", "gpt-mini", "--out", str(out), "--database", url]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["outcomes"] for r in rows] == [{"gpt-4o-mini": 0.0, LLAMA: 1.0}]
