"""cyclesem's checkpoints: writing them atomically, the resume point (``last.ckpt``), and reading them back.

- `AtomicCheckpointIO` (a Lightning CheckpointIO plugin, added by `cyclesem.train.build`) writes to a temporary
  file beside the target, fsyncs it and renames it over the target: a process killed mid-write leaves the old
  file whole and a stray ``.<name>.tmp-<pid>`` behind, which the next save of that name removes. Running out of
  disk is reported as such (`CheckpointSaveError`), naming the file and the free space.
- `LastCheckpoint` (a callback) rewrites ``checkpoints/last.ckpt`` every N training steps and every epoch; the
  best checkpoint by `val/mIoU` is ModelCheckpoint's job.
- `load_checkpoint` / `build_module` rebuild the module from the model config a checkpoint stores
  (self-describing: `evaluate` and `stylize` need no training overrides).

Every read is weights-only (`cyclesem.models.weights_file`), Lightning's resume included (`AtomicCheckpointIO`):
a file that holds objects other than tensors and plain containers is refused before any of it is unpickled.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from cyclesem.method.from_config import instantiate_module
from cyclesem.method.module import CHECKPOINT_KEY, CycleSemModule
from cyclesem.method.progress import batches_before
from cyclesem.models.weights_file import CheckpointError, load_weights_only

_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


# ----------------------------------------------------------------- writing
class CheckpointSaveError(OSError):
    """A checkpoint could not be written; the previous file of that name is unchanged."""


def _free_mib(directory: Path) -> str:
    try:
        return f"{shutil.disk_usage(directory).free / 2**20:.0f} MiB"
    except OSError:
        return "unknown"


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` through a temporary file + fsync + rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.tmp-*"):  # left by a killed writer
        stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        kept = f"the previous {path.name} is unchanged" if path.exists() else f"no {path.name} was written"
        if err.errno in _DISK_FULL:
            raise CheckpointSaveError(
                err.errno, f"no space left on the device while saving checkpoint {path} "
                f"(free now: {_free_mib(path.parent)}); {kept}. Free some space (or point paths.output_dir "
                "elsewhere) and resume with ckpt_path=last"
            ) from err
        raise CheckpointSaveError(err.errno, f"cannot save checkpoint {path}: {err.strerror or err}; {kept}") from err


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        if "://" in str(path):  # remote filesystems: Lightning's own writer
            super().save_checkpoint(checkpoint, path)
            return
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(self, path: str | Path, map_location: Any = None, weights_only: bool | None = None
                        ) -> dict[str, Any]:
        """Weights-only whatever the caller passes (``trainer.fit(ckpt_path=...)`` resumes from a file a user
        names), onto the CPU as Lightning's default ``map_location`` does."""
        if "://" in str(path):  # remote filesystems: Lightning's own reader, still weights-only
            return super().load_checkpoint(path, weights_only=True)
        return load_weights_only(path)


# Lightning's save-side switch: False writes the optimizer, scheduler, loop and callback states beside the weights,
# everything a resume needs. It says what is written, not how a file is read (always weights-only, above).
_SAVE_WEIGHTS_ONLY = False


class LastCheckpoint(Checkpoint):
    """The resume point, ``last.ckpt``, every `every_n_train_steps` training steps (one step = one batch: a
    generator, a discriminator and a segmenter update) and every epoch.

    A `Checkpoint` callback, so Lightning runs its epoch-end save after the module's on_train_epoch_end
    (the per-epoch scheduler steps are in the file), as it does for ModelCheckpoint."""

    def __init__(self, dirpath: str | Path, every_n_train_steps: int = 100, filename: str = "last.ckpt") -> None:
        if every_n_train_steps < 0:
            raise ValueError(f"every_n_train_steps must be >= 0 (0 = only at epoch ends), got {every_n_train_steps}")
        self.path = Path(dirpath) / filename
        self.every_n_train_steps = every_n_train_steps

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        every = self.every_n_train_steps
        if every and (batches_before(trainer, batch_idx) + 1) % every == 0:  # this batch included
            self.save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.save(trainer)

    def save(self, trainer: L.Trainer) -> None:
        if trainer.fast_dev_run or trainer.sanity_checking:
            return
        trainer.save_checkpoint(self.path, weights_only=_SAVE_WEIGHTS_ONLY)


# ----------------------------------------------------------------- reading
def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by cyclesem.train, read weights-only; CheckpointError (UnsafeCheckpointError for
    objects other than weights) names the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    checkpoint = load_weights_only(path)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"checkpoint {path} is not a Lightning checkpoint (no 'state_dict')")
    info = checkpoint.get(CHECKPOINT_KEY)
    if not isinstance(info, dict) or not info.get("model_config"):
        raise CheckpointError(f"checkpoint {path} was not written by cyclesem.train (no '{CHECKPOINT_KEY}' "
                              "entry with the model config), so its networks cannot be rebuilt")
    return checkpoint


# classes that moved since checkpoints were written: their stored model configs name the old path
MOVED_TARGETS = {"cyclesem.module.CycleSemModule": "cyclesem.method.module.CycleSemModule"}


def build_module(checkpoint: dict[str, Any], path: str | Path = "<checkpoint>", **from_data: Any) -> CycleSemModule:
    """Rebuild the module from the config stored in the checkpoint and load its weights; `from_data` are objects
    the checkpoint does not hold (the translation score's ``reference``)."""
    model_config = dict(checkpoint[CHECKPOINT_KEY]["model_config"])
    model_config["_target_"] = MOVED_TARGETS.get(model_config["_target_"], model_config["_target_"])
    module = instantiate_module(model_config, **from_data)
    missing, unexpected = module.load_state_dict(checkpoint["state_dict"], strict=False)
    if missing or unexpected:
        raise CheckpointError(f"checkpoint {path} does not match its own model config: missing "
                              f"{missing[:5]}, unexpected {unexpected[:5]}")
    return module.eval()


def stored_data_config(checkpoint: dict[str, Any]) -> dict[str, Any] | None:
    return checkpoint[CHECKPOINT_KEY].get("data_config")


def stored_reference_config(checkpoint: dict[str, Any]) -> dict[str, Any] | None:
    """The run's resolved ``reference.*`` (None: it had no translation score, or predates it)."""
    return checkpoint[CHECKPOINT_KEY].get("reference_config")
