"""Val mIoU / thin-class IoU against training batches for each job of a budget_pilot sweep (from its csv logs).

    python experiments/budget_pilot/curves.py <sweep dir> > experiments/budget_pilot/curves.csv
"""

import csv
import sys
from pathlib import Path

BATCHES_PER_EPOCH = 50  # ceil(N = 200 / batch 4)
KEYS = ("val/mIoU", "val/fwIoU", "val/iou_pole", "val/iou_traffic sign", "val/iou_person")

writer = csv.writer(sys.stdout)
writer.writerow(["job", "batches", *KEYS])
for job in sorted(p for p in Path(sys.argv[1]).iterdir() if p.is_dir()):
    for path in sorted(job.glob("csv/*/metrics.csv")):
        for row in csv.DictReader(path.open()):
            if row.get("val/mIoU"):
                batches = (int(row["epoch"]) + 1) * BATCHES_PER_EPOCH
                writer.writerow([job.name.split("_", 1)[1], batches, *(f"{float(row[k]):.4f}" for k in KEYS)])
