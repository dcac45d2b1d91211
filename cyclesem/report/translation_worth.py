"""What translation is worth per synthetic pair (issue 34; docs/domain_gap.md#what-translation-is-worth-per-pair):
at a few real fractions, three paired differences of test mIoU over the seeds both sides share (a seed fixes the
labelled subset), set against the pair's source-only ratio (baseline at 0 % / target_only at 100 %):

- oracle − baseline: what a perfect translation (the paired renders) adds to raw source images, at most;
- M − baseline: what the learned translation adds (M: the pair's method, cyclesem or cyclesem_warm);
- M − target_only: what the source images and the translation add to the same real images alone.

A pair is a study folder (``runs/*.json``), a palette shift (its records are grouped by method and palette shift,
and only that shift's are read) and M. The ratio comes from a calibration table (``ratio.csv`` of
``python -m cyclesem.report ... --ratio baseline@0:target_only@1``), else from the pair's own baseline at 0 % and
target_only at 100 % (`cyclesem.report.ratio.ratio_rows`). A difference that cannot be taken (a side not run at
that fraction, no shared seed) is a row marked missing; one shared seed is a pilot, without an interval.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cyclesem.report.efficiency import summarize
from cyclesem.report.jobs import collect
from cyclesem.report.ratio import RatioSpec, ratio_rows, ratio_text
from cyclesem.report.stats import Interval, Ratio, paired_difference
from cyclesem.report.tables import interval_text
from cyclesem.report.types import GroupSummary, ReportError

METRIC = "mIoU"
FRACTIONS = (0.05, 0.1)
GROUP_BY = ("method", "palette_shift")
SOURCE_ONLY = RatioSpec("baseline", 0.0, "target_only", 1.0)  # the pair's gap: source-only / target-only
# (comparison, minuend, subtrahend); "method" stands for the pair's method M
COMPARISONS = (("oracle − baseline", "oracle", "baseline"), ("method − baseline", "method", "baseline"),
               ("method − target_only", "method", "target_only"))
PILOT = "1 seed (pilot)"


@dataclass(frozen=True)
class PairSpec:
    """FOLDER:PALETTE_SHIFT[:METHOD]: a study folder, the palette shift of its pair and the method M (cyclesem)."""

    folder: Path
    palette_shift: float
    method: str = "cyclesem"

    @classmethod
    def parse(cls, text: str) -> PairSpec:
        parts = text.split(":")
        try:
            folder, shift, method = parts if len(parts) == 3 else (*parts, "cyclesem")
            if not folder or not method:
                raise ValueError
            spec = cls(Path(folder), float(shift), method)
        except ValueError:
            raise ValueError(f"{text!r} is not FOLDER:PALETTE_SHIFT[:METHOD] (e.g. experiments/real_frac_study:1.0:"
                             "cyclesem: a study folder, the palette shift of its pair, the translation method)") from None
        if not 0.0 <= spec.palette_shift <= 1.0:
            raise ValueError(f"{text!r}: the palette shift must lie in [0, 1]")
        return spec

    def __str__(self) -> str:
        return f"{self.folder}:{self.palette_shift:g}:{self.method}"


@dataclass(frozen=True)
class PairRatio:
    """A pair's source-only ratio and where it was read: the calibration table's path, or the pair's folder."""

    ratio: Ratio
    source: str


@dataclass(frozen=True)
class WorthRow:
    """One paired difference of one pair at one real fraction; ``difference`` None: missing, ``missing`` says why."""

    pair: PairSpec
    ratio: PairRatio
    real_frac: float
    comparison: str  # "oracle − baseline", "method − baseline", "method − target_only"
    minuend: str
    subtrahend: str
    seeds: tuple[int, ...] = ()  # the shared seeds the difference is taken over
    difference: Interval | None = None
    missing: str | None = None

    @property
    def note(self) -> str:
        if self.difference is None:
            return f"missing: {self.missing}"
        return PILOT if self.difference.n < 2 else ""


def _shift(group: GroupSummary) -> float | None:
    """The palette shift of a group named "<method>/<palette_shift>" (``GROUP_BY``)."""
    try:
        return float(group.method.partition("/")[2])
    except ValueError:
        return None


