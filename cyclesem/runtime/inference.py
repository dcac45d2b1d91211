"""A checkpoint's networks outside the training loop: loading the segmenter, its evaluation preprocessing, label
maps, and a generator's translation of an image batch at any size.

`cyclesem.predict`, `cyclesem.export` and `cyclesem.figure` go through these functions, so an image is
segmented exactly as `cyclesem.evaluate` does it: the checkpoint's evaluation resize (the target val
transform), [-1, 1] scaling, logits upsampled bilinearly to the image's own size, argmax.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cyclesem.data.transforms import Size, eval_transform
from cyclesem.runtime.checkpoint import CheckpointError, build_module, load_checkpoint, stored_data_config

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def load_segmenter(ckpt_path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The checkpoint's segmenter F_T in eval mode on the CPU, and the checkpoint itself."""
    checkpoint = load_checkpoint(ckpt_path)
    if not any(key.startswith("segmenter.") for key in checkpoint["state_dict"]):
        raise CheckpointError(f"checkpoint {ckpt_path} holds no segmenter (no 'segmenter.*' weights in its "
                              "state_dict): expected a checkpoint written by cyclesem.train")
    return build_module(checkpoint, ckpt_path).segmenter.eval(), checkpoint


def eval_resize(checkpoint: dict[str, Any]) -> Size | None:
    """(H, W) the checkpoint's run resized evaluation images to (its target val transform); None: native size."""
    data = stored_data_config(checkpoint) or {}
    transform = ((data.get("target_val") or {}).get("transform")) or {}
    resize = transform.get("resize")
    return tuple(resize) if resize is not None else None


def list_images(input_dir: str | Path, exclude: str | Path | None = None) -> list[Path]:
    """Every .png/.jpg under ``input_dir`` (recursively, sorted), except those under ``exclude``."""
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise FileNotFoundError(f"input_dir={input_dir} is not a directory: expected a folder of .png/.jpg images")
    excluded = Path(exclude).resolve() if exclude is not None else None
    images = sorted(p for p in input_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                    and (excluded is None or not p.resolve().is_relative_to(excluded)))
    if not images:
        raise FileNotFoundError(f"input_dir={input_dir} holds no .png/.jpg images (searched recursively)")
    return images


class Preprocess:
    """(H, W, 3) uint8 RGB → (3, h, w) float32 in [-1, 1], resized as in evaluation (albumentations, as the
    val loader does, so predictions equal `cyclesem.evaluate`'s)."""

    def __init__(self, resize: Size | None) -> None:
        self.resize = resize
        self.transform = eval_transform(resize=resize)

    def __call__(self, image: np.ndarray) -> Tensor:
        return self.transform(image=image)["image"]


@torch.no_grad()
def predict_train_ids(segmenter: nn.Module, images: Tensor, sizes: list[tuple[int, int]]) -> list[Tensor]:
    """A batch (B, 3, h, w) → one (H_i, W_i) uint8 trainId map per image, at that image's own size."""
    logits = segmenter(images)  # (B, C, h, w)
    maps = []
    for one, size in zip(logits, sizes, strict=True):
        one = one.unsqueeze(0)  # (1, C, h, w)
        if tuple(one.shape[-2:]) != tuple(size):
            one = F.interpolate(one, size=size, mode="bilinear", align_corners=False)  # (1, C, H, W)
        maps.append(one.argmax(1)[0].to(torch.uint8).cpu())  # (H, W)
    return maps


@torch.no_grad()
def translate(generator: nn.Module, images: Tensor) -> Tensor:
    """G(x) for a batch (B, 3, H, W) in [-1, 1] of any size: reflection-padded to a multiple of 4 (the generator's
    two stride-2 stages) and cropped back, so the output is (B, 3, H, W) too."""
    h, w = images.shape[-2:]
    padded = F.pad(images, (0, -w % 4, 0, -h % 4), mode="reflect")  # (B, 3, ceil4(H), ceil4(W))
    return generator(padded)[..., :h, :w]
