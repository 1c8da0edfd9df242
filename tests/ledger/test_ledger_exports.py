from __future__ import annotations

import importlib

import pytest

import laneway.ledger


def test_all_is_sorted_and_every_name_exists() -> None:
    names = laneway.ledger.__all__
    assert len(names) == len(set(names))

    def isort_key(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert list(names) == sorted(names, key=isort_key)
    for name in names:
        assert hasattr(laneway.ledger, name), name


@pytest.mark.parametrize(
    "module", ["_db", "_migrations", "_money", "_pricing", "_row", "_schema", "_usage", "_writer"]
)
def test_each_module_declares_all(module: str) -> None:
    mod = importlib.import_module(f"laneway.ledger.{module}")
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"
