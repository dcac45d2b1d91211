"""A callback that writes what each DDP rank holds, for tests/test_ddp.py (given as `+callbacks.dump=...`)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback


class DumpRankState(Callback):
    """``confmat_rank<r>.pt``: this rank's own (not yet reduced) val confusion matrix of the last validation;
    ``params_rank<r>.pt``: its parameters when training ends."""

    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:  # callbacks run before the module's reduce
        torch.save(pl_module.val_metrics.confmat.clone(), self.out / f"confmat_rank{trainer.global_rank}.pt")

    def on_train_end(self, trainer, pl_module) -> None:
        params = {k: v.detach().clone() for k, v in pl_module.named_parameters()}
        torch.save(params, self.out / f"params_rank{trainer.global_rank}.pt")


class RecordStepLosses(Callback):
    """``steps_rank<r>.jsonl``: one line per training batch with this rank's step-logged ``train/seg_*`` values,
    keyed by (epoch, batch index) so a batch repeated after a resume is recognised."""

    KEYS = ("train/seg_source_step", "train/seg_target_step", "train/g_total_step")

    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        values = {k: float(trainer.callback_metrics[k]) for k in self.KEYS}
        line = json.dumps({"epoch": trainer.current_epoch, "batch": batch_idx, **values})
        with open(self.out / f"steps_rank{trainer.global_rank}.jsonl", "a") as handle:
            handle.write(line + "\n")


class DumpRankStreams(Callback):
    """Each rank's own random streams (`CycleSemModule.streams`: image pools, instance noise, global RNG states)
    when a checkpoint is built (``saved_rank<r>_at<batches>.pt``) and when training starts, after a resume has
    restored them (``restored_rank<r>_at<batches>.pt``); <batches> counts the training batches done."""

    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)

    def _dump(self, trainer, pl_module, what: str) -> None:
        done = trainer.fit_loop.epoch_loop.batch_progress.total.processed
        torch.save(pl_module.streams.state_dict(), self.out / f"{what}_rank{trainer.global_rank}_at{done}.pt")

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        self._dump(trainer, pl_module, "saved")

    def on_train_start(self, trainer, pl_module) -> None:
        self._dump(trainer, pl_module, "restored")
