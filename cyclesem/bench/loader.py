"""Data-loader throughput for `cyclesem.bench`: Cityscapes-layout frames written on the fly, read back
through the real `CityscapesDataset` and a training transform, in the main process (num_workers=0).

The frames are smooth random fields with a little pixel noise, so PNG sizes and decode times are closer
to camera images than pure noise (which barely compresses) or flat colour (which decodes for free).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from cyclesem.data.cityscapes import IMAGE_SUFFIX, LABEL_SUFFIX, CityscapesDataset
from cyclesem.data.labels import TRAIN_ID_TO_LABEL_ID

CITY = "benchcity"
BLOCK = 32  # pixels per random value of the smooth field / per label region


def write_cityscapes_frames(root: Path, count: int, size: tuple[int, int], seed: int = 0) -> None:
    """``count`` image/label pairs of ``size`` (H, W) under ``root`` in the Cityscapes train layout."""
    height, width = size
    if count < 1 or min(height, width) < 1:
        raise ValueError(f"need count >= 1 and a positive (H, W) size, got count={count} size={size}")
    rng = np.random.default_rng(seed)
    image_dir = root / "leftImg8bit" / "train" / CITY
    label_dir = root / "gtFine" / "train" / CITY
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    coarse = (max(1, height // BLOCK), max(1, width // BLOCK))
    # the 19 classes' label ids (what the PNGs on disk hold) and 0, unlabeled → ignored
    label_ids = np.append(TRAIN_ID_TO_LABEL_ID, 0)
    for i in range(count):
        field = rng.integers(0, 256, (*coarse, 3), dtype=np.uint8)
        image = cv2.resize(field, (width, height), interpolation=cv2.INTER_LINEAR)  # (H, W, 3)
        noise = rng.integers(-4, 5, image.shape, dtype=np.int16)
        image = np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        regions = rng.choice(label_ids, size=coarse).astype(np.uint8)
        label = cv2.resize(regions, (width, height), interpolation=cv2.INTER_NEAREST)  # (H, W) label ids
        stem = f"{CITY}_{i:06d}_000019"
        Image.fromarray(image).save(image_dir / f"{stem}{IMAGE_SUFFIX}")
        Image.fromarray(label).save(label_dir / f"{stem}{LABEL_SUFFIX}")


def loader_throughput(count: int, size: tuple[int, int], transform: Callable[..., dict[str, Any]],
                      seed: int = 0) -> dict[str, Any]:
    """Images/s of ``CityscapesDataset.__getitem__`` (decode, id → trainId, transform) in one process."""
    with tempfile.TemporaryDirectory(prefix="cyclesem-bench-") as tmp:
        root = Path(tmp)
        write_cityscapes_frames(root, count, size, seed)
        dataset = CityscapesDataset(root, split="train", transform=transform)
        item = dataset[0]  # warm-up: first-call set-up in albumentations / cv2, not per-image cost
        seconds = []
        for index in range(len(dataset)):
            start = time.perf_counter()
            item = dataset[index]
            seconds.append(time.perf_counter() - start)
        png_mb = sum(p.stat().st_size for p in root.rglob(f"*{IMAGE_SUFFIX}")) / count / 2**20
    return {
        "images": count,
        "size": list(size),
        "output_size": list(item["image"].shape[-2:]),
        "image_png_mb": png_mb,
        "seconds_per_image_median": float(np.median(seconds)),
        "images_per_second_per_worker": count / sum(seconds),
    }
