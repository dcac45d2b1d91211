"""The report's tables: results.csv (one row per job), summary.md and the console summary."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cyclesem.data.labels import CLASS_NAMES
from cyclesem.method.translation_score import MIN_GAIN_SPAN, gain_meaningful
from cyclesem.report.types import GroupSummary, JobResult

HEADLINE = ("fwIoU", "mIoU", "pixel_acc")
IOU_KEYS = tuple(f"iou_{name}" for name in CLASS_NAMES)
# translation quality (cyclesem/method/translation_score.py): L1 against the paired renders, the reference
# segmenter's mIoU on the translations (the FCN-score), its anchors (mIoU on the raw source images and on the
# paired renders, from the record's translation_reference) and where the score lies between them (the gain)
TRANSLATION_KEYS = ("translation_l1", "translation_score", "translation_floor", "translation_ceiling",
                    "translation_gain")
CSV_COLUMNS = ("job", "status", "method", "real_frac", "seed", "split", *HEADLINE, *TRANSLATION_KEYS, *IOU_KEYS,
               "wall_time_s", "error")


def percent(value: float | None, digits: int = 1) -> str:
    """A fraction (scores, shares) as percent with `digits` decimals; — for no value."""
    return "—" if value is None else f"{100 * value:.{digits}f}"


def write_results_csv(jobs: Sequence[JobResult], path: Path) -> Path:
    """One row per job, scores as fractions; blank cells where a job has no value."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for job in jobs:
            row = {"job": job.job, "status": job.status, "method": job.method, "real_frac": job.real_frac,
                   "seed": job.seed, "split": job.split, "wall_time_s": job.wall_time_s, "error": job.error,
                   **{k: job.scores.get(k) for k in (*HEADLINE, *TRANSLATION_KEYS, *IOU_KEYS)}}
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return path


def decimals(value: float | None) -> str:
    """A raw value with three decimals (translation L1, translation gain); — for no value."""
    return "—" if value is None else f"{value:.3f}"


def mean_std(group: GroupSummary, key: str, fmt: Callable[[float | None], str] = percent) -> str:
    if key not in group.mean:
        return "—"
    return f"{fmt(group.mean[key])} ± {fmt(group.std[key])}"


def mean_ci(group: GroupSummary, key: str) -> str:
    """``mean [low, high]`` in percent (the 95 % t-interval); ``mean (1 seed)`` for a pilot."""
    if key not in group.mean:
        return "—"
    if group.ci_low.get(key) is None:
        return f"{percent(group.mean[key])} (1 seed)"
    return f"{percent(group.mean[key])} [{percent(group.ci_low[key])}, {percent(group.ci_high[key])}]"


def interval_text(interval) -> str:
    """A paired difference in points: ``+2.1 [−0.4, +4.6]``, with "not resolved" when the CI spans 0."""
    if interval.low is None:
        return f"{100 * interval.mean:+.1f} (1 seed)"
    text = f"{100 * interval.mean:+.1f} [{100 * interval.low:+.1f}, {100 * interval.high:+.1f}]"
    return text + (" not resolved" if interval.spans_zero() else "")


GROUP_COLUMNS = ("method", "real_frac", "n", "seeds") + tuple(
    f"{k}_{stat}" for k in HEADLINE for stat in ("mean", "std", "ci_low", "ci_high")) + (
    "translation_score_mean", "translation_score_std", "translation_floor", "translation_ceiling",
    "translation_gain_mean", "translation_gain_std", "translation_gain_meaningful")


def gain_flag(group: GroupSummary) -> bool | None:
    """Whether the group's translation gain means anything: ceiling − floor ≥ MIN_GAIN_SPAN (translation_score.py)
    for every job (the highest floor against the lowest ceiling); None when it has no gain."""
    if "translation_gain" not in group.mean or "translation_floor" not in group.mean:
        return None
    return gain_meaningful(group.high["translation_floor"], group.low.get("translation_ceiling"))


