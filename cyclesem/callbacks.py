"""`LastCheckpoint`: the resume point, ``checkpoints/last.ckpt``, every N training steps and every epoch.

A training step is one batch (one generator, discriminator and segmenter update). The file is replaced atomically
(`cyclesem.checkpoint_io.AtomicCheckpointIO`), so `ckpt_path=last` always finds a whole checkpoint; the best
checkpoint by `val/mIoU` is ModelCheckpoint's job.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Checkpoint


class LastCheckpoint(Checkpoint):
    """A `Checkpoint` callback, so Lightning runs its epoch-end save after the module's on_train_epoch_end
    (the per-epoch scheduler steps are in the file), as it does for ModelCheckpoint."""

    def __init__(self, dirpath: str | Path, every_n_train_steps: int = 100, filename: str = "last.ckpt") -> None:
        if every_n_train_steps < 0:
            raise ValueError(f"every_n_train_steps must be >= 0 (0 = only at epoch ends), got {every_n_train_steps}")
        self.path = Path(dirpath) / filename
        self.every_n_train_steps = every_n_train_steps

    @staticmethod
    def steps_done(trainer: L.Trainer) -> int:
        """Training batches processed since the run started (restored with the loops on resume)."""
        return trainer.fit_loop.epoch_loop.batch_progress.total.processed

    def on_train_batch_end(self, trainer: L.Trainer, *args, **kwargs) -> None:
        every = self.every_n_train_steps
        if every and self.steps_done(trainer) % every == 0:
            self.save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.save(trainer)

    def save(self, trainer: L.Trainer) -> None:
        if trainer.fast_dev_run or trainer.sanity_checking:
            return
        trainer.save_checkpoint(self.path, weights_only=False)  # everything a resume needs
