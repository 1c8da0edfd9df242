"""``laneway serve`` validates everything before its first side effect: no banner, no
database file, and every missing key variable named in one message."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from laneway.cli import build_app
from laneway.errors import ConfigError
from laneway.settings import check_environment, load_settings, vendors

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _clean_env() -> dict[str, str | None]:
    """No provider keys, no LANEWAY_* overrides (None unsets a variable in CliRunner)."""
    env: dict[str, str | None] = {
        "LANEWAY_CONFIG": None,
        "LANEWAY_DATABASE_URL": None,
        "LANEWAY_MASTER_KEY": None,
    }
    env.update({v.key_env: None for v in vendors().values() if v.key_env})
    return env


def _serve(*args: str, env: dict[str, str | None] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(build_app(), ["serve", *args], env={**_clean_env(), **(env or {})})
    return result.exit_code, result.stdout, result.stderr


def test_the_full_example_names_every_missing_variable_at_once_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # its database.url is sqlite:///laneway.db, relative
    code, out, err = _serve("--config", str(EXAMPLES / "laneway.yaml"))
    assert code == 1
    assert out == ""
    assert err.startswith("error: environment variables not set: ")
    for variable, deployment in (
        ("OPENAI_API_KEY", "gpt"),
        ("ANTHROPIC_API_KEY", "claude"),
        ("TOGETHER_API_KEY", "llama70b-together"),  # the vendor's default key variable
    ):
        assert f"{variable} ({deployment})" in err
    assert "examples/local.yaml" in err
    assert "Laneway" not in err  # no banner
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no laneway.db


def test_one_missing_variable_is_one_line() -> None:
    settings = load_settings(EXAMPLES / "laneway.yaml", env={})
    env = {"OPENAI_API_KEY": "x", "ANTHROPIC_API_KEY": "y"}
    with pytest.raises(ConfigError) as caught:
        check_environment(settings, env)
    assert "\n" not in caught.value.message
    assert caught.value.message.startswith(
        "environment variable not set: TOGETHER_API_KEY (llama70b-together); set them"
    )
    check_environment(settings, {**env, "TOGETHER_API_KEY": "z"})  # all set: no error


def test_key_files_and_unknown_vendors_are_listed_with_the_variables(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "deployments:\n"
        "  - {name: a, model: gpt-4o, provider: openai, api_key: env:A_KEY}\n"
        f"  - {{name: b, model: gpt-4o, provider: openai, api_key: 'file:{tmp_path}/nokey'}}\n"
        "  - {name: c, model: gpt-4o, provider: openai_compatible, vendor: nosuchvendor}\n"
        "  - {name: d, model: gpt-4o, provider: openai, api_key: env:A_KEY}\n"
        "  - {name: e, model: gpt-4o, provider: openai_compatible, vendor: vllm,"
        " api_base: 'http://127.0.0.1:9/v1'}\n"  # self-hosted: no key needed
    )
    with pytest.raises(ConfigError) as caught:
        check_environment(load_settings(config, env={}), {})
    lines = caught.value.message.splitlines()
    assert lines[0] == "3 problems:"
    assert lines[1] == "  environment variable not set: A_KEY (a, d)"
    assert lines[2].startswith("  deployment 'b': cannot read the api_key file")
    assert lines[3].startswith("  deployment 'c': unknown vendor 'nosuchvendor'")


def test_a_config_error_found_while_building_the_gateway_leaves_no_database(
    tmp_path: Path,
) -> None:
    db = tmp_path / "ledger.db"
    config = tmp_path / "c.yaml"
    config.write_text(
        f"database: {{url: 'sqlite:///{db}'}}\n"
        "deployments:\n"
        "  - {name: a, model: gpt-4o, provider: openai_compatible,"
        " api_base: 'http://127.0.0.1:9/v1'}\n"
        "policies: {sensitive: {kinds: [no_such_detector]}}\n"
    )
    code, _, err = _serve("--config", str(config))
    assert code == 1
    assert err.startswith("error: policies.sensitive.kinds: unknown kind")
    assert "Laneway" not in err
    assert not db.exists()


def test_the_local_example_needs_no_keys_and_has_two_lanes_and_tiers() -> None:
    settings = load_settings(EXAMPLES / "local.yaml", env={})
    check_environment(settings, {})  # nothing to set
    lanes = {d.name for d in settings.deployments}
    assert len(lanes) >= 2
    assert all(d.provider == "local" and d.hourly_cost_usd == 0 for d in settings.deployments)
    assert len(settings.tiers) >= 2 and settings.router.enabled


def test_a_missing_embedded_runtime_or_model_file_is_one_line_each_before_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the `local` extra or the model file, `laneway serve` names what to install
    and exits 1: no banner, no database, no model load (it was a start-up traceback)."""
    import laneway.providers
    from laneway.cli import _serve as serve_module

    def no_model_file() -> Path:
        raise ConfigError("the embedded model's file is not installed: pip install …")

    monkeypatch.chdir(tmp_path)
    installed = lambda module: module not in {"llama_cpp", "jinja2"}  # noqa: E731
    monkeypatch.setattr(serve_module, "_installed", installed)
    monkeypatch.setattr(laneway.providers, "default_gguf_path", no_model_file)
    code, out, err = _serve("--config", str(EXAMPLES / "local.yaml"))
    assert code == 1 and out == ""
    assert err.splitlines() == [
        "error: the numpy runtime of the embedded model (local-brief) needs jinja2: "
        "pip install 'laneway[local]'",
        "error: the embedded model's file is not installed: pip install …",
        "error: the numpy runtime of the embedded model (local) needs jinja2: "
        "pip install 'laneway[local]'",
    ]
    assert list(tmp_path.iterdir()) == []
    # a config naming llama.cpp where only numpy is installed names the other extra
    config = tmp_path / "c.yaml"
    config.write_text(
        "deployments:\n  - {name: l, model: smollm2-135m-instruct, provider: local,"
        " local: {runtime: llama_cpp, model_path: /nonexistent.gguf}}\n",
        "utf-8",
    )
    code, _, err = _serve("--config", str(config))
    assert code == 1
    assert err.splitlines() == [
        "error: the llama_cpp runtime of the embedded model (l) needs llama_cpp: "
        "pip install 'laneway[llamacpp]'",
        "error: local model file not found: /nonexistent.gguf (l)",
    ]
