"""The report's figures: the sweep's curves (fwIoU and mIoU against the share of real labelled data, one line per
method) and what translation is worth per pair (paired differences against the pair's source-only ratio)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

# Figure + the Agg canvas directly rather than pyplot: no process-wide backend switch, no GUI, no global state
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cyclesem.report.translation_worth import WorthRow
from cyclesem.report.types import GroupSummary

PANELS = (("fwIoU", "fwIoU (%)"), ("mIoU", "mIoU (%)"))
COLORS = {"cyclesem": "tab:blue", "baseline": "tab:orange", "target_only": "tab:green", "cyclegan": "tab:purple",
          "oracle": "tab:gray"}


def plot_curves(groups: Sequence[GroupSummary], methods: Sequence[str], title: str, path: Path) -> Path:
    """Write a two-panel PNG (fwIoU | mIoU, percent) against % real data; returns ``path``.

    Each measured (method, fraction) is a marker, joined by a line to its measured neighbours only, so a
    missing fraction shows as a missing marker. With more than one seed the 95 % CI of the mean is shaded.
    """
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(PANELS), sharex=True)
    other_colors = iter(["tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray"])
    colors = {m: COLORS.get(m) or next(other_colors, None) for m in methods}
    for ax, (metric, ylabel) in zip(axes, PANELS, strict=True):
        for method in methods:
            points = sorted((g for g in groups if g.method == method and metric in g.mean), key=lambda g: g.real_frac)
            if not points:
                continue
            x = [100 * g.real_frac for g in points]
            y = [100 * g.mean[metric] for g in points]
            fewest, seeds = min(g.n for g in points), max(g.n for g in points)
            label = f"{method} ({fewest if fewest == seeds else f'{fewest}–{seeds}'} seed{'s' if seeds > 1 else ''})"
            ax.plot(x, y, marker="o", linewidth=1.5, color=colors[method], label=label)
            if seeds > 1:  # the 95 % t-interval of the mean; a one-seed point has none (its band is the point)
                low = [100 * (g.ci_low.get(metric) if g.ci_low.get(metric) is not None else g.mean[metric])
                       for g in points]
                high = [100 * (g.ci_high.get(metric) if g.ci_high.get(metric) is not None else g.mean[metric])
                        for g in points]
                ax.fill_between(x, low, high, color=colors[method], alpha=0.2, linewidth=0)
        ax.set_xlabel("real labelled target data (%)")
        ax.set_ylabel(ylabel)
        ax.set_xlim(-3, 103)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right", fontsize="small")
    fig.suptitle(f"{title} — test scores vs real data (shaded: 95 % CI over seeds)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


# the colour of each translation-worth comparison: the method it measures against the baseline / target_only
WORTH_STYLE = {"oracle − baseline": (COLORS["oracle"], "s"), "method − baseline": (COLORS["cyclesem"], "o"),
               "method − target_only": (COLORS["target_only"], "^")}


def plot_translation_worth(rows: Sequence[WorthRow], path: Path) -> Path:
    """Write the translation-worth figure (cyclesem/report/translation_worth.py): one panel per real fraction, the
    paired differences (mIoU points, 95 % CI) against each pair's source-only ratio, one marker series per
    comparison, a line at 0; returns ``path``.

    The three comparisons of a pair sit side by side around its ratio (one x each would hide two of them); its
    ratio's 95 % CI is the shaded band. A pilot (one shared seed) is a hollow marker without a bar; a missing
    difference is left out.
    """
    fractions = sorted({r.real_frac for r in rows})
    ratios = {r.pair: r.ratio.ratio for r in rows}
    span = max(r.value for r in ratios.values()) - min(r.value for r in ratios.values())
    pad = max(0.04, 0.15 * span)
    dodge = {name: (i - 1) * pad / 6 for i, name in enumerate(WORTH_STYLE)}
    fig = Figure(figsize=(5 + 2.5 * len(fractions), 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(fractions), sharey=True, squeeze=False)[0]
    for ax, frac in zip(axes, fractions, strict=True):
        for ratio in ratios.values():
            if ratio.low is not None:
                ax.axvspan(ratio.low, ratio.high, color="0.5", alpha=0.12, linewidth=0)
        ax.axhline(0.0, color="black", linewidth=0.8)
        for name, (color, marker) in WORTH_STYLE.items():
            points = [r for r in rows if r.real_frac == frac and r.comparison == name and r.difference is not None]
            label = name.replace("method", "M")
            for pilot in (False, True):
                shown = [r for r in points if (r.difference.low is None) == pilot]
                if not shown:
                    continue
                x = [r.ratio.ratio.value + dodge[name] for r in shown]
                y = [100 * r.difference.mean for r in shown]
                yerr = None if pilot else [[100 * (r.difference.mean - r.difference.low) for r in shown],
                                           [100 * (r.difference.high - r.difference.mean) for r in shown]]
                ax.errorbar(x, y, yerr=yerr, fmt=marker, color=color, markersize=7, capsize=3, linewidth=1.3,
                            markerfacecolor="none" if pilot else color,
                            label=f"{label} (1 seed, pilot)" if pilot else label)
        ax.set_xticks([r.value for r in ratios.values()],
                      [f"{r.value:.3f}\nshift {pair.palette_shift:g}\nM = {pair.method}" for pair, r in ratios.items()],
                      fontsize="small")
        ax.set_xlim(min(r.value for r in ratios.values()) - pad, max(r.value for r in ratios.values()) + pad)
        ax.set_title(f"{100 * frac:g} % real labelled data")
        ax.set_xlabel("source-only ratio (baseline 0 % / target_only 100 %, test mIoU)")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize="small")
        else:
            ax.text(0.5, 0.5, "no difference measured", transform=ax.transAxes, ha="center", color="0.4")
    axes[0].set_ylabel("paired difference (mIoU points)")
    fig.suptitle("What translation is worth per pair — test mIoU differences over shared seeds, 95 % CI "
                 "(shaded: the ratio's 95 % CI)", fontsize="medium")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
