"""The --help of the commands a newcomer runs first shows how to call them (an example)
and says what the exit codes mean, as the commands do."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from laneway.cli import build_app

WITH_EXAMPLES = [
    ("eval", "run"),
    ("eval", "compare"),
    ("eval", "show"),
    ("drift", "run"),
    ("drift", "check"),
    ("shadow", "report"),
    ("shadow", "export"),
    ("advise",),
]


@pytest.mark.parametrize("command", WITH_EXAMPLES, ids=" ".join)
def test_help_shows_an_example(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(build_app(), [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.stdout, result.stdout
    assert f"laneway {' '.join(command)} " in result.stdout  # the example calls it


def test_help_states_the_exit_codes_the_commands_use() -> None:
    # `eval compare --help` said "2 on an error"; it exits 1 when a run is unknown.
    compare = CliRunner().invoke(build_app(), ["eval", "compare", "--help"]).stdout
    assert "2 on" not in " ".join(compare.split())
    assert "the comparison cannot be made" in " ".join(compare.split())
    for command in (["shadow", "report"], ["advise"]):
        text = " ".join(CliRunner().invoke(build_app(), [*command, "--help"]).stdout.split())
        assert "Exit 0" in text and "2 a wrong command line" in text, text


@pytest.mark.parametrize("command", [("eval", "run"), ("drift", "run")], ids=" ".join)
def test_help_says_no_running_gateway_is_needed(command: tuple[str, ...]) -> None:
    text = " ".join(CliRunner().invoke(build_app(), [*command, "--help"]).stdout.split())
    assert "no `laneway serve` needs to run" in text, text
