"""Logging that is not optimization, as Lightning callbacks: image panels of the training batches and
per-class IoU tables, for whichever loggers a run has (W&B, TensorBoard, CSV)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from cyclesem.data.labels import CLASS_NAMES, IGNORE_INDEX
from cyclesem.data.visualize import colorize, image_grid, save_png, to_uint8_image
from cyclesem.method.module import CycleSemModule, Fakes
from cyclesem.method.progress import batches_before

_CLASS_LABELS = {i: name for i, name in enumerate(CLASS_NAMES)} | {IGNORE_INDEX: "ignore"}


def _panel_columns(batch: Mapping, fakes: Fakes | None, prediction: torch.Tensor) -> tuple[list[np.ndarray], list[str]]:
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
def log_panels(loggers: Sequence[Logger], batch: Mapping, fakes: Fakes | None, prediction: torch.Tensor, step: int) -> None:
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


class ImagePanels(L.Callback):
    """Every `every_n_steps` training batches (0 = never), a panel of the batch's first images:
    source | source→target | source rec. | target | target→source | prediction | ground truth."""

    def __init__(self, every_n_steps: int = 200) -> None:
        self.every_n_steps = every_n_steps

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: CycleSemModule, outputs: Any, batch: Mapping,
                           batch_idx: int) -> None:
        step = batches_before(trainer, batch_idx)
        if not self.every_n_steps or step % self.every_n_steps != 0 or not trainer.loggers:
            return
        target = batch.get("target") or batch.get("source")
        segmenter = pl_module.segmenter
        training = segmenter.training
        segmenter.eval()  # logging must not move BatchNorm statistics: a logged run trains like an unlogged one
        with torch.no_grad():
            prediction = segmenter(target["image"][:1]).argmax(1)[0]  # (H, W)
        segmenter.train(training)
        log_panels(trainer.loggers, batch, (outputs or {}).get("fakes"), prediction, step)


class ClassIoUTable(L.Callback):
    """The per-class IoU of each validation and test epoch as a table (W&B)."""

    def _log(self, trainer: L.Trainer, split: str) -> None:
        metrics = trainer.callback_metrics
        keys = [f"{split}/iou_{name}" for name in CLASS_NAMES]
        if all(k in metrics for k in keys):
            log_class_table(trainer.loggers, split, torch.stack([metrics[k].float() for k in keys]),
                            trainer.global_step)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._log(trainer, "val")

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log(trainer, "test")


class ValSamples(L.Callback):
    """The same few target val images, with the segmenter's prediction, after every validation: spread evenly
    over the val split and chosen once, so every epoch's and every run's panels show the same scenes. W&B gets
    them with prediction and ground-truth masks (``val/samples``), TensorBoard and CSV as grids."""

    def __init__(self, num_images: int = 4) -> None:
        if num_images < 0:
            raise ValueError(f"num_images must be >= 0 (0 = off), got {num_images}")
        self.num_images = num_images
        self.samples: list[dict[str, Any]] | None = None

    def fixed_samples(self, val_set) -> list[dict[str, Any]]:
        """``num_images`` val items at evenly spaced indices, labels brought to their image's size (nearest)."""
        if self.samples is None:
            indices = np.unique(np.linspace(0, len(val_set) - 1, min(self.num_images, len(val_set))).round())
            self.samples = []
            for index in indices.astype(int).tolist():
                item = val_set[index]
                size = item["image"].shape[-2:]
                label = item["label"]  # (H', W') at label resolution
                if label.shape != size:
                    label = F.interpolate(label[None, None].float(), size=size, mode="nearest")[0, 0].long()
                self.samples.append({"image": item["image"], "label": label, "name": item["name"]})
        return self.samples

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loaders = trainer.val_dataloaders  # the labelled val split first (then, maybe, the paired set)
        first = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
        val_set = getattr(first, "dataset", None)  # the whole split, also when a DDP sampler shards it
        if (trainer.sanity_checking or not self.num_images or not trainer.loggers or not trainer.is_global_zero
                or val_set is None or len(val_set) == 0):
            return
        samples = self.fixed_samples(val_set)
        segmenter = pl_module.segmenter
        training = segmenter.training
        segmenter.eval()  # BatchNorm statistics stay as training left them
        # .forward, not __call__: a torch.compile'd segmenter would recompile for this one-image batch
        predictions = [segmenter.forward(s["image"][None].to(pl_module.device)).argmax(1)[0] for s in samples]
        segmenter.train(training)
        log_val_samples(trainer.loggers, samples, predictions, trainer.global_step, trainer.current_epoch)