def write_groups_csv(groups: Sequence[GroupSummary], path: Path) -> Path:
    """One row per (method, real_frac): n, seeds and mean / std / 95 % CI of each headline score (fractions), and the
    translation score, its floor and ceiling and the gain with whether it is meaningful (blank without them)."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=GROUP_COLUMNS)
        writer.writeheader()
        for g in groups:
            row = {"method": g.method, "real_frac": g.real_frac, "n": g.n, "seeds": " ".join(map(str, g.seeds))}
            for k in HEADLINE:
                row.update({f"{k}_mean": g.mean.get(k), f"{k}_std": g.std.get(k), f"{k}_ci_low": g.ci_low.get(k),
                            f"{k}_ci_high": g.ci_high.get(k)})
            row.update({"translation_score_mean": g.mean.get("translation_score"),
                        "translation_score_std": g.std.get("translation_score"),
                        "translation_floor": g.mean.get("translation_floor"),
                        "translation_ceiling": g.mean.get("translation_ceiling"),
                        "translation_gain_mean": g.mean.get("translation_gain"),
                        "translation_gain_std": g.std.get("translation_gain"),
                        "translation_gain_meaningful": gain_flag(g)})
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return path


def anchors_text(group: GroupSummary) -> str:
    """The reference's floor → ceiling, each a low–high range where the group's jobs were scored against different
    anchors (one reference key trained apart on two machines is not bit-identical); — without."""
    if "translation_floor" not in group.mean:
        return "—"

    def span(key: str) -> str:
        if key not in group.mean:
            return "—"
        low, high = decimals(group.low[key]), decimals(group.high[key])
        return low if low == high else f"{low}–{high}"

    return f"{span('translation_floor')} → {span('translation_ceiling')}"


def gain_text(group: GroupSummary) -> str:
    """The gain's mean ± std, "(not meaningful)" after it when ceiling − floor is below MIN_GAIN_SPAN."""
    return mean_std(group, "translation_gain", decimals) + (" (not meaningful)" if gain_flag(group) is False else "")


def efficiency_text(e, who: str = "the baseline") -> str:
    seeds = "1 seed, a pilot" if e.n_seeds == 1 else f"{e.n_seeds} seeds"
    head = f"at {percent(e.frac)} % real ({seeds}, {percent(e.score)}):"
    if e.verdict == "not reached":
        return f"{head} {who}'s mean curve never reaches it — not reached"
    if e.verdict == "pilot":
        return f"{head} {who} of the same seed needs {percent(e.needed)} % real — no interval from one seed"
    ci = f"[{percent(e.low)}, {percent(e.high) if e.high is not None else 'beyond the grid'}]"
    return f"{head} {who} needs {percent(e.needed)} % real, 95 % CI {ci} — {e.verdict}"


def method_by_share_table(groups: Sequence[GroupSummary], metric: str) -> list[str]:
    """The headline grid: one row per method (in the groups' order), one column per measured real share, each cell
    ``metric [95 % CI]`` and the other score of mIoU / fwIoU below it; — where the method has no job at that share."""
    other = "fwIoU" if metric == "mIoU" else "mIoU"
    shares = sorted({g.real_frac for g in groups})
    cells = {(g.method, g.real_frac): g for g in groups}
    methods = list(dict.fromkeys(g.method for g in groups))
    lines = ["| method (" + metric + " / " + other + ") | " + " | ".join(f"{percent(f)} % real" for f in shares) + " |",
             "|---|" + "---|" * len(shares)]
    for method in methods:
        row = [f"{mean_ci(cells[method, f], metric)}<br>{mean_ci(cells[method, f], other)}"
               if (method, f) in cells else "—" for f in shares]
        lines.append(f"| {method} | " + " | ".join(row) + " |")
    return lines


def efficiency_section(metric: str, method: str, baseline: str, efficiency: Sequence, readout: Sequence[str],
                       who: str = "the baseline") -> list[str]:
    """summary.md's data-efficiency section of ``method`` against ``baseline``, the method whose curve is the
    yardstick (``who``: how the text names it)."""
    lines = ["", f"## Data efficiency ({metric}, {method} vs {baseline})", "",
             f"The real share at which {who}'s mean curve (linear between measured shares) reaches the "
             "method's mean score, with a bootstrap 95 % CI over seeds (resampled together: a seed is one labelled "
             "subset); \"not resolved\" when the CI runs past the grid.", ""]
    lines += [f"- {efficiency_text(e, who)}" for e in efficiency] or [f"- {line}" for line in readout]
    return [*lines, "", "Point estimates from the mean curves:", "", *(f"- {line}" for line in readout)]


