"""Collect the synthetic_gap runs (metrics.json per run dir) into results.csv and results.md."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from cyclesem.data.labels import CLASS_NAMES


def main(runs_dir: str, out_dir: str) -> None:
    rows = []
    for path in sorted(Path(runs_dir).glob("*/metrics.json")):
        record = json.loads(path.read_text())
        scores = record.get("test") or record.get("val") or {}
        rows.append({
            "run": path.parent.name, "status": record["status"], "real_frac": record.get("real_frac"),
            "num_labeled": record.get("num_labeled"), "epochs": record.get("epochs"),
            "mIoU": scores.get("mIoU"), "fwIoU": scores.get("fwIoU"), "pixel_acc": scores.get("pixel_acc"),
            "wall_time_s": record.get("wall_time_s"),
            **{f"iou_{n}": scores.get(f"iou_{n}") for n in CLASS_NAMES},
        })
    out = Path(out_dir)
    with (out / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    pct = lambda v: "—" if v is None or v != v else f"{100 * v:.1f}"  # noqa: E731
    lines = ["| run | N | real | mIoU | fwIoU | pixel acc | wall s |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['run']} | {r['num_labeled']} | {r['real_frac']} | {pct(r['mIoU'])} | {pct(r['fwIoU'])} | "
              f"{pct(r['pixel_acc'])} | {r['wall_time_s']} |" for r in rows]
    lines += ["", "Per-class IoU (%):", "", "| run | " + " | ".join(CLASS_NAMES) + " |",
              "|---|" + "---|" * len(CLASS_NAMES)]
    lines += [f"| {r['run']} | " + " | ".join(pct(r[f'iou_{n}']) for n in CLASS_NAMES) + " |" for r in rows]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(*sys.argv[1:3])