def at_shift(groups: Sequence[GroupSummary], palette_shift: float) -> list[GroupSummary]:
    """The groups (named "<method>/<palette_shift>") of one palette shift."""
    return [g for g in groups if _shift(g) is not None and math.isclose(_shift(g), palette_shift, abs_tol=1e-9)]


def worth_rows(pair: PairSpec, groups: Sequence[GroupSummary], ratio: PairRatio,
               fractions: Sequence[float] = FRACTIONS) -> list[WorthRow]:
    """The ``COMPARISONS`` of ``pair`` at each of ``fractions`` from its groups (named by method alone): the paired
    difference of ``METRIC`` over the seeds both sides have."""
    rows = []
    for frac in fractions:
        at_frac = {g.method: g.by_seed.get(METRIC, {}) for g in groups
                   if math.isclose(g.real_frac, frac, abs_tol=1e-9) and g.by_seed.get(METRIC)}
        for comparison, minuend, subtrahend in COMPARISONS:
            minuend = pair.method if minuend == "method" else minuend
            which = {"pair": pair, "ratio": ratio, "real_frac": frac, "comparison": comparison, "minuend": minuend,
                     "subtrahend": subtrahend}
            absent = [name for name in (minuend, subtrahend) if name not in at_frac]
            if absent:
                rows.append(WorthRow(**which, missing=f"no {' and no '.join(absent)} at {100 * frac:g} % real"))
                continue
            ours, theirs = at_frac[minuend], at_frac[subtrahend]
            diff = paired_difference(ours, theirs)
            if diff is None:
                rows.append(WorthRow(**which, missing=f"no shared seed ({minuend}: seeds {_seeds(ours)}; "
                                                      f"{subtrahend}: seeds {_seeds(theirs)})"))
            else:
                rows.append(WorthRow(**which, seeds=tuple(sorted(set(ours) & set(theirs))), difference=diff))
    return rows


def _seeds(by_seed: Mapping[int, float]) -> str:
    return " ".join(map(str, sorted(by_seed)))


def calibration_ratios(calibration: Path) -> dict[float, PairRatio]:
    """palette shift → the source-only ratio (``SOURCE_ONLY``, ``METRIC``) of a calibration table: ``ratio.csv``
    (cyclesem/report/ratio.py) in the folder ``calibration``, or that file itself."""
    path = calibration / "ratio.csv" if calibration.is_dir() else calibration
    if not path.is_file():
        raise ReportError(f"--calibration {calibration}: no {path.name} there (expected the table of "
                          f"`python -m cyclesem.report <study> --group-by method,palette_shift --ratio {SOURCE_ONLY}`)")
    ratios = {}
    with path.open(newline="") as f:
        for number, entry in enumerate(csv.DictReader(f), 2):
            if entry.get("ratio") != str(SOURCE_ONLY) or entry.get("metric") != METRIC:
                continue
            try:
                shift = float(entry["setting"])
            except (TypeError, ValueError):
                continue  # a ratio grouped by something other than the palette shift
            try:
                low, high = (float(entry[k]) if entry[k] else None for k in ("low", "high"))
                ratio = Ratio(float(entry["value"]), low, high, int(entry["numerator_n"]), int(entry["denominator_n"]))
            except (KeyError, TypeError, ValueError):
                raise ReportError(f"{path}, line {number}: expected numbers in value, low, high, numerator_n and "
                                  f"denominator_n (a ratio table of cyclesem.report --ratio)") from None
            ratios[shift] = PairRatio(ratio, str(path))
    return ratios


def _records_ratio(pair: PairSpec, groups: Sequence[GroupSummary]) -> PairRatio | None:
    """The pair's ratio from its own records: baseline at 0 % over target_only at 100 % at its shift."""
    try:
        (row,) = ratio_rows(groups, SOURCE_ONLY, METRIC)
    except ReportError:
        return None
    return PairRatio(row.ratio, f"{pair.folder} (its records)")


