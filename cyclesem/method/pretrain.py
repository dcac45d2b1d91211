"""The ``frozen`` semantic classifier's pre-training: a plain segmenter fitted by its own Lightning Trainer on
the run's labelled images before the joint training starts, then frozen."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from cyclesem.method.losses import semantic_loss


class SegmenterModule(L.LightningModule):
    """One segmenter trained with (weighted) cross-entropy alone; keeps each epoch's mean loss."""

    def __init__(self, segmenter: nn.Module, optimizer: Callable[..., torch.optim.Optimizer],
                 class_weight: Tensor | None = None) -> None:
        super().__init__()
        self.segmenter, self.make_optimizer, self.class_weight = segmenter, optimizer, class_weight
        self.epoch_losses: list[float] = []
        self._batch_losses: list[float] = []

    def training_step(self, batch: Mapping, batch_idx: int) -> Tensor:
        logits = self.segmenter(batch["image"])  # (B, C, H, W)
        loss = semantic_loss(logits, batch["label"], self.class_weight)
        self._batch_losses.append(loss.item())
        return loss

    def on_train_epoch_end(self) -> None:
        self.epoch_losses.append(sum(self._batch_losses) / max(len(self._batch_losses), 1))
        self._batch_losses = []

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.make_optimizer(self.segmenter.parameters())


def pretrain_classifier(classifier: nn.Module, loader: DataLoader, optimizer: Callable[..., torch.optim.Optimizer],
                        *, epochs: int, class_weight: Tensor | None = None, accelerator: str = "auto",
                        devices: int | list[int] = 1, max_batches: int | None = None, progress: bool = False,
                        **trainer_kwargs: Any) -> list[float]:
    """Fit `classifier` on `loader` for `epochs` (at most `max_batches` per epoch), then freeze it in eval
    mode. One device (`devices`: 1, or ``[index]`` of a GPU), no logger, no checkpoints: the joint run's
    checkpoints hold the result; `progress` shows Lightning's progress bar (for a fit that takes minutes).
    Returns the mean loss of each epoch."""
    classifier.requires_grad_(True).train()
    stage = SegmenterModule(classifier, optimizer, class_weight)
    trainer = L.Trainer(max_epochs=epochs, accelerator=accelerator, devices=devices, logger=False,
                        enable_checkpointing=False, enable_progress_bar=progress, enable_model_summary=False,
                        num_sanity_val_steps=0, limit_train_batches=max_batches, **trainer_kwargs)
    trainer.fit(stage, train_dataloaders=loader)
    classifier.requires_grad_(False).eval()
    return stage.epoch_losses
