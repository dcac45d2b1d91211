"""The sweep's curves: fwIoU and mIoU against the share of real labelled data, one line per method."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

# Figure + the Agg canvas directly rather than pyplot: no process-wide backend switch, no GUI, no global state
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

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
