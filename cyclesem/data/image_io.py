"""Reading dataset PNGs with errors that name the file.

Every loader (GTA5, Cityscapes, the paired stylized images, ``prepare``) reads through
these three functions, so a truncated download or a colour label image fails the same
way everywhere: a :class:`DatasetError` saying which file and why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# RGBA appears in some re-exported GTA5 frames; the alpha channel carries nothing
_RGB_MODES = ("RGB", "RGBA")
# GTA5 labels are palette PNGs whose indices are the label ids; Cityscapes ones are greyscale
_LABEL_MODES = ("L", "P")


class DatasetError(ValueError):
    """A dataset on disk is missing, incomplete or holds a file that cannot be used."""


def _open(path: Path, kind: str) -> Image.Image:
    try:
        return Image.open(path)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DatasetError(f"cannot read {kind} {path}: {err}") from err


def _decode(image: Image.Image, path: Path, kind: str) -> None:
    # PIL decodes lazily: a truncated file opens fine and only fails here
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as err:
        raise DatasetError(f"cannot read {kind} {path}: {err}") from err


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode an RGB image to ``(H, W, 3) uint8``; raise :class:`DatasetError` naming the file."""
    path = Path(path)
    with _open(path, "image") as image:
        if image.mode not in _RGB_MODES:
            raise DatasetError(f"cannot read image {path}: mode {image.mode!r}, expected RGB")
        _decode(image, path, "image")
        rgb = np.array(image.convert("RGB") if image.mode != "RGB" else image)
    return rgb  # (H, W, 3) uint8


def read_label_ids(path: str | Path) -> np.ndarray:
    """Decode a single-channel label-id image to ``(H, W) uint8``; raise :class:`DatasetError` naming the file."""
    path = Path(path)
    with _open(path, "label") as image:
        if image.mode not in _LABEL_MODES:
            hint = " (a colour label image? use the *_labelIds.png files)" if image.mode in _RGB_MODES else ""
            raise DatasetError(
                f"cannot read label {path}: mode {image.mode!r}, expected single-channel label ids "
                f"(mode L or P){hint}"
            )
        _decode(image, path, "label")
        # for mode P, the array holds the palette indices, which are the label ids
        label_ids = np.array(image)
    return label_ids  # (H, W) uint8


def image_size(path: str | Path, *, kind: str = "image") -> tuple[int, int]:
    """``(W, H)`` from the PNG header, without decoding the pixels; ``kind`` names the file in errors."""
    path = Path(path)
    with _open(path, kind) as image:
        return image.size
