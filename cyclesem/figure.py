"""The results figure (docs/samples.png in docs/results.md): source images, their cyclesem translation, the perfect translation (the paired
render, when the data has one: the synthetic pair), real target images, and the segmenter's predictions on those
target images against their ground truth.

    python -m cyclesem.figure ckpt_path=outputs/<date>/<time>/checkpoints/last.ckpt output=docs/samples.png

Rows are ``num_rows`` source images and as many target val images, spread evenly over each set (the same ones
for every checkpoint of a dataset); the datasets are the ones the checkpoint was trained on. A baseline
checkpoint has no generator, so its figure has no translation column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from cyclesem.data.visualize import colorize, evenly_spaced, image_grid, save_png, to_uint8_image
from cyclesem.runtime.checkpoint import CheckpointError, build_module, load_checkpoint, stored_data_config
from cyclesem.runtime.config import CONF_DIR
from cyclesem.runtime.device import resolve_device
from cyclesem.runtime.errors import exit_on_user_error


def dataset_from_node(node: dict[str, Any], **overrides: Any):
    """The dataset a stored data config's node (a ``_partial_`` factory) describes, built now."""
    return instantiate(OmegaConf.create(node), **overrides)()


def eval_source_node(data: dict[str, Any]) -> dict[str, Any]:
    """The stored ``data.source`` node with the evaluation transform: its resize, no crop, no flip."""
    resize = (data["source"].get("transform") or {}).get("resize")
    return {**data["source"], "transform": {"_target_": "cyclesem.data.transforms.eval_transform", "resize": resize}}


def fit_panel(panel: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """Resize a (h, w, 3) uint8 panel to (H, W) = size for display."""
    if panel.shape[:2] == size:
        return panel
    resample = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(panel).resize(size[::-1], resample))


@torch.no_grad()
def make_figure(cfg: DictConfig) -> np.ndarray:
    checkpoint = load_checkpoint(cfg.ckpt_path)
    module = build_module(checkpoint, cfg.ckpt_path)
    data = stored_data_config(checkpoint)
    if not data:
        raise CheckpointError(f"checkpoint {cfg.ckpt_path} stores no data config: cannot find its images")
    device = resolve_device(cfg.device)
    module.to(device)
    paired = data.get("paired") if module.has_gan else None  # source images with their paired renders
    if paired is not None and paired.get("paired_dir") is not None:
        source_set = dataset_from_node(paired)  # items: source_image, paired_image (and label)
    else:
        paired = None
        source_set = dataset_from_node(eval_source_node(data))
    target_set = dataset_from_node(data["target_val"])
    rows = []
    display: tuple[int, int] | None = None
    for source_index, target_index in zip(evenly_spaced(cfg.num_rows, len(source_set)),
                                          evenly_spaced(cfg.num_rows, len(target_set)), strict=False):
        source, target = source_set[source_index], target_set[target_index]
        source_image = source["source_image" if paired is not None else "image"]  # (3, h, w) in [-1, 1]
        label = target["label"]  # (H, W) trainIds at label resolution
        if display is None:
            h, w = target["image"].shape[-2:]
            zoom = min(cfg.zoom, cfg.max_panel_width / w)
            display = (round(h * zoom), round(w * zoom))
        logits = module.segmenter(target["image"][None].to(device))  # (1, C, h, w)
        logits = F.interpolate(logits, size=label.shape[-2:], mode="bilinear", align_corners=False)
        row = [fit_panel(to_uint8_image(source_image), display)]
        if module.has_gan:
            row.append(fit_panel(to_uint8_image(module.gen_s2t(source_image[None].to(device))[0]), display))
        if paired is not None:
            row.append(fit_panel(to_uint8_image(source["paired_image"]), display))
        row += [fit_panel(to_uint8_image(target["image"]), display),
                fit_panel(colorize(logits.argmax(1)[0].cpu().numpy()), display, nearest=True),
                fit_panel(colorize(label.numpy()), display, nearest=True)]
        rows.append(row)
    titles = ["source", *(["cyclesem translation"] if module.has_gan else []),
              *(["perfect translation"] if paired is not None else []), "real target", "prediction", "ground truth"]
    return image_grid(rows, titles)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="figure")
def main(cfg: DictConfig) -> None:
    with exit_on_user_error():
        figure = make_figure(cfg)
        save_png(figure, Path(cfg.output))
    print(f"wrote {cfg.output} ({figure.shape[1]}x{figure.shape[0]})")


if __name__ == "__main__":
    main()
