"""Collect a sweep or a study into results.csv, groups.csv, efficiency.json, summary.md and curves.png.

    python -m cyclesem.report experiments/real_frac_study            (a study folder: runs/*.json records)
    python -m cyclesem.report multirun/2025-01-01/12-00-00-000000 [--metric fwIoU] [--wandb | --no-wandb]
    python -m cyclesem.report multirun/semantic_variants --group-by semantic_classifier --method joint --baseline none

Every job is listed: a job whose metrics.json says "failed", is unreadable, or is absent (crashed hard or still
running) appears as failed/missing and is never averaged in. Scores are the test scores (the held-out test
split), else the val scores, as fractions in the CSVs and JSON and percent elsewhere. Per (method, real_frac):
n, mean, std and the 95 % t-interval over seeds; per fraction the paired difference of the method against
baseline, target_only and cyclegan (same seed = same labelled subset); the data-efficiency estimate with a
bootstrap CI over seeds, or "not reached" / "not resolved".
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console

from cyclesem.report_jobs import JobResult, ReportError, collect
from cyclesem.report_plot import plot_curves
from cyclesem.report_stats import Efficiency, Interval, bootstrap_efficiency, paired_difference, t_interval
from cyclesem.report_tables import (
    HEADLINE,
    percent,
    print_report,
    render_summary,
    write_groups_csv,
    write_results_csv,
)

COMPARATORS = ("baseline", "target_only", "cyclegan")  # what the method's paired differences are taken against


@dataclass
class GroupSummary:
    """Completed seeds of one method at one real fraction: mean, sample std (None for one seed), min, max, the
    95 % t-interval of the mean (None for one seed), and each seed's score (for paired differences)."""

    method: str
    real_frac: float
    n: int
    seeds: list[int]
    mean: dict[str, float]
    std: dict[str, float | None]
    low: dict[str, float]
    high: dict[str, float]
    ci_low: dict[str, float | None] = field(default_factory=dict)
    ci_high: dict[str, float | None] = field(default_factory=dict)
    by_seed: dict[str, dict[int, float]] = field(default_factory=dict)


def summarize(jobs: Sequence[JobResult]) -> list[GroupSummary]:
    """Per (method, real_frac) statistics over completed jobs; nan scores (absent classes) are left out."""
    grouped: dict[tuple[str, float], list[JobResult]] = {}
    for job in jobs:
        if job.status == "completed":
            # rounding keys so 0.7 and 0.7000000000000001 (a `range` grid) land in one group
            grouped.setdefault((job.method, round(job.real_frac, 6)), []).append(job)
    groups = []
    for (method, real_frac), members in sorted(grouped.items()):
        stats: dict[str, dict] = {k: {} for k in ("mean", "std", "low", "high", "ci_low", "ci_high", "by_seed")}
        for key in sorted({k for job in members for k in job.scores}):
            scored = [job for job in members if key in job.scores and math.isfinite(job.scores[key])]
            if scored:
                values = [job.scores[key] for job in scored]
                interval = t_interval(values)
                stats["mean"][key], stats["std"][key] = interval.mean, interval.std
                stats["ci_low"][key], stats["ci_high"][key] = interval.low, interval.high
                stats["low"][key], stats["high"][key] = min(values), max(values)
                stats["by_seed"][key] = {job.seed: job.scores[key] for job in scored if job.seed is not None}
        seeds = sorted(job.seed for job in members if job.seed is not None)
        groups.append(GroupSummary(method, real_frac, len(members), seeds, **stats))
    return groups


def curve(groups: Sequence[GroupSummary], method: str, metric: str) -> dict[float, float]:
    """real_frac → mean score of ``method`` over seeds, for the fractions where it was measured."""
    return {g.real_frac: g.mean[metric] for g in groups if g.method == method and metric in g.mean}


