from __future__ import annotations

import pathlib
from decimal import Decimal

import pytest

from laneway.catalog import load_catalog
from laneway.errors import ConfigError

GOOD_MODEL = """\
  - id: {id}
    name: Test Model
    aliases: [{alias}]
    maker: Example
    origin: {origin}
    license_id: Apache-2.0
    license_class: {tier}
    open_weights: true
    params_total_b: 7
    params_active_b: 7
    modalities: [text]
    capabilities:
      tools: null
      json_schema: null
      images: null
      context_window: 8192
      max_output_tokens: null
    release_date: "2024-01"
    deprecation_date: {deprecation}
    prices:
      - {{provider: {provider}, input: {input}, output: "2.5", cached_input: null,
          date: {date}, source: {source}{note}}}
    benchmarks:
      - {{name: MMLU, value: 60.5, unit: "%", source: seeds/x.txt, date: "2026-01-02"}}
    sources:
      - {{ref: seeds/x.txt, date: "2026-01-02", covers: everything}}
"""


def _model(**changes: str) -> str:
    values = {
        "id": "test-model",
        "alias": "tm",
        "origin": "US",
        "tier": "permissive",
        "deprecation": "null",
        "provider": "together",
        "input": '"0.20"',
        "date": '"2026-01-02"',
        "source": "seeds/x.txt",
        "note": "",
    }
    values.update(changes)
    return GOOD_MODEL.format(**values)


def _write(tmp_path: pathlib.Path, *models: str) -> pathlib.Path:
    path = tmp_path / "models.yaml"
    path.write_text('version: 1\nupdated: "2026-01-02"\nmodels:\n' + "".join(models))
    return path


def test_a_good_file_loads(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, _model(deprecation='"2027-03-01"'))
    catalog = load_catalog(path)
    model = catalog.require("TM")
    price = model.price_for("together")
    assert price is not None
    assert price.input_per_mtok == Decimal("0.20")
    assert price.output_per_mtok == Decimal("2.5")
    assert model.deprecation_date is not None
    assert model.deprecation_date.isoformat() == "2027-03-01"
    assert model.sources == ("seeds/x.txt (2026-01-02): everything",)


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"tier": "copyleft"}, "license_class", "not one of"),
        ({"origin": "USA"}, "origin", "alpha-2"),
        ({"origin": "us"}, "origin", "alpha-2"),
        ({"input": '"-1"'}, "input", "negative"),
        ({"input": '"abc"'}, "input", "not a decimal"),
        ({"input": '"0"'}, "input", "zero price needs a note"),
        ({"date": "null"}, "date", "date"),
        ({"date": '"June 2026"'}, "date", "YYYY-MM-DD"),
        ({"source": '""'}, "source", "non-empty"),
        ({"provider": "acme"}, "provider", "unknown provider"),
        ({"deprecation": '"soon"'}, "deprecation_date", "YYYY-MM-DD"),
        ({"id": "Bad Id"}, "id", "lower-case"),
    ],
)
def test_bad_fields_name_file_model_and_field(
    tmp_path: pathlib.Path, changes: dict[str, str], field: str, fragment: str
) -> None:
    path = _write(tmp_path, _model(**changes))
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    message = info.value.message
    assert str(path) in message
    assert f"field {field!r}" in message
    assert fragment in message
    assert "model '" in message


def test_a_zero_price_with_a_note_is_accepted(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, _model(input='"0"', note=", note: free tier"))
    price = load_catalog(path).require("test-model").price_for("together")
    assert price is not None
    assert price.input_per_mtok == 0
    assert price.note == "free tier"


def test_missing_required_field(tmp_path: pathlib.Path) -> None:
    text = _model().replace("    maker: Example\n", "")
    with pytest.raises(ConfigError, match=r"model 'test-model'.*field 'maker'.*required"):
        load_catalog(_write(tmp_path, text))


def test_missing_unknown_marker_is_an_error(tmp_path: pathlib.Path) -> None:
    text = _model().replace("    params_total_b: 7\n", "")
    with pytest.raises(ConfigError, match=r"field 'params_total_b'.*write null when unknown"):
        load_catalog(_write(tmp_path, text))


