from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _user_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every router test gets its own empty user state directory (no active router)."""
    state = tmp_path / "state"
    monkeypatch.setenv("LANEWAY_DATA_DIR", str(state))
    return state
