"""`ValSamples`: the same few target val images, with the segmenter's prediction, after every validation.

The images are spread evenly over the val split and chosen once, so the panels of every epoch and of every run
on the same data show the same scenes: progress reads across epochs and runs. W&B gets them as images with
prediction and ground-truth masks (``val/samples``), TensorBoard and CSV as image | prediction | ground truth grids.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback

from cyclesem.media_logging import log_val_samples


class ValSamples(Callback):
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
        val_set = getattr(trainer.datamodule, "val_set", None)
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