def render_summary(sweep_dir: Path, jobs: Sequence[JobResult], groups: Sequence[GroupSummary],
                   readout: Sequence[str], metric: str, differences: Sequence = (), efficiency: Sequence = (),
                   method: str = "cyclesem", baseline: str = "baseline", included: Sequence[Path] = (),
                   further: Sequence = (), ratio_lines: Sequence[str] = (),
                   further_efficiency: Sequence = ()) -> str:
    """summary.md: scores per method × fraction, the --ratio tables (``ratio_lines``, cyclesem/report/ratio.py), the
    data-efficiency readout against the baseline and against each of ``further_efficiency``'s other methods
    ((other, estimates, readout) triples), failed jobs, per-class IoU."""
    counts = {s: sum(j.status == s for j in jobs) for s in ("completed", "failed", "missing")}
    val_only = [j.job for j in jobs if j.split == "val"]
    also = f" and the job records of {', '.join(f'`{p}`' for p in included)}" if included else ""
    lines = [f"# Sweep report: {sweep_dir.name}", "",
             f"`{sweep_dir}`{also}: {len(jobs)} jobs — {counts['completed']} completed, {counts['failed']} failed, "
             f"{counts['missing']} missing. Scores in percent from each job's test stage (the split and checkpoint "
             "it names in its record), mean [95 % t-interval] over seeds; one seed is a pilot, without an interval. "
             "Per-job values: `results.csv`; per group: `groups.csv`; estimates: `efficiency.json`; curves: "
             "`curves.png`.", ""]
    if val_only:
        lines += [f"Jobs without test scores (their last validation scores are used): {', '.join(val_only)}", ""]
    # translation error (mean L1 of G_S→T(source) against the paired target-style rendering, [-1, 1] pixels), the
    # FCN-score and its anchors, and the gain (the score between the raw source images, 0, and the paired renders,
    # 1), where measured
    columns = [(key, title, cell) for key, title, cell in (
        ("translation_l1", "translation L1", lambda g: mean_std(g, "translation_l1", decimals)),
        ("translation_score", "translation score", lambda g: mean_std(g, "translation_score", decimals)),
        ("translation_floor", "floor → ceiling", anchors_text),
        ("translation_gain", "translation gain", gain_text)) if any(key in g.mean for g in groups)]
    lines += ["## Scores per method and real-data share", "",
              "| method | % real | n | seeds | fwIoU | mIoU | pixel acc |" + "".join(f" {c[1]} |" for c in columns),
              "|---|---:|---:|---|---:|---:|---:|" + "---:|" * len(columns)]
    lines += [f"| {g.method} | {percent(g.real_frac)} | {g.n} | {', '.join(map(str, g.seeds))} | "
              + " | ".join(mean_ci(g, k) for k in HEADLINE) + " |"
              + "".join(f" {cell(g)} |" for _, _, cell in columns) for g in groups]
    if any(key == "translation_gain" for key, _, _ in columns):
        lines += ["", "Translation score: the reference segmenter's mIoU on G_S→T(source) against the source labels; "
                  "floor and ceiling: its mIoU on the raw source images and on the same scenes rendered in the target "
                  "style (a low–high range where the group's jobs had different anchors); gain = (score − floor) / "
                  "(ceiling − floor) with each job's own anchors, mean ± std over seeds. \"(not meaningful)\" where "
                  f"ceiling − floor < {MIN_GAIN_SPAN:.2f} for some job: there one seed-to-seed deviation of the score "
                  "(≈ 0.01) moves the gain by more than 0.1 (cyclesem/method/translation_score.py)."]
    if groups:
        lines += ["", f"## {metric} by method and real share", "",
                  f"The same scores as a grid: {metric} [95 % CI] over seeds, the other of mIoU / fwIoU below it; "
                  "— where the method was not run.", "", *method_by_share_table(groups, metric)]
    lines += ratio_lines
    lines += ["", f"## Paired differences ({metric}, points, {method} − other, same seeds)", ""]
    lines += (["| other | % real | n | difference [95 % CI] |", "|---|---:|---:|---|"]
              + [f"| {versus} | {percent(frac)} | {diff.n} | {interval_text(diff)} |"
                 for versus, frac, diff in differences]) if differences else ["No fraction shared with a comparator."]
    if further:  # the --compare pairs: (method, other, real_frac, interval)
        lines += ["", f"## Further paired differences ({metric}, points, method − other, same seeds)", "",
                  "| method | other | % real | n | difference [95 % CI] |", "|---|---|---:|---:|---|"]
        lines += [f"| {ours} | {versus} | {percent(frac)} | {diff.n} | {interval_text(diff)} |"
                  for ours, versus, frac, diff in further]
    lines += efficiency_section(metric, method, baseline, efficiency, readout)
    for other, other_efficiency, other_readout in further_efficiency:  # --efficiency-against
        lines += efficiency_section(metric, method, other, other_efficiency, other_readout, other)
    lines += ["", "## Failed or missing jobs", ""]
    bad = [j for j in jobs if j.status != "completed"]
    lines += ["| job | status | method | % real | seed | reason |", "|---|---|---|---:|---:|---|"] if bad else ["None."]
    lines += [f"| {j.job} | {j.status} | {j.method or '?'} | {percent(j.real_frac) if j.real_frac is not None else '?'} | "
              f"{'?' if j.seed is None else j.seed} | {(j.error or '').replace('|', '/').replace(chr(10), ' ')} |"
              for j in bad]
    lines += ["", "## Per-class IoU (%, mean over seeds)", ""]
    if groups:
        lines += ["| class | " + " | ".join(f"{g.method} {percent(g.real_frac)} %" for g in groups) + " |",
                  "|---|" + "---:|" * len(groups)]
        lines += [f"| {name} | " + " | ".join(percent(g.mean.get(key)) for g in groups) + " |"
                  for name, key in zip(CLASS_NAMES, IOU_KEYS, strict=True)]
    else:
        lines.append("No completed jobs.")
    return "\n".join(lines) + "\n"


