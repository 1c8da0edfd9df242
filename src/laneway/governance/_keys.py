"""Virtual keys: generation, hashing at rest, the key record and its table.

A key is ``"lw-"`` followed by 32 random bytes (``secrets.token_urlsafe``). Only its SHA-256
hex digest is stored. A fast, unsalted hash is the right tool here: the key carries 256 bits
of entropy, so no dictionary or brute-force attack applies and a slow password hash (bcrypt,
scrypt) would only add latency to every request. The plaintext is returned once, at creation
or rotation, and never stored or logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, cast

import sqlalchemy as sa

from laneway.errors import InvalidRequest
from laneway.ledger import UtcDateTime, nusd_to_usd, usd_to_nusd
from laneway.settings import KeyPolicy

__all__ = [
    "KEYS",
    "KEY_PREFIX",
    "MAX_BUDGET_USD",
    "KeyRecord",
    "Period",
    "hash_key",
    "key_values",
    "master_key_matches",
    "new_key",
    "normalise_limits",
    "record_from_row",
]

Period = Literal["day", "month"]
KEY_PREFIX = "lw-"
MAX_BUDGET_USD = Decimal(1_000_000_000)
_KEY_BYTES = 32
_MAX_PRESENTED = 512  # longer strings are malformed; hash a bounded slice all the same
_MAX_NAME = 100


def _keys_table() -> sa.Table:
    return sa.Table(
        "gov_keys",
        sa.MetaData(),
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("prefix", sa.Text, nullable=False),
        sa.Column("key_hash", sa.Text, nullable=False, unique=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("rotated_at", UtcDateTime()),
        sa.Column("revoked_at", UtcDateTime()),
        sa.Column("budget_nusd", sa.BigInteger),
        sa.Column("period", sa.Text),
        sa.Column("models", sa.JSON),
        sa.Column("tiers", sa.JSON),
        sa.Column("rpm", sa.Integer),
        sa.Column("tpm", sa.Integer),
        sa.Column("allow_unknown_price", sa.Boolean, nullable=False),
        sa.Column("log_prompts", sa.Boolean, nullable=False),
        sa.Column("policy", sa.JSON, nullable=False),
    )


KEYS = _keys_table()


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A virtual key as stored (never the secret): identity, scope, limits and policy."""

    id: str
    name: str
    prefix: str  # the first 8 characters of the plaintext, for display
    created_at: datetime
    revoked_at: datetime | None
    budget_usd: Decimal | None
    period: Period | None
    models: tuple[str, ...] | None  # None = any model
    tiers: tuple[str, ...] | None  # None = any tier
    rpm: int | None
    tpm: int | None
    allow_unknown_price: bool
    log_prompts: bool
    policy: KeyPolicy

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows_model(self, model: str) -> bool:
        return self.models is None or model in self.models

    def allows_tier(self, tier: str) -> bool:
        return self.tiers is None or tier in self.tiers

    def may_use_unpriced(self) -> bool:
        """A key with a budget may use a deployment without a known price only if allowed."""
        return self.budget_usd is None or self.allow_unknown_price


def new_key() -> str:
    """A fresh plaintext key."""
    return KEY_PREFIX + secrets.token_urlsafe(_KEY_BYTES)


def hash_key(presented: str | None) -> str:
    """The stored form of a key. Defined for any input (missing and malformed keys are
    hashed too, so every authentication takes the same path)."""
    text = (presented or "")[:_MAX_PRESENTED]
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def master_key_matches(presented: str | None, master: str) -> bool:
    """Constant-time comparison of a presented key with ``LANEWAY_MASTER_KEY``."""
    return hmac.compare_digest(hash_key(presented), hash_key(master)) and bool(master)


def _clean_names(values: Iterable[str] | None, what: str) -> tuple[str, ...] | None:
    if values is None:
        return None
    cleaned = tuple(dict.fromkeys(v.strip() for v in values if v.strip()))
    if not cleaned:
        raise InvalidRequest(f"{what}: give at least one name, or leave it out for any")
    return cleaned


def _positive(value: int | None, what: str) -> int | None:
    if value is not None and value < 1:
        raise InvalidRequest(f"{what} must be at least 1")
    return value


def normalise_limits(
    name: str,
    budget_usd: Decimal | None,
    period: str | None,
    rpm: int | None,
    tpm: int | None,
) -> tuple[str, Decimal | None, Period | None]:
    """Validated name, budget and period (a budget without a period is monthly)."""
    name = name.strip()
    if not name or len(name) > _MAX_NAME or not name.isprintable():
        raise InvalidRequest(f"key name must be 1-{_MAX_NAME} printable characters")
    _positive(rpm, "rpm")
    _positive(tpm, "tpm")
    if budget_usd is None:
        if period is not None:
            raise InvalidRequest("a budget period needs a budget (--budget-usd)")
        return name, None, None
    budget = Decimal(budget_usd)
    if not budget.is_finite() or budget <= 0 or budget > MAX_BUDGET_USD:
        raise InvalidRequest(f"budget must be more than $0 and at most ${MAX_BUDGET_USD:,}")
    if period not in (None, "day", "month"):
        raise InvalidRequest(f"budget period must be 'day' or 'month', not {period!r}")
    return name, budget, cast("Period", period or "month")


def key_values(
    *,
    budget_usd: Decimal | None,
    period: Period | None,
    models: Iterable[str] | None,
    tiers: Iterable[str] | None,
    rpm: int | None,
    tpm: int | None,
    allow_unknown_price: bool,
    log_prompts: bool,
    policy: KeyPolicy | None,
) -> dict[str, Any]:
    """Database values for a key's limits and policy."""
    model_names = _clean_names(models, "models")
    tier_names = _clean_names(tiers, "tiers")
    return {
        "budget_nusd": usd_to_nusd(budget_usd),
        "period": period,
        "models": None if model_names is None else list(model_names),
        "tiers": None if tier_names is None else list(tier_names),
        "rpm": rpm,
        "tpm": tpm,
        "allow_unknown_price": bool(allow_unknown_price),
        "log_prompts": bool(log_prompts),
        "policy": (policy or KeyPolicy()).model_dump(mode="json"),
    }


def record_from_row(row: sa.RowMapping) -> KeyRecord:
    models, tiers = row["models"], row["tiers"]
    return KeyRecord(
        id=row["id"],
        name=row["name"],
        prefix=row["prefix"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        budget_usd=nusd_to_usd(row["budget_nusd"]),
        period=cast("Period | None", row["period"]),
        models=None if models is None else tuple(models),
        tiers=None if tiers is None else tuple(tiers),
        rpm=row["rpm"],
        tpm=row["tpm"],
        allow_unknown_price=bool(row["allow_unknown_price"]),
        log_prompts=bool(row["log_prompts"]),
        policy=KeyPolicy.model_validate(row["policy"] or {}),
    )
