"""Training curves of the CycleGAN variants `diagnose.py` ran: translation gain (where it was scored) and
translation L1 against the paired renders, per evaluation step.

    python experiments/translation/score.py [RUNS_DIR]    # first: the final gain of the unscored runs
    python experiments/translation/curves.py [RUNS_DIR]   # writes RUNS_DIR/../curves.png
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import matplotlib
import torch
from scoring import load_reference

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    runs = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "runs")
    _, paired = load_reference()
    batch = next(iter(torch.utils.data.DataLoader(paired, batch_size=len(paired))))
    untranslated = (batch["source_image"] - batch["paired_image"]).abs().mean().item()
    fig, (ax_gain, ax_l1) = plt.subplots(1, 2, figsize=(11, 4))
    table = runs.parent / "variants.csv"  # score.py: the final gain of runs made before diagnose.py scored
    final_gain = {row["variant"]: float(row["translation_gain"]) for row in csv.DictReader(table.open())} \
        if table.exists() else {}
    for record_file in sorted(runs.glob("*.json")):
        history = json.loads(record_file.read_text())["history"]
        steps = [h["step"] for h in history]
        (line,) = ax_l1.plot(steps, [h["translation_l1"] for h in history], marker="o", label=record_file.stem)
        scored = [h for h in history if "translation_gain" in h]
        if scored:
            ax_gain.plot([h["step"] for h in scored], [h["translation_gain"] for h in scored], marker="o",
                         color=line.get_color(), label=record_file.stem)
        elif record_file.stem in final_gain:  # its last step only (× markers)
            ax_gain.plot([steps[-1]], [final_gain[record_file.stem]], marker="x", ms=9, ls="none",
                         color=line.get_color(), label=record_file.stem)
    ax_gain.axhline(0.5, color="grey", ls="--", lw=0.8)
    ax_gain.set(xlabel="CycleGAN step", ylabel="translation gain (0 = raw source, 1 = paired render)",
                title="translation gain (FCN-score)", ylim=(-0.1, 1.0))
    ax_l1.axhline(untranslated, color="grey", ls=":", lw=0.8)
    ax_l1.set(xlabel="CycleGAN step", ylabel="L1 to the paired render ([-1, 1] pixels)",
              title="translation L1 (dotted: untranslated)")
    ax_l1.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(runs.parent / "curves.png", dpi=110)
    print(f"wrote {runs.parent / 'curves.png'}")


if __name__ == "__main__":
    main()
