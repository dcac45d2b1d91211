"""Statistics over a sweep's jobs: per-group mean / std / range / 95 % t-interval, paired differences of the
method against its comparators, and how much real data the method saves against the baseline (where the
baseline's curve reaches the method's score, with a bootstrap CI over seeds)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from cyclesem.report.stats import (
    Efficiency,
    Interval,
    bootstrap_efficiency,
    first_crossing,
    paired_difference,
    t_interval,
)
from cyclesem.report.tables import percent
from cyclesem.report.types import GroupSummary, JobResult

COMPARATORS = ("baseline", "target_only", "cyclegan")  # what the method's paired differences are taken against


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
    return {frac: first_crossing(baseline_curve, score) for frac, score in sorted(method_curve.items())}


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


def comparators_of(method: str, baseline: str) -> tuple[str, ...]:
    """--baseline first, then the fixed comparators in the method's own setting: with --group-by method,FIELD…
    a group is named "<method>/<setting>", and cyclesem_warm/0.25 is compared with baseline/0.25, target_only/0.25 and
    cyclegan/0.25 (the same pair, class weights, …), never with another setting's groups."""
    setting = method.partition("/")[2]
    fixed = (f"{c}/{setting}" if setting else c for c in COMPARATORS)
    return (baseline, *(c for c in fixed if c != baseline))


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