def print_report(console: Console, jobs: Sequence[JobResult], groups: Sequence[GroupSummary], readout: Sequence[str],
                 metric: str, paths: dict[str, Path], differences: Sequence = (), method: str = "cyclesem",
                 further: Sequence = (), ratio_lines: Sequence[str] = (), further_efficiency: Sequence = ()) -> None:
    table = Table(title="scores (%) — mean [95 % CI] over seeds")
    for column in ("method", "% real", "n", "fwIoU", "mIoU", "pixel acc"):
        # long group names (cyclesem/0.3/pavement) fold onto a second line rather than being cut off
        table.add_column(column, justify="left" if column == "method" else "right",
                         overflow="fold" if column == "method" else "ellipsis")
    for g in groups:
        table.add_row(g.method, percent(g.real_frac), str(g.n), *(mean_ci(g, k) for k in HEADLINE))
    console.print(table)
    if differences:
        console.print(f"[bold]Paired differences ({metric}, points, {escape(method)} − other, same seeds)[/bold]")
        for versus, frac, diff in differences:
            console.print(f"  {method} − {versus} at {percent(frac)} % real (n={diff.n}): {interval_text(diff)}",
                          markup=False, soft_wrap=True)
    for ours, versus, frac, diff in further:
        console.print(f"  {ours} − {versus} at {percent(frac)} % real (n={diff.n}): {interval_text(diff)}",
                      markup=False, soft_wrap=True)
    for line in ratio_lines:  # the --ratio tables, as summary.md has them
        console.print(line, markup=False, soft_wrap=True)
    console.print(f"[bold]Data efficiency ({metric})[/bold]")
    for line in [*readout, *(line for _, _, other_readout in further_efficiency for line in other_readout)]:
        console.print(f"  {line}", markup=False, soft_wrap=True)
    for job in (j for j in jobs if j.status != "completed"):
        console.print(f"[red]{job.status}[/red] {escape(job.job)}: {escape(job.error or '')}", highlight=False, soft_wrap=True)
    console.print("wrote " + ", ".join(str(p) for p in paths.values()), markup=False, soft_wrap=True)
