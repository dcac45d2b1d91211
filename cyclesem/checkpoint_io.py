"""Writing checkpoints so that a kill or a full disk never costs the previous one.

`AtomicCheckpointIO` (a Lightning CheckpointIO plugin, added by `cyclesem.train.build`) writes to a temporary file
beside the target, fsyncs it and renames it over the target: a process killed mid-write leaves the old file whole
and a stray ``.<name>.tmp-<pid>`` behind, which the next save of that name removes. Running out of disk is reported
as such (`CheckpointSaveError`), naming the file and the free space.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


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
