"""Callbacks that break a training run on purpose, for tests/test_faults.py (given as `+callbacks.<name>=...`)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from lightning.pytorch.callbacks import Callback


def steps_done(trainer) -> int:
    return trainer.fit_loop.epoch_loop.batch_progress.total.processed


class KillAfterStep(Callback):
    """SIGKILL this process at the end of training step ``step`` (no clean-up, like an OOM kill or preemption)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args, **kwargs) -> None:
        if steps_done(trainer) == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class BreakSourceImageAfterStep(Callback):
    """After step ``step``, delete or truncate the first labelled source image of the run."""

    def __init__(self, step: int, how: str) -> None:
        self.step, self.how = step, how

    def on_train_batch_end(self, trainer, *args, **kwargs) -> None:
        if steps_done(trainer) != self.step:
            return
        subset = trainer.datamodule.labeled_sets["source"]
        path = Path(subset.dataset.samples[subset.indices[0]][0])
        if self.how == "delete":
            path.unlink()
        else:
            path.write_bytes(path.read_bytes()[:100])
        trainer.broken_file = path


class PoisonBatch(Callback):
    """A NaN pixel in the first source image of training batch ``batch`` (of every epoch), before the step runs."""

    def __init__(self, batch: int) -> None:
        self.batch = batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.batch:
            batch["source"]["image"][0, 0, 0, 0] = float("nan")
