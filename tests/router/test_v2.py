"""Router v2: per-task effects, loss-limited tiers, state directory, profiles, verifier."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from laneway.errors import ConfigError
from laneway.router import (
    Profile,
    Router,
    active_router_dir,
    calibration_rows,
    conversation_from_prompt,
    default_router_dir,
    install_router,
    load_router,
    state_dir,
    train_scorer,
)
from laneway.router._tasks import TaskOffsets

TIERS = ("cheap", "pricey")
MAPPING = {"cheap": ("w",), "pricey": ("s",)}


def _rows(n: int, task: str, weak_ok: float, seed: int) -> list[dict[str, Any]]:
    """Same kind of text for every task; only the weak model's success rate differs."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        words = " ".join(["word"] * int(rng.integers(3, 40)))
        rows.append(
            {
                "conversation": conversation_from_prompt(f"Question {i}: {words}?"),
                "outcomes": {"w": float(rng.random() < weak_ok), "s": 1.0},
                "task": task,
            }
        )
    return rows


def test_task_effects_move_the_gain_and_an_unseen_task_falls_back_to_text() -> None:
    rows = _rows(200, "hard", 0.1, 1) + _rows(200, "easy", 0.9, 2) + _rows(4, "tiny", 0.0, 3)
    scorer = train_scorer(rows, TIERS, MAPPING, None, use_embedding=False, shrinkage=10.0)
    router = Router(scorer, {"default": Profile("default", 0.3)})
    conv = conversation_from_prompt("Question 7: word word word?")
    hard = router.route_conversation(conv, task="hard")
    easy = router.route_conversation(conv, task="easy")
    text = router.route_conversation(conv)
    unseen = router.route_conversation(conv, task="never-seen")
    assert hard.score > 0.6 and easy.score < 0.25  # P(s) − P(w) per task
    assert hard.tier == "pricey" and easy.tier == "cheap"
    assert unseen.estimates == text.estimates and not unseen.task_known
    assert hard.task_known and "task hard" in hard.reason
    assert "unseen" in unseen.reason
    # Shrinkage: 4 rows of an all-failing task move the estimate far less than 200 do.
    tiny = router.route_conversation(conv, task="tiny")
    assert text.score < tiny.score < hard.score


def test_task_offsets_shrink_toward_the_text_model() -> None:
    z = np.zeros((10, 1))
    y = np.ones((10, 1))
    w = np.ones(10)
    weak_prior = TaskOffsets.fit(z, y, w, ["t"] * 10, shrinkage=0.1).offsets[0, 0]
    strong_prior = TaskOffsets.fit(z, y, w, ["t"] * 10, shrinkage=100.0).offsets[0, 0]
    assert weak_prior > 2.0 > 0.05 > strong_prior > 0.0
    assert TaskOffsets.fit(z, y, w, [None] * 10).names == ()


def test_trained_router_round_trips_tasks_and_verifier(tmp_path: Path) -> None:
    rows = _rows(60, "a", 0.2, 4) + _rows(60, "b", 0.8, 5)
    for i, r in enumerate(rows):
        r["answers"] = {"w": "" if r["outcomes"]["w"] == 0 else f'{{"answer": "{i}"}}'}
    scorer = train_scorer(rows, TIERS, MAPPING, None, use_embedding=False)
    assert scorer.verifier is not None and scorer.tasks.names == ("a", "b")
    scorer.save(tmp_path / "r")
    (tmp_path / "r" / "profiles").mkdir()
    (tmp_path / "r" / "profiles" / "default.json").write_text(Profile("default", 0.1).to_json())
    loaded = load_router(tmp_path / "r")
    conv = conversation_from_prompt("Question 3: word?")
    assert loaded.scorer.predict(conv, "a") == scorer.predict(conv, "a")
    assert loaded.scorer.verifier is not None
    good = loaded.scorer.verifier.judge(conv, '{"answer": "3"}', "a")
    bad = loaded.scorer.verifier.judge(conv, "", "a")
    assert bad.escalation > good.escalation  # empty answers were the failing ones
    assert 0.0 <= good.escalation <= 1.0


def test_shipped_profiles_differ_and_their_names_match_what_they_do() -> None:
    router = load_router()
    share = {}
    rows = calibration_rows(default_router_dir() / "calibration.json")
    for name in ("economy", "default", "quality"):
        routed = [router.route_conversation(r["conversation"], name, r.get("task")) for r in rows]
        w = np.array([r.get("weight", 1.0) for r in rows])
        share[name] = float(np.average([d.tier == "frontier" for d in routed], weights=w))
        assert share[name] == pytest.approx(router.profile(name).report["frontier_share"])
    assert share["economy"] + 0.1 < share["default"] < share["quality"] - 0.1
    losses = [router.profile(n).max_loss for n in ("economy", "default", "quality")]
    assert losses == sorted(losses, reverse=True)


def test_a_v1_router_or_profile_is_refused_with_what_to_do(tmp_path: Path) -> None:
    shutil.copytree(default_router_dir(), tmp_path / "old")
    meta_path = tmp_path / "old" / "router.json"
    meta = json.loads(meta_path.read_text())
    meta["format"] = 1
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="laneway router train"):
        load_router(tmp_path / "old")
    meta["format"] = 2
    meta_path.write_text(json.dumps(meta))
    (tmp_path / "old" / "profiles" / "default.json").write_text(
        json.dumps({"name": "default", "thresholds": {"simple": 0.6}})
    )
    with pytest.raises(ConfigError, match="recalibrate"):
        load_router(tmp_path / "old")


def test_state_dir_follows_xdg_and_never_the_package(tmp_path: Path) -> None:
    assert state_dir({"LANEWAY_DATA_DIR": "/x"}) == Path("/x")
    assert state_dir({"XDG_DATA_HOME": "/d"}) == Path("/d/laneway")
    assert state_dir({"HOME": "/h"}) == Path("/h/.local/share/laneway")
    env = {"LANEWAY_DATA_DIR": str(tmp_path / "s")}
    assert not str(active_router_dir(env)).startswith(str(default_router_dir().parent))


def test_promoted_router_becomes_the_one_loaded_and_the_old_one_is_kept(tmp_path: Path) -> None:
    env = {"LANEWAY_DATA_DIR": str(tmp_path / "s")}
    shipped = load_router(None, environ=env)
    candidate = tmp_path / "cand"
    shutil.copytree(default_router_dir(), candidate)
    (candidate / "profiles" / "default.json").write_text(Profile("default", -1.0).to_json())
    install_router(candidate, env)
    active = load_router(None, environ=env)
    conv = conversation_from_prompt("hi")
    assert active.route_conversation(conv).tier == "frontier"  # the candidate's profile
    assert shipped.route_conversation(conv).tier != "frontier"
    install_router(default_router_dir(), env)
    assert (active_router_dir(env).parent / "previous" / "router.json").is_file()
    assert load_router(None, environ=env).route_conversation(conv).tier != "frontier"


def test_scoring_and_verifier_stay_within_budget() -> None:
    """Sanity bounds (generous for a busy CI machine); benchmarks/router.py measures."""
    router = load_router()
    verifier = router.scorer.verifier
    assert verifier is not None
    conv = conversation_from_prompt("Solve for x: 3x + 7 = 22. Show your steps.")
    answer = '```json\n{"reasoning": "3x = 15 so x = 5", "answer": "5"}\n```'
    router.route_conversation(conv)
    times = []
    for _ in range(30):
        start = time.perf_counter()
        verifier.judge(conv, answer, "math_level5")
        times.append(time.perf_counter() - start)
    assert float(np.median(times)) < 0.005
