"""Where a run is in its training stream, for callbacks that act every N training batches."""

from __future__ import annotations

import lightning as L


def batches_before(trainer: L.Trainer, batch_idx: int) -> int:
    """Training batches the run processed before this one, counted from its start; one batch is one generator,
    discriminator and segmenter update. Built from public Trainer state (a resumed run restores the epoch and
    ``batch_idx``) rather than ``global_step``, which counts every optimizer step (three per batch)."""
    return trainer.current_epoch * trainer.num_training_batches + batch_idx
