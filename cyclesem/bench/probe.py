"""TrainingProbe: a Lightning callback that writes what a training run did on its device, for `cyclesem.gpu_check`.

Given to a training run as ``+callbacks.probe={_target_: cyclesem.bench.probe.TrainingProbe, out: PATH}``, it
writes ``PATH`` (JSON, rank 0) when fit ends:

    seconds_per_batch_median  end of one training batch to the end of the next, within an epoch (data loading
                              and Lightning's bookkeeping included: what a job pays per batch), after
                              ``warmup_batches`` (cuDNN autotuning, compilation)
    step_seconds_median       start to end of a training batch (the step alone)
    peak_memory_mb            torch.cuda.max_memory_allocated over fit (CUDA only; None elsewhere)
    losses                    the last batch's step-logged ``train/*`` values
    device, precision, channels_last_weights (share of 4-D weights in channels_last), parameters per network,
    semantic_classifier and fused_source_term (CycleSemModule), distributed backend and world size,
    sync_batchnorm_layers

Timings synchronize the device at each batch end, so queued kernels count where they ran.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


def channels_last_share(module: torch.nn.Module) -> float | None:
    """Share of the module's 4-D parameters (conv weights) stored channels_last; None without any."""
    weights = [p for p in module.parameters() if p.dim() == 4]
    if not weights:
        return None
    last = [p.is_contiguous(memory_format=torch.channels_last) for p in weights]  # a 1×1 kernel is both layouts
    return sum(last) / len(weights)


class TrainingProbe(Callback):
    def __init__(self, out: str, warmup_batches: int = 5) -> None:
        self.out = Path(out)
        self.warmup_batches = warmup_batches
        self.batch_seconds: list[float] = []
        self.step_seconds: list[float] = []
        self.record: dict[str, Any] = {}
        self._seen = 0
        self._batch_start: float | None = None
        self._last_end: tuple[int, float] | None = None  # (epoch, time) of the previous batch end

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        device = pl_module.device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        fused = getattr(pl_module, "fuses_source_term", None)
        options = getattr(pl_module, "options", None)
        self.record = {
            "device": str(device),
            "precision": str(trainer.precision),
            "channels_last_weights": channels_last_share(pl_module),
            "parameters": {name: sum(p.numel() for p in child.parameters())
                           for name, child in pl_module.named_children() if any(True for _ in child.parameters())},
            "semantic_classifier": getattr(getattr(options, "semantic_classifier", None), "value", None),
            "fused_source_term": fused() if callable(fused) else None,
            "distributed_backend": torch.distributed.get_backend() if distributed else None,
            "world_size": trainer.world_size,
            "strategy": type(trainer.strategy).__name__,
            "sync_batchnorm_layers": sum(isinstance(m, torch.nn.SyncBatchNorm) for m in pl_module.modules()),
        }

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        _synchronize(pl_module.device)
        self._batch_start = time.perf_counter()

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        _synchronize(pl_module.device)
        now, epoch = time.perf_counter(), trainer.current_epoch
        self._seen += 1
        if self._seen > self.warmup_batches:
            if self._batch_start is not None:
                self.step_seconds.append(now - self._batch_start)
            if self._last_end is not None and self._last_end[0] == epoch:  # not across an epoch's end
                self.batch_seconds.append(now - self._last_end[1])
        self._last_end = (epoch, now)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        device = pl_module.device
        losses = {key: float(value) for key, value in trainer.callback_metrics.items()
                  if key.startswith("train/") and key.endswith("_step")}
        self.record.update(
            batches=self._seen,
            batches_timed=len(self.step_seconds),
            warmup_batches=self.warmup_batches,
            seconds_per_batch_median=_median(self.batch_seconds),
            step_seconds_median=_median(self.step_seconds),
            peak_memory_mb=torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
            losses=losses,
        )
        if trainer.is_global_zero:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.out.write_text(json.dumps(self.record, indent=2))