def test_benchmark_without_source(tmp_path: pathlib.Path) -> None:
    text = _model().replace('unit: "%", source: seeds/x.txt, ', 'unit: "%", ')
    with pytest.raises(ConfigError, match=r"benchmarks\[0\]: field 'source'"):
        load_catalog(_write(tmp_path, text))


def test_model_without_sources(tmp_path: pathlib.Path) -> None:
    text = _model().split("    sources:\n")[0]
    with pytest.raises(ConfigError, match=r"field 'sources'"):
        load_catalog(_write(tmp_path, text))


def test_unknown_field_is_a_typo(tmp_path: pathlib.Path) -> None:
    text = _model().replace("    maker: Example\n", "    maker: Example\n    makr: x\n")
    with pytest.raises(ConfigError, match=r"field 'makr': unknown field"):
        load_catalog(_write(tmp_path, text))


def test_alias_shared_by_two_models(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, _model(), _model(id="other-model", alias="TM"))
    with pytest.raises(ConfigError, match=r"model 'other-model'.*field 'aliases'.*'test-model'"):
        load_catalog(path)


def test_duplicate_id(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, _model(), _model(alias="tm2"))
    with pytest.raises(ConfigError, match=r"field 'id'"):
        load_catalog(path)


def test_active_params_above_total(tmp_path: pathlib.Path) -> None:
    text = _model().replace("params_active_b: 7", "params_active_b: 9")
    with pytest.raises(ConfigError, match=r"field 'params_active_b'"):
        load_catalog(_write(tmp_path, text))


def test_not_yaml_and_missing_file(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_catalog(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_catalog(tmp_path / "missing.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text('version: 1\nupdated: "2026-01-02"\nmodels: []\n')
    with pytest.raises(ConfigError, match="field 'models'"):
        load_catalog(empty)


def test_old_license_tier_key_is_read_with_a_deprecation_warning(tmp_path: pathlib.Path) -> None:
    old = _model().replace("license_class:", "license_tier:")
    with pytest.warns(DeprecationWarning, match="rename it 'license_class'"):
        catalog = load_catalog(_write(tmp_path, old))
    (model,) = catalog.models
    assert model.license_class == "permissive"
    assert model.license_tier == "permissive"  # the old attribute name still answers
    both = _model().replace(
        "license_class: permissive", "license_class: permissive\n    license_tier: permissive"
    )
    with pytest.raises(ConfigError, match="license_class only"):
        load_catalog(_write(tmp_path, both))


def test_kv_cache_geometry(tmp_path: pathlib.Path) -> None:
    geo = _model().replace(
        "    modalities: [text]\n",
        "    modalities: [text]\n"
        "    kv_cache: {layers: 32, kv_heads: 8, head_dim: 128, source: x}\n",
    )
    (model,) = load_catalog(_write(tmp_path, geo)).models
    assert model.kv_cache is not None and model.kv_cache.bytes_per_token() == 131_072
    bad = geo.replace("kv_heads: 8, ", "")
    with pytest.raises(ConfigError, match="kv_heads"):
        load_catalog(_write(tmp_path, bad))


def test_a_deeply_nested_or_huge_user_catalog_is_an_error(tmp_path: pathlib.Path) -> None:
    """libyaml's loader (kept for the packaged catalog) dies with SIGSEGV on deeply nested
    input; a user's file goes through the pure-Python loader, in a child process here so
    that a crash fails the test instead of killing the run."""
    import subprocess
    import sys

    nested = tmp_path / "nested.yaml"
    nested.write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    code = (
        "import sys\nfrom laneway.catalog import load_catalog\nfrom laneway.errors import "
        "ConfigError\ntry:\n    load_catalog(__import__('pathlib').Path(sys.argv[1]))\n"
        "except ConfigError as exc:\n    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(nested)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-500:]
    assert "nested too deeply" in done.stdout
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as handle:
        handle.truncate(17 * 1024 * 1024)
    with pytest.raises(ConfigError, match="larger than its limit of 16 MiB"):
        load_catalog(huge)
