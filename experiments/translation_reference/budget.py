"""How many batches the synthetic reference segmenter needs: val mIoU and the two anchors along one run.

    python experiments/translation_reference/budget.py [MAX_BATCHES] [THREADS]

The same recipe as conf/reference/synthetic.yaml (U-Net 16/4, Adam 1e-3, batch 8, median class weights, all
600 target train images), in a plain loop that scores every 250 batches: val mIoU (150 target val images), the
floor (raw source images) and the ceiling (the same scenes rendered in target style), on the first 64 and 200
paired scenes. Writes budget.csv beside itself, a row at a time.
"""

import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from cyclesem.data.cityscapes import CityscapesDataset
from cyclesem.data.gta5 import GTA5Dataset
from cyclesem.data.labels import NUM_CLASSES
from cyclesem.data.resumable import EpochSampler, SeededSamples
from cyclesem.data.transforms import eval_transform, train_transform
from cyclesem.method.losses import class_weights_from_counts, semantic_loss
from cyclesem.method.metrics import SegmentationMetrics
from cyclesem.models.segmenter import UNet

max_batches = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
root = Path("data/synthetic")
train_set = CityscapesDataset(root / "cityscapes", split="train", transform=train_transform(hflip=True))
val_set = CityscapesDataset(root / "cityscapes", split="val", keep_label_resolution=True, transform=eval_transform())
source = GTA5Dataset(root / "gta5", transform=eval_transform())
paired = GTA5Dataset(root / "gta5_as_cityscapes", transform=eval_transform())
counts = np.zeros(NUM_CLASSES, np.int64)
for i in range(len(train_set)):
    ids = train_set.read_train_ids(i)
    counts += np.bincount(ids[ids < NUM_CLASSES].ravel(), minlength=NUM_CLASSES)
weight = class_weights_from_counts(counts, "median")

torch.manual_seed(0)
net = UNet(num_classes=NUM_CLASSES, base_channels=16, depth=4)
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
loader = DataLoader(SeededSamples(train_set), batch_size=8, sampler=EpochSampler(len(train_set), 8 * max_batches, 0))


@torch.no_grad()
def miou(dataset, limit=None) -> float:
    net.eval()
    metric = SegmentationMetrics(NUM_CLASSES)
    data = Subset(dataset, range(limit)) if limit else dataset
    for batch in DataLoader(data, batch_size=32):
        metric.update(net(batch["image"]), batch["label"])
    net.train()
    return metric.compute()["mIoU"]


csv_path = Path(__file__).with_name("budget.csv")
fields = ["batches", "train_s", "loss", "val_mIoU", "floor_64", "ceiling_64", "floor_200", "ceiling_200"]
with open(csv_path, "w", newline="") as f:
    csv.DictWriter(f, fieldnames=fields).writeheader()
started = time.time()
for step, batch in enumerate(loader, 1):
    loss = semantic_loss(net(batch["image"]), batch["label"], weight)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 250 == 0:
        train_s = time.time() - started
        row = {"batches": step, "train_s": round(train_s, 1), "loss": round(loss.item(), 4),
               "val_mIoU": miou(val_set), "floor_64": miou(source, 64), "ceiling_64": miou(paired, 64),
               "floor_200": miou(source, 200), "ceiling_200": miou(paired, 200)}
        print(row, flush=True)
        with open(csv_path, "a", newline="") as f:  # a row as soon as it is measured: a stopped run keeps its rows
            csv.DictWriter(f, fieldnames=fields).writerow({k: round(v, 4) for k, v in row.items()})
        started += time.time() - started - train_s  # evaluation time does not count as training time
