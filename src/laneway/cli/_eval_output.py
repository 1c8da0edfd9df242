"""What the ``eval`` commands print: the metrics table, the end of a run (its exit code),
a comparison, the judge's position bias."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.table import Table

    from laneway.evals import Comparison, ModelMetrics, RunSummary

__all__ = ["finish_run", "metrics_table", "print_bias", "print_comparison"]


def metrics_table(metrics: list[ModelMetrics], title: str) -> Table:
    from laneway.evals import MIN_P95_SAMPLES

    def pct(v: float | None) -> str:
        return "–" if v is None else f"{v * 100:.1f}%"

    def ms(v: float | None) -> str:
        return "–" if v is None else f"{v:.0f}"

    few = [
        m for m in metrics if m.latency_p95_ms is not None and m.latency_samples < MIN_P95_SAMPLES
    ]
    notes = []
    if few:
        notes.append(f"* p95 over fewer than {MIN_P95_SAMPLES} calls: not a reliable tail estimate")
    if any(m.cost_failed_unknown and m.cost_per_case_usd is not None for m in metrics):
        notes.append("+ $/case over the calls with a known cost: failed calls have none")
    caption = "\n".join(notes) or None

    from rich.table import Table

    table = Table(title=title, caption=caption)
    for col in (
        "model",
        "tag",
        "n",
        "err",
        "pass",
        "95% CI",
        "instr",
        "format",
        "pass^k",
        "agree",
        "p50 ms",
        "p95 ms",
        "ttft p50",
        "tok/case",
        "$/case",
        "$/month",
    ):
        table.add_column(col, justify="left" if col in ("model", "tag") else "right")
    for m in metrics:
        k = max(m.pass_hat_k, default=None)
        table.add_row(
            m.model,
            m.tag or "all",
            str(m.attempts),
            str(m.errors),
            pct(m.pass_rate),
            # No scored case: no rate, and no interval (it showed 0.0%-100.0%).
            "–" if m.pass_rate is None else f"{pct(m.pass_ci[0])}–{pct(m.pass_ci[1])}",
            pct(m.instruction_following),
            pct(m.format_adherence),
            "–" if k is None or k < 2 else f"k={k} {pct(m.pass_hat_k[k])}",
            pct(m.agreement),
            ms(m.latency_p50_ms),
            ms(m.latency_p95_ms) + ("*" if m in few else ""),
            ms(m.ttft_p50_ms),
            ms(m.tokens_per_case),
            _cost(m),
            "–" if m.monthly_cost_usd is None else str(m.monthly_cost_usd),
        )
    return table


def _cost(m: ModelMetrics) -> str:
    if m.cost_per_case_usd is None:
        return "unknown"
    return f"{m.cost_per_case_usd:.6f}" + ("+" if m.cost_failed_unknown else "")


def finish_run(
    summary: RunSummary,
    resume_hint: str,
    run_id: str,
    metrics: list[ModelMetrics],
    min_pass: float | None,
) -> None:
    """The run's last lines and exit code: 1 incomplete (``resume_hint``: the command
    that resumes it) or below --min-pass, else 0."""
    judged = ""
    if summary.pair_verdicts or summary.judge_failures:
        judged = (
            f", {summary.pair_verdicts} pairwise verdicts ({summary.pairs_identical} "
            f"identical answers, no judge call)"
        )
    typer.echo(
        f"status {summary.status}: {summary.done} calls in {summary.wall_s:.1f} s, "
        f"{summary.skipped} already done, {summary.errors} errors{judged}"
    )
    if summary.status != "complete":
        for message in summary.harness_errors.values():
            typer.echo(f"error: {message}", err=True)
        codes = ", ".join(f"{code} x{n}" for code, n in sorted(summary.error_codes.items()))
        failures = f"{summary.errors} failed calls ({codes})" if summary.errors else ""
        if summary.judge_failures:
            failures += f"{'; ' if failures else ''}{summary.judge_failures} pairs not judged"
        typer.echo(
            f"error: run {run_id} is incomplete: {failures}; resume with: {resume_hint}",
            err=True,
        )
        raise typer.Exit(1)
    if min_pass is not None:
        below = [m for m in metrics if m.tag is None and (m.pass_rate or 0.0) < min_pass]
        for m in below:
            rate = "no scored case" if m.pass_rate is None else f"pass rate {m.pass_rate:.1%}"
            typer.echo(f"FAIL {m.model}: {rate} < --min-pass {min_pass:.1%}")
        if below:
            raise typer.Exit(1)
        typer.echo(f"PASS: every candidate at or above --min-pass {min_pass:.1%}")


def print_bias(pairs: Any) -> None:
    """The judge's position bias, when the run has pairwise verdicts of a judge."""
    from laneway.evals import position_bias

    bias = position_bias(pairs)
    if bias["n"]:
        typer.echo(
            f"judge position bias over {bias['n']} pairs asked in both orders: consistent "
            f"{bias['consistent_share']:.0%}, first shown won both {bias['first_share']:.0%}, "
            f"second shown won both {bias['second_share']:.0%}, tie in one order only "
            f"{bias['mixed_share']:.0%}"
        )


def print_comparison(result: Comparison) -> None:
    """The text form of ``eval compare``."""
    from laneway.evals import format_p

    t = result.test
    what = "mean score" if result.graded else "pass"
    typer.echo(
        f"{result.model_a} (A, {result.run_a}) vs {result.model_b} (B, {result.run_b}): "
        f"{t.n} paired cases, {what} {result.baseline_rate:.1%} -> {result.candidate_rate:.1%}"
    )
    left_out = [f"{result.unscored} unscored"] if result.unscored else []
    left_out += [f"{result.unpaired} unpaired"] if result.unpaired else []
    if left_out:
        typer.echo(f"left out: {', '.join(left_out)} cases")
    if result.changed:
        shown = ", ".join(result.changed[:5]) + (", …" if len(result.changed) > 5 else "")
        typer.echo(
            f"left out: {len(result.changed)} cases defined differently in the two suites ({shown})"
        )
    if result.dropped_checks:
        typer.echo(f"checks in one run only, left out: {', '.join(result.dropped_checks)}")
    shown = format_p(t.p_value)
    p_text = f"p {shown}" if shown.startswith("<") else f"p = {shown}"  # not "p = < 1e-4"
    typer.echo(
        f"{t.method} over cases: {p_text} (alpha {result.alpha}); "
        f"B worse on {t.worse}, better on {t.better}"
    )
    for reg in result.regressions:
        typer.echo(f"  regression {reg.case_id}: {reg.baseline:.2f} -> {reg.candidate:.2f}")
    verdict = "SIGNIFICANTLY WORSE" if result.significantly_worse else "no significant regression"
    typer.echo(verdict)
