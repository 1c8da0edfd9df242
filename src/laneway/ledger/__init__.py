"""The ledger: one row per request and per upstream attempt (a request answered by its one
and only call is a single row), with exact costs.

SQLite (WAL) by default through SQLAlchemy Core, numbered migrations, a batching writer off
the request path, pure pricing functions and the usage queries behind ``laneway usage``.
"""

from __future__ import annotations

from laneway.ledger._db import check_database_file, open_database, sqlite_path
from laneway.ledger._migrations import (
    MIGRATIONS,
    Migration,
    applied_migrations,
    migrate,
    pending_migrations,
)
from laneway.ledger._money import format_usd, nusd_to_usd, usd_to_nusd
from laneway.ledger._pricing import amortised_cost, token_cost
from laneway.ledger._row import HOSTINGS, SOURCES, LedgerRow
from laneway.ledger._schema import LEDGER, UtcDateTime, row_from_mapping
from laneway.ledger._usage import (
    GROUP_BY,
    GroupBy,
    UsageGroup,
    parse_since,
    percentile,
    request_costs,
    usage_summary,
)
from laneway.ledger._writer import LedgerWriter

__all__ = [
    "GROUP_BY",
    "HOSTINGS",
    "LEDGER",
    "MIGRATIONS",
    "SOURCES",
    "GroupBy",
    "LedgerRow",
    "LedgerWriter",
    "Migration",
    "UsageGroup",
    "UtcDateTime",
    "amortised_cost",
    "applied_migrations",
    "check_database_file",
    "format_usd",
    "migrate",
    "nusd_to_usd",
    "open_database",
    "parse_since",
    "pending_migrations",
    "percentile",
    "request_costs",
    "row_from_mapping",
    "sqlite_path",
    "token_cost",
    "usage_summary",
    "usd_to_nusd",
]
