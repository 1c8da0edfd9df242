"""``eval from-ledger`` samples client traffic only: a shadow copy (or any source but
``api``) is another deployment's answer to a client's request, not a request; the filter
was ``source != "eval"``, which let shadow rows with a logged prompt in."""

from __future__ import annotations

import sqlalchemy as sa

from laneway.evals import suite_from_ledger
from laneway.ledger import LEDGER
from tests.evals.test_ledger_and_outcomes import _ledger_row


def test_only_client_requests_are_sampled(engine: sa.Engine) -> None:
    rows = [
        _ledger_row(1),
        _ledger_row(2, source="shadow", mirror_of="req1"),
        _ledger_row(3, source="eval"),
        _ledger_row(4, source="canary"),  # a source this version does not write
    ]
    for row in rows:
        row.setdefault("mirror_of", None)  # every row has every key (one executemany)
    with engine.begin() as conn:
        conn.execute(LEDGER.insert(), rows)
    data = suite_from_ledger(engine, sample=10, name="s")
    assert [c["id"] for c in data["cases"]] == ["ledger-req1"]
