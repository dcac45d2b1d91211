"""Mask colouring, image conversion, panel grids, labelled rows and PNG writing (including Cityscapes label-id
PNGs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from cyclesem.data.labels import CLASS_COLORS, IGNORE_INDEX, NUM_CLASSES, train_ids_to_label_ids

# 256-entry palette: trainIds 0..18 get the Cityscapes colours; ignore (255) and anything else is black
_PALETTE = np.zeros((256, 3), dtype=np.uint8)
_PALETTE[:NUM_CLASSES] = CLASS_COLORS

_SEPARATOR = 255  # white 1-px lines between panels
_TITLE_HEIGHT = 16  # px; fits PIL's default 10-pt font


def _to_numpy(array: np.ndarray | Tensor) -> np.ndarray:
    return array.detach().cpu().numpy() if isinstance(array, Tensor) else np.asarray(array)


def colorize(mask: np.ndarray | Tensor) -> np.ndarray:
    """trainId mask (H, W) → colour image (H, W, 3) uint8; ignore (255) is black."""
    mask = _to_numpy(mask)
    if mask.ndim != 2 or not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(f"colorize expects an integer trainId mask (H, W); got {mask.dtype} {mask.shape}")
    if mask.size and (mask.min() < 0 or mask.max() > 255):
        raise ValueError(f"colorize expects trainIds in 0..255; got values in [{mask.min()}, {mask.max()}]")
    return _PALETTE[mask.astype(np.uint8)]


def to_uint8_image(image: Tensor) -> np.ndarray:
    """Network image (3, H, W) in [-1, 1] → (H, W, 3) uint8; values outside the range are clipped."""
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"to_uint8_image expects an image (3, H, W); got {tuple(image.shape)}")
    scaled = ((image.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255)
    return scaled.to(torch.uint8).permute(1, 2, 0).numpy()  # (H, W, 3)


def _title_strip(title: str, width: int) -> np.ndarray:
    strip = Image.new("RGB", (width, _TITLE_HEIGHT), (0, 0, 0))
    # PIL's built-in font has no arrow glyph
    ImageDraw.Draw(strip).text(
        (2, 2), title.replace("→", "->"), font=ImageFont.load_default(), fill=(255, 255, 255)
    )
    return np.asarray(strip)  # (16, width, 3); text wider than the panel is clipped


def image_grid(rows: list[list[np.ndarray]], titles: list[str] | None = None) -> np.ndarray:
    """Tile equal-size (H, W, 3) uint8 panels into one image with 1-px white separators.

    ``titles`` (one per column, e.g. "source | source→target | … | ground truth") are drawn in a strip
    above the first row.
    """
    if not rows or not rows[0]:
        raise ValueError("image_grid needs at least one row with at least one panel")
    n_cols = len(rows[0])
    shape = rows[0][0].shape
    if len(shape) != 3 or shape[2] != 3:
        raise ValueError(f"image_grid panels must be (H, W, 3); got {shape}")
    for r, row in enumerate(rows):
        if len(row) != n_cols:
            raise ValueError(f"image_grid row {r} has {len(row)} panels; row 0 has {n_cols}")
        for c, panel in enumerate(row):
            if panel.shape != shape or panel.dtype != np.uint8:
                raise ValueError(
                    f"image_grid panel ({r}, {c}) is {panel.dtype} {panel.shape}; expected uint8 {shape}"
                )
    if titles is not None and len(titles) != n_cols:
        raise ValueError(f"image_grid got {len(titles)} titles for {n_cols} columns")

    height, width = shape[0], shape[1]
    top = 0 if titles is None else _TITLE_HEIGHT + 1
    grid = np.full(
        (top + len(rows) * (height + 1) - 1, n_cols * (width + 1) - 1, 3), _SEPARATOR, dtype=np.uint8
    )  # (title + rows·H + separators, cols·W + separators, 3)
    for c in range(n_cols):
        x = c * (width + 1)
        if titles is not None:
            grid[:_TITLE_HEIGHT, x : x + width] = _title_strip(titles[c], width)
        for r, row in enumerate(rows):
            y = top + r * (height + 1)
            grid[y : y + height, x : x + width] = row[c]
    return grid


def evenly_spaced(count: int, size: int) -> list[int]:
    """Up to `count` distinct indices spread evenly over ``range(size)``, first and last included."""
    return np.unique(np.linspace(0, size - 1, min(count, size)).round()).astype(int).tolist()


def text_panel(text: str, height: int, width: int) -> np.ndarray:
    """A black (height, width, 3) uint8 panel with `text` (lines split on newlines) in white, top left."""
    panel = Image.new("RGB", (width, height), (0, 0, 0))
    ImageDraw.Draw(panel).multiline_text((3, 3), text.replace("→", "->"), font=ImageFont.load_default(),
                                         fill=(255, 255, 255), spacing=2)
    return np.asarray(panel)  # text wider or taller than the panel is clipped


def labelled_rows(rows: list[tuple[str, np.ndarray]], label_width: int = 84) -> np.ndarray:
    """Stack equal-size (H, W, 3) uint8 strips (e.g. `image_grid` rows) with a text label left of each, 1-px white
    separators between rows and between label and strip."""
    if not rows:
        raise ValueError("labelled_rows needs at least one row")
    shape = rows[0][1].shape
    for label, strip in rows:
        if strip.shape != shape or strip.dtype != np.uint8 or strip.ndim != 3:
            raise ValueError(f"labelled_rows strip {label!r} is {strip.dtype} {strip.shape}; expected uint8 {shape}")
    separator = np.full((shape[0], 1, 3), _SEPARATOR, dtype=np.uint8)
    lines = [np.concatenate([text_panel(label, shape[0], label_width), separator, strip], axis=1)
             for label, strip in rows]  # each (H, label_width + 1 + W, 3)
    gap = np.full((1, lines[0].shape[1], 3), _SEPARATOR, dtype=np.uint8)
    return np.concatenate([part for line in lines for part in (line, gap)][:-1], axis=0)


def save_png(array: np.ndarray, path: str | Path) -> None:
    """Write a uint8 image (H, W) or (H, W, 3) as PNG, creating parent folders."""
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise ValueError(
            f"save_png expects uint8 (H, W) or (H, W, 3) for {path}; got {array.dtype} {array.shape}"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def save_label_png(train_ids: np.ndarray | Tensor, path: str | Path, as_label_ids: bool = True) -> None:
    """Write a trainId map (H, W) as a single-channel PNG.

    ``as_label_ids=True`` writes Cityscapes label ids (ignore → 0 "unlabeled"), the format the official
    ``cityscapesscripts`` evaluator reads; ``False`` writes the trainIds themselves.
    """
    train_ids = _to_numpy(train_ids)
    if train_ids.ndim != 2 or not np.issubdtype(train_ids.dtype, np.integer):
        raise ValueError(
            f"save_label_png expects integer trainIds (H, W) for {path}; got {train_ids.dtype} {train_ids.shape}"
        )
    bad = np.setdiff1d(np.unique(train_ids), [*range(NUM_CLASSES), IGNORE_INDEX])
    if bad.size:
        raise ValueError(
            f"save_label_png got values {bad.tolist()} for {path}; expected trainIds 0..{NUM_CLASSES - 1} or {IGNORE_INDEX}"
        )
    train_ids = train_ids.astype(np.uint8)
    save_png(train_ids_to_label_ids(train_ids) if as_label_ids else train_ids, path)
