"""Statistics over a sweep's jobs: per-group mean / std / range, and how much real data the method saves
against the baseline (where the baseline's curve reaches the method's score)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from cyclesem.report.tables import percent
from cyclesem.report.types import GroupSummary, JobResult


def summarize(jobs: Sequence[JobResult]) -> list[GroupSummary]:
    """Per (method, real_frac) statistics over completed jobs; nan scores (absent classes) are left out."""
    grouped: dict[tuple[str, float], list[JobResult]] = {}
    for job in jobs:
        if job.status == "completed":
            # rounding keys so 0.7 and 0.7000000000000001 (a `range` grid) land in one group
            grouped.setdefault((job.method, round(job.real_frac, 6)), []).append(job)
    groups = []
    for (method, real_frac), members in sorted(grouped.items()):
        stats: dict[str, dict] = {"mean": {}, "std": {}, "low": {}, "high": {}}
        for key in sorted({k for job in members for k in job.scores}):
            values = [job.scores[key] for job in members if key in job.scores and math.isfinite(job.scores[key])]
            if values:
                stats["mean"][key] = statistics.fmean(values)
                stats["std"][key] = statistics.stdev(values) if len(values) > 1 else None
                stats["low"][key], stats["high"][key] = min(values), max(values)
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
            lines.append(f"{where} → {method} saves {percent(needed - frac)} points of real data{ratio}")
    return lines
