"""Image panels and per-class tables for whichever loggers a run has (W&B, TensorBoard, CSV)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from cyclesem.data.labels import CLASS_NAMES, IGNORE_INDEX
from cyclesem.visualize import colorize, image_grid, save_png, to_uint8_image

_CLASS_LABELS = {i: name for i, name in enumerate(CLASS_NAMES)} | {IGNORE_INDEX: "ignore"}


def _panel_columns(batch: Mapping, fakes, prediction: torch.Tensor) -> tuple[list[np.ndarray], list[str]]:
    """First image of the batch: source | source→target | source rec. | target | target→source | prediction | truth."""
    columns, titles = [], []
    if batch.get("source") is not None:
        columns.append(to_uint8_image(batch["source"]["image"][0]))
        titles.append("source")
        if fakes is not None:
            columns += [to_uint8_image(fakes.source_as_target[0]), to_uint8_image(fakes.source_rec[0])]
            titles += ["source→target", "source rec."]
    shown = batch.get("target") or batch.get("source")
    if batch.get("target") is not None:
        columns.append(to_uint8_image(shown["image"][0]))
        titles.append("target")
        if fakes is not None:
            columns.append(to_uint8_image(fakes.target_as_source[0]))
            titles.append("target→source")
    columns += [colorize(prediction.cpu().numpy()), colorize(shown["label"][0].cpu().numpy())]
    titles += ["prediction", "ground truth"]
    return columns, titles


@rank_zero_only
def log_panels(loggers: Sequence[Logger], batch: Mapping, fakes, prediction: torch.Tensor, step: int) -> None:
    columns, titles = _panel_columns(batch, fakes, prediction)
    grid = image_grid([columns], titles)  # (h, w, 3) uint8
    shown = batch.get("target") or batch.get("source")
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            masks = {
                "prediction": {"mask_data": prediction.cpu().numpy().astype(np.uint8), "class_labels": _CLASS_LABELS},
                "ground_truth": {"mask_data": shown["label"][0].cpu().numpy().astype(np.uint8),
                                 "class_labels": _CLASS_LABELS},
            }
            logger.experiment.log({
                "train/panel": wandb.Image(grid, caption=" | ".join(titles)),
                "train/segmentation": wandb.Image(to_uint8_image(shown["image"][0]), masks=masks),
                "trainer/global_step": step,
            })
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image("train/panel", grid, step, dataformats="HWC")
        elif isinstance(logger, CSVLogger):
            save_png(grid, Path(logger.log_dir) / "panels" / f"step{step:07d}.png")


@rank_zero_only
def log_class_table(loggers: Sequence[Logger], split: str, per_class_iou: torch.Tensor, step: int) -> None:
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            rows = [[name, None if math.isnan(v) else v] for name, v in zip(CLASS_NAMES, per_class_iou.tolist(), strict=True)]
            logger.log_table(key=f"{split}/per_class_iou", columns=["class", "IoU"], data=rows, step=step)


@rank_zero_only
def log_val_samples(loggers: Sequence[Logger], samples: Sequence[Mapping], predictions: Sequence[torch.Tensor],
                    step: int, epoch: int) -> None:
    """The fixed val images (``samples``: val items) with the segmenter's prediction: W&B masks, image grids."""
    images = [to_uint8_image(s["image"]) for s in samples]  # (H, W, 3) each
    labels = [s["label"].cpu().numpy().astype(np.uint8) for s in samples]  # (H, W) each, resized to the image
    predictions = [p.cpu().numpy().astype(np.uint8) for p in predictions]
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            logger.experiment.log({
                "val/samples": [
                    wandb.Image(image, caption=s["name"], masks={
                        "prediction": {"mask_data": prediction, "class_labels": _CLASS_LABELS},
                        "ground_truth": {"mask_data": label, "class_labels": _CLASS_LABELS}})
                    for s, image, prediction, label in zip(samples, images, predictions, labels, strict=True)],
                "trainer/global_step": step,
            })
            continue
        grid = image_grid([[image, colorize(prediction), colorize(label)]
                           for image, prediction, label in zip(images, predictions, labels, strict=True)],
                          ["target val image", "prediction", "ground truth"])
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image("val/samples", grid, step, dataformats="HWC")
        elif isinstance(logger, CSVLogger):
            save_png(grid, Path(logger.log_dir) / "val_samples" / f"epoch{epoch:03d}.png")
