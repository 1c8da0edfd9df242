"""Typed reads from one YAML mapping, raising ``ConfigError`` that names file, model and field."""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import NoReturn

from laneway.errors import ConfigError

__all__ = ["Fields"]

_DATE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?$")
_MISSING = object()


class Fields:
    """A mapping read field by field; every error names ``where`` and the field."""

    __slots__ = ("_data", "_where")

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
        self._data: Mapping[object, object] = data
        self._where = where

    @property
    def where(self) -> str:
        return self._where

    def fail(self, field: str, problem: str) -> NoReturn:
        raise ConfigError(f"{self._where}: field {field!r}: {problem}", param=field)

    def check_keys(self, allowed: frozenset[str]) -> None:
        unknown = sorted(str(k) for k in self._data if k not in allowed)
        if unknown:
            self.fail(unknown[0], f"unknown field (allowed: {', '.join(sorted(allowed))})")

    def raw(self, field: str, *, required: bool) -> object:
        value = self._data.get(field, _MISSING)
        if value is _MISSING:
            if required:
                self.fail(field, "is required (write null when unknown)")
            return None
        return value

    def text(self, field: str) -> str:
        value = self.raw(field, required=True)
        if not isinstance(value, str) or not value.strip():
            self.fail(field, "must be a non-empty string")
        return value.strip()

    def opt_text(self, field: str, *, required: bool = False) -> str | None:
        value = self.raw(field, required=required)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(field, "must be a non-empty string or null")
        return value.strip()

    def flag(self, field: str) -> bool:
        value = self.raw(field, required=True)
        if not isinstance(value, bool):
            self.fail(field, "must be true or false")
        return value

    def opt_flag(self, field: str) -> bool | None:
        value = self.raw(field, required=True)
        if value is not None and not isinstance(value, bool):
            self.fail(field, "must be true, false or null")
        return value

    def opt_int(self, field: str) -> int | None:
        value = self.raw(field, required=True)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            self.fail(field, "must be a positive integer or null")
        return value

    def opt_float(self, field: str) -> float | None:
        value = self.raw(field, required=True)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(field, "must be a number or null")
        number = float(value)
        if not math.isfinite(number) or number <= 0:
            self.fail(field, "must be a positive finite number or null")
        return number

    def number(self, field: str) -> float:
        value = self.raw(field, required=True)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(field, "must be a number")
        if not math.isfinite(float(value)):
            self.fail(field, "must be finite")
        return float(value)

    def money(self, field: str, *, required: bool = True) -> Decimal | None:
        """USD per million tokens as ``Decimal``; ``None`` when unknown, never negative.
        ``required=False``: a missing field is unknown too (a price kind few models have)."""
        value = self.raw(field, required=required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.fail(field, "must be a decimal number (quote it: '2.50') or null")
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            self.fail(field, f"{value!r} is not a decimal number")
        if not amount.is_finite():
            self.fail(field, "must be finite")
        if amount < 0:
            self.fail(field, f"must not be negative (got {amount})")
        return amount

    def date(self, field: str, *, required: bool = True) -> str | None:
        """A ``YYYY-MM-DD`` or ``YYYY-MM`` date (a month where the source gives no day)."""
        value = self.raw(field, required=required)
        if value is None:
            if required:
                self.fail(field, "is required: every figure carries its date")
            return None
        if isinstance(value, datetime.date):
            return value.isoformat()
        if not isinstance(value, str) or not _DATE.match(value):
            self.fail(field, f"must be a date YYYY-MM-DD or YYYY-MM (got {value!r})")
        return value

    def full_date(self, field: str) -> datetime.date | None:
        value = self.raw(field, required=False)
        if value is None:
            return None
        if isinstance(value, datetime.date):
            return value
        if isinstance(value, str):
            try:
                return datetime.date.fromisoformat(value)
            except ValueError:
                pass
        self.fail(field, f"must be a date YYYY-MM-DD or null (got {value!r})")

    def names(self, field: str, *, required: bool = True) -> tuple[str, ...]:
        value = self.raw(field, required=required)
        if value is None and not required:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.fail(field, "must be a list of non-empty strings")
        return tuple(value)

    def items(self, field: str) -> list[object]:
        value = self.raw(field, required=False)
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(field, "must be a list")
        return value
