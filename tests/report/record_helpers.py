"""Hand-written job records for the report's tests (tests/report/test_ratio.py, test_translation_worth.py)."""

from __future__ import annotations

import json
from pathlib import Path

from cyclesem.data.labels import CLASS_NAMES


def write_record(study: Path, method: str, frac: float, seed: int, miou: float, shift: float | None,
                 experiment: str = "gap_calibration") -> None:
    """A gap_calibration (or ``experiment``) job record as cyclesem/study/records.py writes it; ``shift`` None: a
    record without the override (palette_shift from conf/data/synthetic.yaml's default)."""
    overrides = [f"+experiment={experiment}", f"method={method}", f"data.real_frac={frac}", f"seed={seed}"]
    overrides += [] if shift is None else [f"data.prepare.palette_shift={shift}"]
    key = ",".join(sorted(o.lstrip("+") for o in overrides))
    record = {"job": key, "overrides": overrides, "status": "completed", "method": method, "real_frac": frac,
              "seed": seed, "data": "synthetic",
              "test": {"fwIoU": 0.5, "mIoU": miou, "pixel_acc": 0.8, **{f"iou_{n}": 0.3 for n in CLASS_NAMES}}}
    path = study / "runs" / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
