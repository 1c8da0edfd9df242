"""What the advisor shows people cites the public articles (publisher, month, URL), never
the project-internal copies of them (``seeds/000_….txt``), which Laneway does not ship."""

from __future__ import annotations

import importlib.resources
import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from laneway.advisor import SOURCES, cite, seed_checks
from laneway.cli._app import build_app
from laneway.errors import ConfigError

ROOT = Path(__file__).parents[2]
WORKLOADS = Path(__file__).parent / "workloads"
#: Anything that points at an unshipped seed file: ``seeds/003``, ``003_89ce8b6907b2801f``.
UNSHIPPED = re.compile(r"seeds/|\b00[0-4]_[0-9a-f]{16}\b")
URLS = {
    "000": "https://www.digitalapplied.com/blog/open-weight-vs-closed-source-ai-models-q2-2026",
    "001": "https://www.sabaoon.dev/blog/open-weight-vs-closed-source-ai-2026",
    "002": "https://aitechconnect-976.pages.dev/news/open-weight-models-closed-gap-kimi-k2-gpt-5-5",
    "003": "https://rtsnstudios.com/insights-knowledge-open-vs-closed-models",
    "004": "https://novaaiops.com/blog/open-vs-closed-weights-2026",
}


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(build_app(), list(args))
    assert result.exit_code == 0, (args, result.output)
    return result.output


def _workload(tmp_path: Path, name: str) -> Path:
    data = yaml.safe_load((WORKLOADS / name).read_text("utf-8"))
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data["workload"]), "utf-8")
    return path


def test_the_five_sources_and_their_citations() -> None:
    assert {k: s.url for k, s in SOURCES.items()} == URLS
    assert cite("000") == "Digital Applied, Apr 2026"
    assert cite("1") == "sabaoon.dev, Jun 2026"
    assert cite("002") == "AI Tech Connect, May 2026"
    assert cite("003", url=True) == f"RTSN, Jun 2026 ({URLS['003']})"
    assert cite("004") == "novaaiops.com, Aug 2026"
    with pytest.raises(ConfigError, match="unknown source '9'"):
        cite("9")


def test_no_packaged_advisor_file_names_a_seed_file() -> None:
    package = importlib.resources.files("laneway.advisor")
    names = [p.name for p in package.iterdir() if p.name.endswith((".py", ".yaml", ".html"))]
    assert {"report.html", "roles.yaml", "gpus.yaml", "_seedcheck.py"} <= set(names)
    for name in names:
        text = package.joinpath(name).read_text("utf-8")
        assert not UNSHIPPED.search(text), (name, UNSHIPPED.findall(text)[:3])


@pytest.mark.parametrize(
    "name",
    [
        "w09_regulated_selfhost_volume.yaml",  # a fleet, gates, regulated-data reasons
        "w13_no_eval.yaml",  # "needs eval" warnings
        "w17_regulated_default_closed.yaml",  # an open-weight API excluded for regulated data
        "w19_latency_slo.yaml",  # the latency rule
        "w20_fine_tune.yaml",  # the fine-tune reason
    ],
)
def test_advise_output_cites_public_articles(tmp_path: Path, name: str) -> None:
    workload = _workload(tmp_path, name)
    report = tmp_path / "r.html"
    text = _invoke("advise", str(workload), "--out", str(report))
    raw = _invoke("advise", str(workload), "--json")
    html = report.read_text("utf-8")
    for label, out in (("text", text), ("json", raw), ("html", html)):
        assert not UNSHIPPED.search(out), (label, UNSHIPPED.findall(out)[:3])
    data = json.loads(raw)
    assert [s["url"] for s in data["sources"]] == list(URLS.values())
    assert {c["url"] for c in data["crossover_claims"]} <= set(URLS.values())
    sources = {a["name"]: a["source"] for a in data["assumptions"]}
    assert sources["update_cycle_usd"].startswith(f"RTSN, Jun 2026 ({URLS['003']})")
    for url in URLS.values():
        assert f'href="{url}"' in html, url
    assert "The four gates (<a href" in html and "AI Tech Connect, May 2026</a>" in html
    assert "Digital Applied, Apr 2026" in text


def test_seed_check_tco_and_help_cite_public_articles() -> None:
    outputs = {
        "seed-check": _invoke("advise", "--seed-check"),
        "seed-check --json": _invoke("advise", "--seed-check", "--json"),
        "advise --help": _invoke("advise", "--help"),
        "tco --json": _invoke(
            "tco", "--tokens-per-day", "50000000", "--model", "llama-3.3-70b", "--json"
        ),
    }
    for label, out in outputs.items():
        assert not UNSHIPPED.search(out), (label, UNSHIPPED.findall(out)[:3])
    rows = json.loads(outputs["seed-check --json"])
    assert {r["source"] for r in rows} == {cite(c.seed) for c in seed_checks()}
    assert {r["url"] for r in rows} <= set(URLS.values())
    assert "(RTSN, Jun 2026)" in outputs["seed-check"]
    assert URLS["003"] in outputs["seed-check"]
    hourly = next(
        a for a in json.loads(outputs["tco --json"])["assumptions"] if a["name"] == "gpu_hourly_usd"
    )
    assert hourly["source"].startswith(f"Digital Applied, Apr 2026 ({URLS['000']})")


def test_docs_seed_check_table_matches_the_output() -> None:
    doc = (ROOT / "docs" / "advisor.md").read_text("utf-8")
    assert not UNSHIPPED.search(doc), UNSHIPPED.findall(doc)[:3]
    for c in seed_checks():
        row = f"| {c.claim} ({c.citation}) | {c.figure} | **{c.verdict}** |"
        assert row in doc, c.id