def data_efficiency(method_curve: dict[float, float], baseline_curve: dict[float, float]) -> dict[float, float | None]:
    """For each fraction f of ``method_curve``, the smallest real fraction at which the baseline reaches s(f).

    The baseline is read as straight lines between its measured fractions (sorted); no extrapolation, so a
    score above every baseline point gives None ("not reached"), and a score the baseline already meets at its
    smallest measured fraction gives that fraction.
    """
    points = sorted(baseline_curve.items())
    needed: dict[float, float | None] = {}
    for frac, score in sorted(method_curve.items()):
        needed[frac] = None
        if points and points[0][1] >= score:
            needed[frac] = points[0][0]
            continue
        for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
            if y0 < score <= y1:  # first upward crossing
                needed[frac] = x0 + (score - y0) / (y1 - y0) * (x1 - x0)
                break
    return needed


def efficiency_readout(groups: Sequence[GroupSummary], method: str, baseline: str, metric: str) -> list[str]:
    """One sentence per measured fraction of ``method``: where the baseline matches it, and the real data saved."""
    ours, theirs = curve(groups, method, metric), curve(groups, baseline, metric)
    if not ours or not theirs:
        found = sorted({g.method for g in groups})
        return [f"needs {metric} scores for both '{method}' and '{baseline}'; completed methods: {found or 'none'}"]
    lines = []
    first_frac, first_score = min(theirs.items())
    for frac, needed in data_efficiency(ours, theirs).items():
        head = f"{method} at {percent(frac)} % real: {metric} {percent(ours[frac])} %"
        if needed is None:
            best = max(theirs, key=theirs.get)
            lines.append(f"{head} → {baseline} never reaches it (best {percent(theirs[best])} % at {percent(best)} % real)")
            continue
        at = "≤ " if needed == first_frac and first_score > ours[frac] else ""
        how = "measured" if needed in theirs else "interpolated"
        where = f"{head} → {baseline} needs {at}{percent(needed)} % real ({how})"
        if needed <= frac:
            lines.append(f"{where} → no saving")
        else:
            ratio = f", {needed / frac:.1f}× less" if frac > 0 else f" ({method} uses none)"
            lines.append(f"{where} → {method} saves {100 * (needed - frac):.1f} points of real data{ratio}")
    return lines


def paired_differences(groups: Sequence[GroupSummary], method: str, metric: str,
                       comparators: Sequence[str] = COMPARATORS) -> list[tuple[str, float, Interval]]:
    """(comparator, real_frac, interval of method − comparator over the seeds both have), per shared fraction."""
    ours = {g.real_frac: g.by_seed.get(metric, {}) for g in groups if g.method == method}
    rows = []
    for g in groups:
        if g.method in comparators and g.method != method and g.real_frac in ours:
            diff = paired_difference(ours[g.real_frac], g.by_seed.get(metric, {}))
            if diff is not None:
                rows.append((g.method, g.real_frac, diff))
    return sorted(rows, key=lambda r: (comparators.index(r[0]), r[1]))


def efficiency_estimates(groups: Sequence[GroupSummary], method: str, baseline: str, metric: str) -> list[Efficiency]:
    """For each fraction of ``method``: the baseline's real share that matches it, bootstrap CI over seeds."""
    theirs = {g.real_frac: g.by_seed.get(metric, {}) for g in groups if g.method == baseline}
    estimates = []
    for g in groups:
        ours = g.by_seed.get(metric, {})
        if g.method == method and theirs and set(ours) & {s for v in theirs.values() for s in v}:
            estimates.append(bootstrap_efficiency(ours, theirs, g.real_frac))
    return estimates


def _method_order(groups: Sequence[GroupSummary], method: str, baseline: str) -> list[str]:
    present = {g.method for g in groups}
    return [m for m in (method, baseline) if m in present] + sorted(present - {method, baseline})


