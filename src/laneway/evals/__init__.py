"""Evals: a team's own suites run against candidate models through the gateway.

Suites (YAML + optional JSONL) → runs (every case on every candidate, repeated, through
the gateway in-process with ``source="eval"``) → stored run records (database rows and a
versioned JSON export) → metrics, judge and human pairwise verdicts, significance tests
between runs, HTML reports, and outcomes for router training. Drift: canary runs and
ledger windows against a pinned baseline (``DriftCollector`` exports the gauges). Shadow
traffic: ``shadow_report`` summarises (primary, candidate) pairs and gates a candidate.
"""

from laneway.evals._canary import CanaryOutcome, drift_from_ledger, run_canary
from laneway.evals._checks import Check, extract_json, normalize_answer, score_answer, verdict
from laneway.evals._compare import Comparison, Regression, compare_runs
from laneway.evals._drift import DriftReport, DriftSignal, detect_drift
from laneway.evals._drift_store import DriftCollector, DriftGauge, drift_gauges
from laneway.evals._files import check_output_dir, check_output_file, write_atomic
from laneway.evals._from_ledger import check_where, suite_from_ledger
from laneway.evals._judge import PROMPT_VERSION, PairResult, judge_pair, judge_rubric, position_bias
from laneway.evals._metrics import MIN_P95_SAMPLES, ModelMetrics, compute_metrics, metrics_to_json
from laneway.evals._outcomes import outcome_rows, write_outcomes
from laneway.evals._progress import RunProgress
from laneway.evals._report import write_report
from laneway.evals._review import (
    ReviewItem,
    ReviewServer,
    VerdictSink,
    can_open_browser,
    review_items,
    shadow_review_items,
)
from laneway.evals._runner import (
    RunOptions,
    RunSummary,
    candidates_from,
    check_models,
    check_run_id,
    check_scorers,
    new_run,
    new_run_id,
    run_suite,
)
from laneway.evals._shadow_stats import (
    NonInferiority,
    ShadowPair,
    ShadowReport,
    non_inferiority,
    shadow_report,
)
from laneway.evals._stats import (
    PairedTest,
    agreement,
    clustered_interval,
    format_p,
    mcnemar,
    paired_test,
    pass_hat_k,
    sign_test,
    wilson_interval,
)
from laneway.evals._store import (
    LoadedRun,
    PairVerdict,
    ResultRow,
    RunInfo,
    RunRecord,
    load_run,
    run_exists_message,
    write_export,
)
from laneway.evals._suite import (
    MAX_SUITE_BYTES,
    Case,
    Instructions,
    Suite,
    load_suite,
    packaged_suites,
)
from laneway.evals._twosample import TwoSample, fisher_exact, mann_whitney

__all__ = [
    "MAX_SUITE_BYTES",
    "MIN_P95_SAMPLES",
    "PROMPT_VERSION",
    "CanaryOutcome",
    "Case",
    "Check",
    "Comparison",
    "DriftCollector",
    "DriftGauge",
    "DriftReport",
    "DriftSignal",
    "Instructions",
    "LoadedRun",
    "ModelMetrics",
    "NonInferiority",
    "PairResult",
    "PairVerdict",
    "PairedTest",
    "Regression",
    "ResultRow",
    "ReviewItem",
    "ReviewServer",
    "RunInfo",
    "RunOptions",
    "RunProgress",
    "RunRecord",
    "RunSummary",
    "ShadowPair",
    "ShadowReport",
    "Suite",
    "TwoSample",
    "VerdictSink",
    "agreement",
    "can_open_browser",
    "candidates_from",
    "check_models",
    "check_output_dir",
    "check_output_file",
    "check_run_id",
    "check_scorers",
    "check_where",
    "clustered_interval",
    "compare_runs",
    "compute_metrics",
    "detect_drift",
    "drift_from_ledger",
    "drift_gauges",
    "extract_json",
    "fisher_exact",
    "format_p",
    "judge_pair",
    "judge_rubric",
    "load_run",
    "load_suite",
    "mann_whitney",
    "mcnemar",
    "metrics_to_json",
    "new_run",
    "new_run_id",
    "non_inferiority",
    "normalize_answer",
    "outcome_rows",
    "packaged_suites",
    "paired_test",
    "pass_hat_k",
    "position_bias",
    "review_items",
    "run_canary",
    "run_exists_message",
    "run_suite",
    "score_answer",
    "shadow_report",
    "shadow_review_items",
    "sign_test",
    "suite_from_ledger",
    "verdict",
    "wilson_interval",
    "write_atomic",
    "write_export",
    "write_outcomes",
    "write_report",
]
