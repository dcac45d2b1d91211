"""Tiny datasets written in the real GTA5 / Cityscapes layouts, with known label ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from cyclesem.data.labels import CLASS_COLORS

H, W = 16, 32

# label ids of the standard test label, by horizontal band (top to bottom)
SKY, BUILDING, CAR, UNLABELED, ROAD, SIDEWALK = 23, 11, 26, 0, 7, 8


def standard_label_ids(height: int = H, width: int = W) -> np.ndarray:
    """Bands: sky | building | car (left half) + unlabeled (right half) | road. ``(H, W) uint8``."""
    ids = np.empty((height, width), dtype=np.uint8)
    q = height // 4
    ids[:q] = SKY
    ids[q : 2 * q] = BUILDING
    ids[2 * q : 3 * q, : width // 2] = CAR
    ids[2 * q : 3 * q, width // 2 :] = UNLABELED
    ids[3 * q :] = ROAD
    return ids


def pavement_label_ids(height: int = H, width: int = W) -> np.ndarray:
    """Like the standard label but the ground ahead of the camera is sidewalk."""
    ids = standard_label_ids(height, width)
    ids[3 * (height // 4) :] = SIDEWALK
    return ids


def random_rgb(seed: int, height: int = H, width: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def write_rgb(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return path


def write_label(path: Path, label_ids: np.ndarray, *, palette: bool = False) -> Path:
    """Greyscale (Cityscapes) or palette (GTA5, as published) PNG of label ids."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(label_ids)  # mode L
    if palette:
        colors = np.zeros((256, 3), dtype=np.uint8)
        colors[: len(CLASS_COLORS)] = CLASS_COLORS  # any palette: the indices are what counts
        image.putpalette(colors.ravel().tolist())  # L → P, pixel values kept as indices
    image.save(path)
    return path


def truncate(path: Path, *, keep_header: bool = True) -> Path:
    """Cut a PNG short, like an interrupted download: inside the pixel data, or inside the header."""
    data = path.read_bytes()
    keep = data.index(b"IDAT") + 6 if keep_header else 20
    path.write_bytes(data[:keep])
    return path


def write_gta5_pair(
    root: Path,
    stem: str,
    *,
    seed: int = 0,
    label_ids: np.ndarray | None = None,
    image_size: tuple[int, int] = (H, W),
) -> tuple[Path, Path]:
    ids = standard_label_ids() if label_ids is None else label_ids
    image = write_rgb(root / "images" / f"{stem}.png", random_rgb(seed, *image_size))
    label = write_label(root / "labels" / f"{stem}.png", ids, palette=True)
    return image, label


def write_cityscapes_pair(
    root: Path, split: str, city: str, frame: str, *, seed: int = 0, with_label: bool = True
) -> tuple[Path, Path]:
    stem = f"{city}_{frame}"
    image = write_rgb(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", random_rgb(seed))
    label = root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png"
    if with_label:
        write_label(label, standard_label_ids())
    return image, label
