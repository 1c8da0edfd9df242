"""Layering rules over the source tree, checked on every import statement (module level and
inside functions):

1. A package never imports another package's private ``_modules``: only what that package
   exports from its ``__init__`` (its ``__all__``). Inside one package, private modules are fine.
2. The core (``laneway.gateway``), evals, the advisor and the router never import the HTTP
   layer (``laneway.server``): they use the protocol-neutral core.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "laneway"

# Packages that must not depend on the HTTP layer.
NO_SERVER = {
    "evals",
    "advisor",
    "gateway",
    "router",
    "governance",
    "providers",
    "ledger",
    "settings",
}


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # `from laneway.x import _private_module`
            found.extend(
                (node.lineno, f"{node.module}.{alias.name}")
                for alias in node.names
                if alias.name.startswith("_")
            )
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def violations(package: str, source: str, where: str, *, rule: str = "private") -> list[str]:
    """The problems of one module of ``package`` under one rule ("private" or "server")."""
    problems: list[str] = []
    for line, module in _imports(ast.parse(source)):
        parts = module.split(".")
        if parts[0] != "laneway" or len(parts) < 2:
            continue
        other = parts[1]
        if rule == "server":
            if other == "server" and package in NO_SERVER:
                problems.append(f"{where}:{line} {package} imports the HTTP layer ({module})")
            continue
        private = len(parts) >= 3 and parts[2].startswith("_") and not parts[2].startswith("__")
        if other != package and private:
            problems.append(f"{where}:{line} imports {module}, private to laneway.{other}")
    return sorted(set(problems))


def _all_violations(rule: str) -> list[str]:
    problems: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC)
        if len(relative.parts) < 2:
            continue  # laneway/__init__.py, laneway/errors.py: top-level modules
        source = path.read_text(encoding="utf-8")
        problems += violations(relative.parts[0], source, str(relative), rule=rule)
    return problems


def test_the_rule_catches_what_it_forbids() -> None:
    bad = (
        "from laneway.providers._types import ChatRequest\n"
        "def f():\n    import laneway.ledger._db\n"
        "from laneway.router import _scorer\n"
        "from laneway.server import build_gateway\n"
    )
    found = violations("evals", bad, "x.py")
    assert len(found) == 3, found
    assert len(violations("evals", bad, "x.py", rule="server")) == 1
    assert violations("server", bad, "x.py", rule="server") == []
    fine = "from laneway.providers import ChatRequest\nfrom laneway.evals._stats import sign_test\n"
    assert violations("evals", fine, "x.py") == []


def test_no_package_reaches_into_another_packages_private_modules() -> None:
    problems = _all_violations("private")
    assert problems == [], "\n".join(problems)


def test_evals_and_the_advisor_use_the_core_not_the_http_layer() -> None:
    problems = _all_violations("server")
    assert problems == [], "\n".join(problems)