def _log_wandb(use_wandb: bool | None, sweep_dir: Path, groups: Sequence[GroupSummary], summary: str,
               paths: dict[str, Path]) -> None:
    """Log to the active W&B run; start an offline one only when asked (use_wandb=True); False: never import."""
    if use_wandb is False:
        return
    wandb = sys.modules.get("wandb")  # no active run is possible in a process that never imported wandb
    started = False
    if use_wandb:
        import wandb

        if wandb.run is None:
            wandb.init(mode=os.environ.get("WANDB_MODE") or "offline", group=sweep_dir.name, job_type="report",
                       name=f"report-{sweep_dir.name}", dir=str(sweep_dir))
            started = True
    if wandb is None or wandb.run is None:
        return
    with paths["results"].open(newline="") as f:
        rows = list(csv.reader(f))
    group_rows = [[g.method, g.real_frac, g.n, *(g.mean.get(k) for k in HEADLINE), *(g.std.get(k) for k in HEADLINE)]
                  for g in groups]
    wandb.run.log({
        "report/results": wandb.Table(columns=rows[0], data=rows[1:]),
        "report/summary_table": wandb.Table(columns=["method", "real_frac", "n", *HEADLINE,
                                                     *(f"{k}_std" for k in HEADLINE)], data=group_rows),
        "report/summary": wandb.Html(f"<pre>{html.escape(summary)}</pre>"),
        "report/curves": wandb.Image(str(paths["curves"])),
    })
    if started:
        wandb.finish()


def write_report(sweep_dir: Path | str, *, metric: str = "mIoU", method: str = "cyclesem",
                 baseline: str = "baseline", group_by: str | Sequence[str] = "method", use_wandb: bool | None = None,
                 console: Console | None = None) -> dict[str, Path]:
    """Collect the sweep, write results.csv, summary.md and curves.png into it, print and (maybe) log them."""
    sweep_dir = Path(sweep_dir)
    jobs = collect(sweep_dir, group_by)
    groups = summarize(jobs)
    order = _method_order(groups, method, baseline)
    groups.sort(key=lambda g: (order.index(g.method), g.real_frac))  # the compared pair first in every table
    readout = efficiency_readout(groups, method, baseline, metric)
    differences = paired_differences(groups, method, metric)
    efficiency = efficiency_estimates(groups, method, baseline, metric)
    summary = render_summary(sweep_dir, jobs, groups, readout, metric, differences, efficiency, method, baseline)
    paths = {"results": write_results_csv(jobs, sweep_dir / "results.csv"), "summary": sweep_dir / "summary.md",
             "groups": write_groups_csv(groups, sweep_dir / "groups.csv"), "efficiency": sweep_dir / "efficiency.json"}
    paths["summary"].write_text(summary)
    paths["efficiency"].write_text(json.dumps({
        "metric": metric, "method": method, "baseline": baseline, "confidence": 0.95,
        "estimates": [asdict(e) for e in efficiency],
        "paired_differences": [{"method": method, "versus": versus, "real_frac": frac, **asdict(diff)}
                               for versus, frac, diff in differences],
    }, indent=2) + "\n")
    paths["curves"] = plot_curves(groups, order, sweep_dir.name, sweep_dir / "curves.png")
    print_report(console or Console(), jobs, groups, readout, metric, paths)
    _log_wandb(use_wandb, sweep_dir, groups, summary, paths)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cyclesem.report", description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="a Hydra multirun directory of cyclesem.train jobs, or a study "
                                                      "folder with runs/*.json job records")
    parser.add_argument("--metric", default="mIoU", choices=HEADLINE,
                        help="the primary score: paired differences and the data-efficiency estimate")
    parser.add_argument("--method", default="cyclesem", help="the method whose data saving is measured")
    parser.add_argument("--baseline", default="baseline", help="the method it is compared against")
    parser.add_argument("--group-by", default="method", metavar="FIELD[,FIELD]",
                        help="the metrics.json field(s) that name a job's method (default: method = cyclesem or "
                             "baseline; semantic_classifier compares the variants joint/ema/frozen/none; "
                             "method,class_weights gives cyclesem/median, baseline/none, …)")
    logging = parser.add_mutually_exclusive_group()
    logging.add_argument("--wandb", dest="use_wandb", action="store_true", default=None,
                         help="start an offline W&B run (group = sweep name) if none is active, and log the report")
    logging.add_argument("--no-wandb", dest="use_wandb", action="store_false", help="never touch W&B")
    args = parser.parse_args(argv)
    try:
        write_report(args.sweep_dir, metric=args.metric, method=args.method, baseline=args.baseline,
                     group_by=args.group_by, use_wandb=args.use_wandb)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
