"""Every package re-exports a sorted ``__all__`` of names that exist (httpx's habit)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import laneway

PACKAGES = [
    "laneway",
    *sorted(
        name for _, name, is_pkg in pkgutil.walk_packages(laneway.__path__, "laneway.") if is_pkg
    ),
]


@pytest.mark.parametrize("name", PACKAGES)
def test_package_exports(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert list(exported) == sorted(exported, key=lambda n: (not n.isupper(), n)) or list(
        exported
    ) == sorted(exported), f"{name}.__all__ is not sorted"
    for attr in exported:
        assert hasattr(module, attr), f"{name}.__all__ names missing {attr!r}"
    assert len(set(exported)) == len(exported)


def test_private_modules_declare_all() -> None:
    missing = []
    for info in pkgutil.walk_packages(laneway.__path__, "laneway."):
        leaf = info.name.rsplit(".", 1)[-1]
        if info.ispkg or not leaf.startswith("_"):
            continue
        module = importlib.import_module(info.name)
        if not hasattr(module, "__all__"):
            missing.append(info.name)
    assert missing == []
