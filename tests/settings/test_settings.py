"""Settings: the example config, defaults from the environment, errors with line numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from laneway.errors import ConfigError
from laneway.settings import Settings, default_settings, find_config, load_settings, resolve_secret

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_is_valid_and_documents_every_section() -> None:
    settings = load_settings(ROOT / "examples" / "laneway.yaml", env={})
    assert {d.provider for d in settings.deployments} == {
        "local",
        "openai",
        "anthropic",
        "openai_compatible",
    }
    assert list(settings.tiers) == ["simple", "standard", "complex", "frontier"]
    text = (ROOT / "examples" / "laneway.yaml").read_text()
    for section in Settings.model_fields:
        assert f"{section}:" in text, section


def test_defaults_without_keys_serve_the_embedded_model_only() -> None:
    settings = default_settings({})
    assert [d.name for d in settings.deployments] == ["local"]
    assert settings.tiers == {"simple": ("local",)}
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 4000
    assert settings.database.url == "sqlite:///laneway.db"


def test_defaults_add_a_deployment_per_key_in_the_environment() -> None:
    settings = default_settings({"OPENAI_API_KEY": "sk-a", "GROQ_API_KEY": "gk", "X": "y"})
    names = {d.name: d for d in settings.deployments}
    assert set(names) == {"local", "openai", "groq"}
    assert names["openai"].api_key == "env:OPENAI_API_KEY"
    assert names["groq"].provider == "openai_compatible"
    assert "groq" in settings.tiers["simple"]
    assert settings.tiers["frontier"] == ("openai",)


def test_invalid_file_names_the_line_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "laneway.yaml"
    path.write_text(
        "server:\n  port: 4000\ndeployments:\n  - name: a\n    model: m\n"
        "    provider: openai\n    api_key: sk-literal-key\n"
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    message = info.value.message
    assert f"{path}:7: deployments.0.api_key" in message
    assert "sk-literal-key" not in message  # the secret itself is never echoed


def test_invalid_yaml_syntax_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "laneway.yaml"
    path.write_text("server:\n  port: [4000\n")
    with pytest.raises(ConfigError, match=r"laneway\.yaml:\d+: invalid YAML"):
        load_settings(path, env={})


def test_unknown_key_and_bad_tier_reference(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("servr:\n  port: 1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:1: servr"):
        load_settings(path, env={})
    with pytest.raises(ValidationError, match="unknown deployments: ghost"):
        Settings.model_validate({"deployments": [], "tiers": {"simple": ["ghost"]}})


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_config(None, {}) is None
    (tmp_path / "laneway.yaml").write_text("{}\n")
    assert find_config(None, {}) == Path("laneway.yaml")
    other = tmp_path / "other.yaml"
    other.write_text("{}\n")
    assert find_config(None, {"LANEWAY_CONFIG": str(other)}) == other
    explicit = tmp_path / "explicit.yaml"
    explicit.write_text("{}\n")
    assert find_config(explicit, {"LANEWAY_CONFIG": str(other)}) == explicit
    with pytest.raises(ConfigError, match="not found"):
        find_config(tmp_path / "missing.yaml", {})


def test_database_url_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, env={"LANEWAY_DATABASE_URL": "sqlite:///x.db"})
    assert settings.database.url == "sqlite:///x.db"


def test_secrets_resolve_from_env_and_file(tmp_path: Path) -> None:
    secret = tmp_path / "key"
    secret.write_text("sk-from-file\n")
    assert resolve_secret("env:K", {"K": "v"}) == "v"
    assert resolve_secret(f"file:{secret}", {}) == "sk-from-file"
    with pytest.raises(ConfigError, match="K is not set"):
        resolve_secret("env:K", {})


def test_settings_are_immutable() -> None:
    settings = default_settings({})
    with pytest.raises(ValidationError):
        settings.server.port = 1  # type: ignore[misc]


def test_a_deeply_nested_or_huge_config_is_one_error(tmp_path: Path) -> None:
    """PyYAML recursed into a RecursionError traceback on 100k nested brackets; a huge
    file was read whole. Both are a one-line ConfigError (exit 1 from every command)."""
    nested = tmp_path / "nested.yaml"
    nested.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_settings(nested)
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as handle:
        handle.truncate(5 * 1024 * 1024)
    with pytest.raises(ConfigError, match="larger than its limit of 4 MiB"):
        load_settings(huge)
