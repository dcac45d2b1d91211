"""Writing a sweep's report: results.csv, summary.md and curves.png into the sweep directory, printed to the
console and, when asked or when a W&B run is active, logged to W&B."""

from __future__ import annotations

import csv
import html
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from rich.console import Console

from cyclesem.report.efficiency import (
    comparators_of,
    efficiency_estimates,
    efficiency_readout,
    paired_differences,
    summarize,
)
from cyclesem.report.jobs import collect
from cyclesem.report.plot import plot_curves
from cyclesem.report.ratio import RatioSpec, ratio_rows, ratio_section, write_ratio_csv
from cyclesem.report.stats import CONFIDENCE, Interval
from cyclesem.report.tables import HEADLINE, print_report, render_summary, write_groups_csv, write_results_csv
from cyclesem.report.types import GroupSummary, ReportError


def _method_order(groups: Sequence[GroupSummary], method: str, baseline: str) -> list[str]:
    present = {g.method for g in groups}
    return [m for m in (method, baseline) if m in present] + sorted(present - {method, baseline})


def _require_groups(groups: Sequence[GroupSummary], names: Sequence[str], option: str) -> None:
    """A group name an option gives that no group has: an error that lists the groups there are."""
    present = sorted({g.method for g in groups})
    for name in names:
        if name not in present:
            raise ReportError(f"{option}: no group is named {name!r}; the groups are "
                              f"{', '.join(present) or 'none (no completed job)'}")


def _further_differences(groups: Sequence[GroupSummary], compare: Sequence[tuple[str, str]],
                         metric: str) -> list[tuple[str, str, float, Interval]]:
    """(method, other, real_frac, interval of method − other) for each --compare pair; a name no group has is an
    error that lists the groups there are."""
    rows = []
    for ours, other in compare:
        _require_groups(groups, (ours, other), f"--compare {ours}:{other}")
        rows += [(ours, versus, frac, diff) for versus, frac, diff in paired_differences(groups, ours, metric, (other,))]
    return rows


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
                 console: Console | None = None, include: Sequence[Path | str] = (),
                 compare: Sequence[tuple[str, str]] = (), ratios: Sequence[RatioSpec] = (),
                 efficiency_against: Sequence[str] = ()) -> dict[str, Path]:
    """Collect the sweep (or study) and the job records of the ``include`` study folders, write results.csv,
    groups.csv, efficiency.json, summary.md and curves.png into ``sweep_dir`` alone, print and (maybe) log them.
    Paired differences: ``method`` against ``baseline`` first, then against the fixed comparators; each
    ``(method, other)`` pair of ``compare`` adds method − other at every fraction both have (a second arm of an
    open question, e.g. ``("baseline/none", "baseline/median")`` beside cyclesem's). Each of ``ratios`` adds a ratio
    table per setting (cyclesem/report/ratio.py) to summary.md, ratio.csv and efficiency.json. Each of
    ``efficiency_against`` adds the data-efficiency estimate of ``method`` against that method's curve too (e.g.
    target_only: how many real images alone match the method)."""
    sweep_dir = Path(sweep_dir)
    group_fields = [f.strip() for f in group_by.split(",")] if isinstance(group_by, str) else list(group_by)
    jobs = collect(sweep_dir, group_by, include)
    groups = summarize(jobs)
    order = _method_order(groups, method, baseline)
    groups.sort(key=lambda g: (order.index(g.method), g.real_frac))  # the compared pair first in every table
    readout = efficiency_readout(groups, method, baseline, metric)
    differences = paired_differences(groups, method, metric, comparators_of(method, baseline))
    efficiency = efficiency_estimates(groups, method, baseline, metric)
    further = _further_differences(groups, compare, metric)
    for other in efficiency_against:
        _require_groups(groups, (other,), f"--efficiency-against {other}")
    further_efficiency = [(other, efficiency_estimates(groups, method, other, metric),
                           efficiency_readout(groups, method, other, metric)) for other in efficiency_against]
    ratio_table = [row for spec in ratios for row in ratio_rows(groups, spec, metric)]
    included = [Path(p) for p in include]
    ratio_lines = ratio_section(ratio_table, metric, "/".join(group_fields[1:]))
    summary = render_summary(sweep_dir, jobs, groups, readout, metric, differences, efficiency, method, baseline,
                             included, further, ratio_lines, further_efficiency)
    paths = {"results": write_results_csv(jobs, sweep_dir / "results.csv"), "summary": sweep_dir / "summary.md",
             "groups": write_groups_csv(groups, sweep_dir / "groups.csv"), "efficiency": sweep_dir / "efficiency.json"}
    paths["summary"].write_text(summary)
    if ratio_table:
        paths["ratio"] = write_ratio_csv(ratio_table, metric, sweep_dir / "ratio.csv")
    ratio_json = {"ratios": [{"ratio": str(r.spec), "setting": r.setting, **asdict(r.ratio)} for r in ratio_table]}
    paths["efficiency"].write_text(json.dumps({
        "metric": metric, "method": method, "baseline": baseline, "confidence": CONFIDENCE,
        "included": [str(p) for p in included],
        "estimates": [asdict(e) for e in efficiency],
        "paired_differences": [{"method": method, "versus": versus, "real_frac": frac, **asdict(diff)}
                               for versus, frac, diff in differences],
        "further_paired_differences": [{"method": ours, "versus": versus, "real_frac": frac, **asdict(diff)}
                                       for ours, versus, frac, diff in further],
        **(ratio_json if ratio_table else {}),  # only with --ratio: the other reports' files stay as they were
        **({"further_estimates": [{"baseline": other, "estimates": [asdict(e) for e in estimates]}
                                  for other, estimates, _ in further_efficiency]} if further_efficiency else {}),
    }, indent=2) + "\n")
    paths["curves"] = plot_curves(groups, order, sweep_dir.name, sweep_dir / "curves.png")
    print_report(console or Console(), jobs, groups, readout, metric, paths, differences, method, further,
                 ratio_lines, further_efficiency)
    _log_wandb(use_wandb, sweep_dir, groups, summary, paths)
    return paths
