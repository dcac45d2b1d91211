"""Data-loader throughput for `cyclesem.bench`: Cityscapes-layout frames written on the fly, read back
through the real `CityscapesDataset` and a training transform, in the main process (num_workers=0).
The frame writers also give `cyclesem.gpu_check` its full-resolution GTA5- and Cityscapes-layout data.

The frames are smooth random fields with a little pixel noise, so PNG sizes and decode times are closer
to camera images than pure noise (which barely compresses) or flat colour (which decodes for free).
"""

from __future__ import annotations

import os
import shutil
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


def _frame(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One image (H, W, 3) uint8 and its label ids (H, W) uint8 of ``size`` (H, W)."""
    height, width = size
    coarse = (max(1, height // BLOCK), max(1, width // BLOCK))
    field = rng.integers(0, 256, (*coarse, 3), dtype=np.uint8)
    image = cv2.resize(field, (width, height), interpolation=cv2.INTER_LINEAR)  # (H, W, 3)
    noise = rng.integers(-4, 5, image.shape, dtype=np.int16)
    image = np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    # the 19 classes' label ids (what the PNGs on disk hold) and 0, unlabeled → ignored
    regions = rng.choice(np.append(TRAIN_ID_TO_LABEL_ID, 0), size=coarse).astype(np.uint8)
    label = cv2.resize(regions, (width, height), interpolation=cv2.INTER_NEAREST)  # (H, W) label ids
    return image, label


def _write_frames(pairs: list[tuple[Path, Path]], size: tuple[int, int], seed: int, distinct: int | None) -> None:
    """Write an image/label pair to each (image path, label path); with ``distinct``, only that many differ and
    the rest are hard links to them (each read still decodes a full PNG; writing hundreds of full-size PNGs
    would take minutes)."""
    height, width = size
    if not pairs or min(height, width) < 1 or (distinct is not None and distinct < 1):
        raise ValueError(f"need count >= 1, a positive (H, W) size and distinct >= 1 or None, got count="
                         f"{len(pairs)} size={size} distinct={distinct}")
    rng = np.random.default_rng(seed)
    unique = len(pairs) if distinct is None else min(distinct, len(pairs))
    for i, paths in enumerate(pairs):
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
        if i < unique:
            for path, array in zip(paths, _frame(rng, size), strict=True):
                Image.fromarray(array).save(path)
        else:
            for path, original in zip(paths, pairs[i % unique], strict=True):
                try:
                    os.link(original, path)
                except OSError:  # a file system without hard links
                    shutil.copyfile(original, path)


def write_cityscapes_frames(root: Path, count: int, size: tuple[int, int], seed: int = 0, *, split: str = "train",
                            distinct: int | None = None) -> None:
    """``count`` image/label pairs of ``size`` (H, W) under ``root`` in the Cityscapes layout of ``split``."""
    stems = [f"{CITY}_{i:06d}_000019" for i in range(count)]
    _write_frames([(root / "leftImg8bit" / split / CITY / f"{stem}{IMAGE_SUFFIX}",
                    root / "gtFine" / split / CITY / f"{stem}{LABEL_SUFFIX}") for stem in stems], size, seed, distinct)


def write_gta5_frames(root: Path, count: int, size: tuple[int, int], seed: int = 0, *,
                      distinct: int | None = None) -> None:
    """``count`` image/label pairs of ``size`` (H, W) under ``root`` in the GTA5 layout (images/, labels/)."""
    names = [f"{i:05d}.png" for i in range(count)]
    _write_frames([(root / "images" / name, root / "labels" / name) for name in names], size, seed, distinct)


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
