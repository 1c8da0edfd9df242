from __future__ import annotations

import pytest
from typer.testing import CliRunner

from laneway.cli import build_app


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--port", "99999"], "--port"),  # uvicorn would bind 99999 - 65536 = 34463
        (["--port", "-5"], "--port"),
        (["--workers", "0"], "--workers"),
        (["--log-level", "loud"], "--log-level"),
    ],
)
def test_serve_refuses_bad_options_before_starting(args: list[str], says: str) -> None:
    result = CliRunner().invoke(build_app(), ["serve", *args])
    assert result.exit_code == 2
    assert says in result.output
    assert "Laneway" not in result.output  # no banner: nothing was started