def load_pair(pair: PairSpec, calibration: Mapping[float, PairRatio], calibration_path: Path | None = None
              ) -> tuple[list[GroupSummary], PairRatio]:
    """The completed groups of ``pair`` (its palette shift's, named by their method alone) and its ratio: the
    calibration table's (read from ``calibration_path``) at that shift, else its own records'. A folder without
    records or without a job at that shift, or a shift with no ratio anywhere, is an error naming the pair."""
    if not pair.folder.is_dir():
        raise ReportError(f"--pair {pair}: folder {pair.folder} does not exist")
    if not any((pair.folder / "runs").glob("*.json")):
        raise ReportError(f"--pair {pair}: {pair.folder} holds no job records (runs/*.json)")
    groups = summarize(collect(pair.folder, GROUP_BY))
    same_pair = at_shift(groups, pair.palette_shift)
    if not same_pair:
        shifts = sorted({g.method.partition("/")[2] for g in groups}) or ["none (no completed job)"]
        raise ReportError(f"--pair {pair}: no completed job in {pair.folder} ran at palette_shift "
                          f"{pair.palette_shift:g}; its palette shifts are {', '.join(shifts)}")
    ratio = next((r for shift, r in calibration.items() if math.isclose(shift, pair.palette_shift, abs_tol=1e-9)),
                 None) or _records_ratio(pair, same_pair)
    if ratio is None:
        where = f"not in {calibration_path}" if calibration_path is not None else "no --calibration table given"
        raise ReportError(f"--pair {pair}: no source-only ratio for palette_shift {pair.palette_shift:g}: {where}, and "
                          f"{pair.folder} has no completed {SOURCE_ONLY.side(True)} and {SOURCE_ONLY.side(False)} "
                          "jobs at that shift to compute it from")
    return [dataclasses.replace(g, method=g.method.partition("/")[0]) for g in same_pair], ratio


def translation_worth(pairs: Sequence[PairSpec], calibration: Path | None = None,
                      fractions: Sequence[float] = FRACTIONS) -> list[WorthRow]:
    """Every pair's rows (`worth_rows`), in the order given; each pair is checked before any row is returned."""
    ratios = calibration_ratios(calibration) if calibration is not None else {}
    return [row for pair in pairs for row in worth_rows(pair, *load_pair(pair, ratios, calibration), fractions)]


WORTH_COLUMNS = ("pair", "folder", "palette_shift", "method", "ratio", "ratio_low", "ratio_high", "ratio_source",
                 "real_frac", "comparison", "minuend", "subtrahend", "n", "seeds", "mean", "low", "high", "note")


def write_worth_csv(rows: Sequence[WorthRow], path: Path) -> Path:
    """One row per (pair, fraction, comparison), differences as fractions of mIoU; blank cells where missing."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=WORTH_COLUMNS)
        writer.writeheader()
        for r in rows:
            diff = r.difference
            row = {"pair": str(r.pair), "folder": r.pair.folder.as_posix(), "palette_shift": r.pair.palette_shift,
                   "method": r.pair.method, "ratio": r.ratio.ratio.value, "ratio_low": r.ratio.ratio.low,
                   "ratio_high": r.ratio.ratio.high, "ratio_source": r.ratio.source, "real_frac": r.real_frac,
                   "comparison": r.comparison, "minuend": r.minuend, "subtrahend": r.subtrahend,
                   "n": diff and diff.n, "seeds": " ".join(map(str, r.seeds)), "mean": diff and diff.mean,
                   "low": diff and diff.low, "high": diff and diff.high, "note": r.note}
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return path


def print_worth(console: Console, rows: Sequence[WorthRow]) -> None:
    """One table per pair, titled with its source-only ratio; differences in mIoU points ("not resolved" where the
    95 % CI spans 0, as the report says it)."""
    for pair in dict.fromkeys(r.pair for r in rows):
        mine = [r for r in rows if r.pair == pair]
        # a plain line, not the table's title: a title wraps at the table's width
        console.print(f"{pair}: source-only ratio {ratio_text(mine[0].ratio.ratio)} ({mine[0].ratio.source})",
                      markup=False, soft_wrap=True, highlight=False)
        table = Table()
        for column in ("% real", "difference", "n", f"{METRIC} points [95 % CI]", "note"):
            table.add_column(column, justify="right" if column in ("% real", "n") else "left", overflow="fold")
        for r in mine:
            table.add_row(f"{100 * r.real_frac:g}", f"{r.minuend} − {r.subtrahend}",
                          "" if r.difference is None else str(r.difference.n),
                          "—" if r.difference is None else interval_text(r.difference), r.note)
        console.print(table)
