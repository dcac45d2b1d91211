"""Where a run is in its training stream, for callbacks that act every N training batches and for weights that
follow a schedule over the run (``seg_source_rule=anneal``)."""

from __future__ import annotations

import math

import lightning as L


def batches_before(trainer: L.Trainer, batch_idx: int) -> int:
    """Training batches the run processed before this one, counted from its start; one batch is one generator,
    discriminator and segmenter update. Built from public Trainer state (a resumed run restores the epoch and
    ``batch_idx``) rather than ``global_step``, which counts every optimizer step (three per batch)."""
    return trainer.current_epoch * trainer.num_training_batches + batch_idx


def training_progress(trainer: L.Trainer, batch_idx: int) -> float | None:
    """Where this batch lies in the run's training batches: 0 at the first, 1 at the last of
    ``max_epochs × num_training_batches`` (the budget is in epochs); None when the run has no finite length."""
    epochs, per_epoch = trainer.max_epochs, trainer.num_training_batches
    if epochs is None or epochs < 1 or not math.isfinite(per_epoch) or per_epoch < 1:
        return None
    total = epochs * int(per_epoch)
    return min(1.0, batches_before(trainer, batch_idx) / max(total - 1, 1))
