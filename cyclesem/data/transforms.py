"""Paired image / label transforms (albumentations 2.x), images scaled to [-1, 1].

[-1, 1] matches the generators' tanh output, so real and translated images share a range.
Masks hold trainIds: albumentations resizes them with nearest neighbour (no invented
classes) and, because we say so, pads them with 255 (ignore) — its default fill of 0
would label the padding as road.
"""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2

from cyclesem.data.labels import IGNORE_INDEX

Size = tuple[int, int]  # (H, W)


def _check_size(name: str, size: Size | None) -> None:
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise ValueError(f"{name} must be a (H, W) pair of positive ints, got {size!r}")


def _resize(size: Size) -> A.Resize:
    # bilinear for the image, INTER_AREA when shrinking it (no aliasing); masks stay nearest
    return A.Resize(height=size[0], width=size[1], interpolation=cv2.INTER_LINEAR, area_for_downscale="image")


def _to_unit_range() -> list[A.BasicTransform]:
    # (x / 255 - 0.5) / 0.5 == x / 127.5 - 1, the same as normalize_to_tensor
    return [A.Normalize(mean=(0.5,) * 3, std=(0.5,) * 3, max_pixel_value=255.0), ToTensorV2()]


def train_transform(
    *,
    resize: Size | None = None,
    crop: Size | None = None,
    hflip: bool = True,
    scale: tuple[float, float] | None = None,
) -> A.Compose:
    """Resize → random scale → pad to the crop (image 0, mask 255) → random crop → flip → [-1, 1] tensor."""
    _check_size("resize", resize)
    _check_size("crop", crop)
    steps: list[A.BasicTransform] = []
    if resize is not None:
        steps.append(_resize(resize))
    if scale is not None:
        low, high = scale
        if not 0 < low <= high:
            raise ValueError(f"scale must be (low, high) with 0 < low <= high, got {scale!r}")
        # RandomScale samples 1 + U(scale_limit)
        steps.append(A.RandomScale(scale_limit=(low - 1.0, high - 1.0), area_for_downscale="image", p=1.0))
    if crop is not None:
        steps.append(
            A.PadIfNeeded(
                min_height=crop[0],
                min_width=crop[1],
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                fill_mask=IGNORE_INDEX,
            )
        )
        steps.append(A.RandomCrop(height=crop[0], width=crop[1]))
    if hflip:
        steps.append(A.HorizontalFlip(p=0.5))
    return A.Compose(steps + _to_unit_range())


def eval_transform(*, resize: Size | None = None) -> A.Compose:
    """Optional resize (mask nearest) → [-1, 1] tensor; deterministic."""
    _check_size("resize", resize)
    steps: list[A.BasicTransform] = [_resize(resize)] if resize is not None else []
    return A.Compose(steps + _to_unit_range())


def normalize_to_tensor(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3) uint8`` → ``(3, H, W) float32`` in [-1, 1]: the no-transform path of the loaders."""
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)  # (3, H, W)
    return tensor.float().div_(127.5).sub_(1.0)
