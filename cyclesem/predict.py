"""Segment a folder of images with a checkpoint's segmenter: label-id PNGs, colour PNGs and overlays.

    python -m cyclesem.predict ckpt_path=outputs/.../checkpoints/last.ckpt input_dir=photos output_dir=preds

Every .png/.jpg under input_dir (recursively, any size) gives, under the same relative path with a .png suffix,
``output_dir/labelIds/…`` (Cityscapes label ids, what the official evaluator reads), ``output_dir/color/…``
(the Cityscapes palette) and ``output_dir/overlay/…`` (the colours over the image). Images are resized as the
checkpoint's evaluation did (``resize=checkpoint``), batched by network input size, and the prediction is
brought back to each image's own size.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, ListConfig
from rich.progress import track

from cyclesem.data.image_io import DatasetError, read_rgb
from cyclesem.data.visualize import colorize, save_label_png, save_png
from cyclesem.runtime.config import CONF_DIR
from cyclesem.runtime.device import resolve_device
from cyclesem.runtime.errors import exit_on_user_error
from cyclesem.runtime.inference import Preprocess, eval_resize, list_images, load_segmenter, predict_train_ids

OUTPUTS = ("label_ids", "color", "overlay")
FOLDERS = {"label_ids": "labelIds", "color": "color", "overlay": "overlay"}


@dataclass
class Batch:
    """Images that share a network input size, waiting to fill a batch."""

    paths: list[Path] = field(default_factory=list)
    originals: list[np.ndarray] = field(default_factory=list)  # (H, W, 3) uint8 each
    inputs: list[torch.Tensor] = field(default_factory=list)  # (3, h, w) each


def overlay(image: np.ndarray, colours: np.ndarray, alpha: float) -> np.ndarray:
    """Blend the prediction colours (H, W, 3) over the image (H, W, 3), both uint8."""
    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * colours.astype(np.float32)
    return blended.round().clip(0, 255).astype(np.uint8)


def _resize_setting(value: Any, checkpoint: dict[str, Any]) -> tuple[int, int] | None:
    if value == "checkpoint":
        return eval_resize(checkpoint)
    if value is None:
        return None
    if isinstance(value, (list, tuple, ListConfig)) and len(value) == 2 and all(int(v) >= 1 for v in value):
        return int(value[0]), int(value[1])
    raise ValueError(f"resize={value!r}: expected checkpoint, null or [H, W]")


def _check_settings(cfg: DictConfig) -> list[str]:
    if cfg.on_error not in ("skip", "stop"):
        raise ValueError(f"on_error={cfg.on_error!r}: expected skip or stop")
    if cfg.batch_size < 1:
        raise ValueError(f"batch_size={cfg.batch_size}: expected an integer >= 1")
    if not 0.0 <= cfg.overlay_alpha <= 1.0:
        raise ValueError(f"overlay_alpha={cfg.overlay_alpha}: expected a float in [0, 1]")
    outputs = list(cfg.outputs)
    unknown = [o for o in outputs if o not in OUTPUTS]
    if unknown or not outputs:
        raise ValueError(f"outputs={outputs}: expected a non-empty list of {', '.join(OUTPUTS)}")
    return outputs


def predict(cfg: DictConfig) -> dict[str, Any]:
    """Segment every image under cfg.input_dir; returns {"written": [relative paths], "skipped": [...]}."""
    outputs = _check_settings(cfg)
    input_dir, output_dir = Path(cfg.input_dir), Path(cfg.output_dir)
    if input_dir.resolve() == output_dir.resolve():
        raise ValueError("output_dir must differ from input_dir (predict never overwrites its inputs)")
    images = list_images(input_dir, exclude=output_dir)
    segmenter, checkpoint = load_segmenter(cfg.ckpt_path)
    preprocess = Preprocess(_resize_setting(cfg.resize, checkpoint))
    device = resolve_device(cfg.device)
    segmenter.to(device)
    pending: dict[tuple[int, ...], Batch] = {}
    written: list[str] = []
    skipped: list[str] = []

    def run(batch: Batch) -> None:
        inputs = torch.stack(batch.inputs).to(device)  # (B, 3, h, w)
        maps = predict_train_ids(segmenter, inputs, [o.shape[:2] for o in batch.originals])
        for path, original, train_ids in zip(batch.paths, batch.originals, maps, strict=True):
            relative = path.relative_to(input_dir).with_suffix(".png")
            train_ids = train_ids.numpy()  # (H, W) uint8
            colours = colorize(train_ids) if {"color", "overlay"} & set(outputs) else None
            if "label_ids" in outputs:
                save_label_png(train_ids, output_dir / FOLDERS["label_ids"] / relative, as_label_ids=True)
            if "color" in outputs:
                save_png(colours, output_dir / FOLDERS["color"] / relative)
            if "overlay" in outputs:
                save_png(overlay(original, colours, cfg.overlay_alpha), output_dir / FOLDERS["overlay"] / relative)
            written.append(str(relative))

    for path in track(images, description="predicting"):
        try:
            original = read_rgb(path)  # (H, W, 3) uint8
        except DatasetError as err:
            if cfg.on_error == "stop":
                raise DatasetError(f"{err} (on_error=skip skips unreadable images with a warning)") from None
            print(f"warning: skipping {err}", file=sys.stderr)
            skipped.append(str(path))
            continue
        network_input = preprocess(original)  # (3, h, w)
        batch = pending.setdefault(tuple(network_input.shape), Batch())
        batch.paths.append(path)
        batch.originals.append(original)
        batch.inputs.append(network_input)
        if len(batch.paths) == cfg.batch_size:
            run(pending.pop(tuple(network_input.shape)))
    for batch in pending.values():
        run(batch)
    print(f"wrote {', '.join(FOLDERS[o] for o in outputs)} for {len(written)} images to {output_dir}"
          + (f"; skipped {len(skipped)} unreadable: {', '.join(skipped[:5])}" if skipped else ""))
    return {"written": written, "skipped": skipped}


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="predict")
def main(cfg: DictConfig) -> None:
    with exit_on_user_error():
        predict(cfg)


if __name__ == "__main__":
    main()
