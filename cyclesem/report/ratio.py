"""The ratio of two groups' scores per setting — source-only / target-only mIoU per palette shift, the size of the
synthetic pair's domain gap (docs/domain_gap.md):

    python -m cyclesem.report experiments/domain_gap/calibration --group-by method,palette_shift \
        --ratio baseline@0:target_only@1

A group is named by its ``--group-by`` values joined by "/" (``baseline/0.25``). ``NUM@F:DEN@G`` names the first
value and the real fraction of each side; the rest of the name is the *setting* (``0.25``), and every setting with
jobs on both sides gets one row: each side's mean [95 % t-interval] over seeds and the ratio of the means with a
delta-method 95 % interval (`cyclesem.report.stats.ratio_interval`; the two sides are different jobs, not paired).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cyclesem.report.stats import Ratio, ratio_interval
from cyclesem.report.tables import mean_ci
from cyclesem.report.types import GroupSummary, ReportError


@dataclass(frozen=True)
class RatioSpec:
    """NUM@F:DEN@G: the numerator's and the denominator's first group-by value and real fraction."""

    numerator: str
    numerator_frac: float
    denominator: str
    denominator_frac: float

    @classmethod
    def parse(cls, text: str) -> RatioSpec:
        sides = text.split(":")
        parsed = [side.rpartition("@") for side in sides]
        try:
            if len(sides) != 2 or not all(name and at for name, at, _ in parsed):
                raise ValueError
            (num, _, f), (den, _, g) = parsed
            spec = cls(num, float(f), den, float(g))
        except ValueError:
            raise ValueError(f"{text!r} is not NUM@FRACTION:DEN@FRACTION (e.g. baseline@0:target_only@1: "
                             "baseline at 0 % real over target_only at 100 % real)") from None
        if not all(0.0 <= x <= 1.0 for x in (spec.numerator_frac, spec.denominator_frac)):
            raise ValueError(f"{text!r}: the real fractions must lie in [0, 1]")
        return spec

    def side(self, numerator: bool) -> str:
        name, frac = (self.numerator, self.numerator_frac) if numerator else (self.denominator, self.denominator_frac)
        return f"{name} {100 * frac:g} %"

    def __str__(self) -> str:
        return f"{self.numerator}@{self.numerator_frac:g}:{self.denominator}@{self.denominator_frac:g}"


@dataclass(frozen=True)
class RatioRow:
    spec: RatioSpec
    setting: str  # the group name after its first value ("0.25"); "" when grouped by the method alone
    numerator: GroupSummary
    denominator: GroupSummary
    ratio: Ratio


def _setting_order(setting: str) -> tuple:
    """Numbers in numeric order (0.25 before 1.0), other values by name."""
    def part(value: str) -> tuple[int, float, str]:
        try:
            return (0, float(value), "")
        except ValueError:
            return (1, 0.0, value)

    return tuple(part(p) for p in setting.split("/"))


def ratio_rows(groups: Sequence[GroupSummary], spec: RatioSpec, metric: str) -> list[RatioRow]:
    """One row per setting that has ``metric`` scores on both sides of ``spec``; none at all is an error naming the
    groups there are."""
    def side(name: str, frac: float) -> dict[str, GroupSummary]:
        found = {}
        for g in groups:
            first, _, setting = g.method.partition("/")
            if first == name and math.isclose(g.real_frac, frac, abs_tol=1e-9) and g.by_seed.get(metric):
                found[setting] = g
        return found

    numerators = side(spec.numerator, spec.numerator_frac)
    denominators = side(spec.denominator, spec.denominator_frac)
    settings = sorted(numerators.keys() & denominators.keys(), key=_setting_order)
    if not settings:
        present = ", ".join(f"{g.method}@{g.real_frac:g}" for g in groups) or "none (no completed job)"
        raise ReportError(f"--ratio {spec}: no setting has {metric} scores for both {spec.numerator} at "
                          f"{spec.numerator_frac:g} and {spec.denominator} at {spec.denominator_frac:g}; the groups "
                          f"are {present}")
    return [RatioRow(spec, s, numerators[s], denominators[s],
                     ratio_interval(list(numerators[s].by_seed[metric].values()),
                                    list(denominators[s].by_seed[metric].values()))) for s in settings]


def ratio_text(ratio: Ratio) -> str:
    if ratio.low is None:
        return f"{ratio.value:.3f} (1 seed on a side)"
    return f"{ratio.value:.3f} [{ratio.low:.3f}, {ratio.high:.3f}]"


def ratio_section(rows: Sequence[RatioRow], metric: str, setting_name: str) -> list[str]:
    """summary.md's ratio tables, one per spec."""
    lines = []
    for spec in dict.fromkeys(r.spec for r in rows):
        lines += ["", f"## Ratio {spec.side(True)} / {spec.side(False)} ({metric})", "",
                  f"Per {setting_name or 'setting'}: each side's {metric} in percent, mean [95 % t-interval] over "
                  "seeds, and the ratio of the means with a delta-method 95 % interval (the sides are different "
                  "jobs: not paired).", "",
                  f"| {setting_name or 'setting'} | {spec.side(True)} | {spec.side(False)} | ratio [95 % CI] | seeds |",
                  "|---|---:|---:|---:|---|"]
        lines += [f"| {r.setting or '—'} | {mean_ci(r.numerator, metric)} | {mean_ci(r.denominator, metric)} | "
                  f"{ratio_text(r.ratio)} | {len(r.numerator.seeds)} / {len(r.denominator.seeds)} |"
                  for r in rows if r.spec == spec]
    return lines


RATIO_COLUMNS = ("ratio", "setting", "metric", "numerator_mean", "numerator_n", "denominator_mean", "denominator_n",
                 "value", "low", "high")


def write_ratio_csv(rows: Sequence[RatioRow], metric: str, path: Path) -> Path:
    """One row per (spec, setting): both sides' means (fractions) and seed counts, the ratio and its interval."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RATIO_COLUMNS)
        writer.writeheader()
        for r in rows:
            row = {"ratio": str(r.spec), "setting": r.setting, "metric": metric,
                   "numerator_mean": r.numerator.mean[metric], "numerator_n": r.ratio.n_numerator,
                   "denominator_mean": r.denominator.mean[metric], "denominator_n": r.ratio.n_denominator,
                   "value": r.ratio.value, "low": r.ratio.low, "high": r.ratio.high}
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return path
