"""Reading a torch file someone hands in — a checkpoint, a state_dict, pretrained weights — without running it.

An unrestricted ``torch.load`` unpickles arbitrary objects, so a crafted file runs whatever code it carries
before anyone looks at its contents. Every checkpoint and weights file the project reads goes through
:func:`load_weights_only`: tensors and plain containers (dict, list, tuple, str, numbers, None) load; anything
else is refused unread with :class:`UnsafeCheckpointError`, which says how to convert a file the user trusts
(``python -m cyclesem.convert_checkpoint``, the only place that unpickles without the restriction).

cyclesem's own checkpoints hold nothing else: the model config as a plain dict, RNG states, image pools and the
data-stream position as tensors and numbers (see `cyclesem.method.rng`), so no type is allow-listed here.
"""

from __future__ import annotations

import os
import pickle
import pickletools
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

CONVERT_COMMAND = "python -m cyclesem.convert_checkpoint"
_WEIGHTS_ONLY_FAILED = "Weights only load failed"  # how torch's weights-only unpickler errors begin
# How it names an object it refused: "GLOBAL posix.system whose module posix is blocked", "Unsupported global:
# GLOBAL __main__.Foo was not an allowed global by default", "Can only build Tensor, ... but got <class 'x.Y'>".
# Its other refusals (an opcode it does not know, a string too long) are a damaged or foreign file.
_REFUSED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_REFUSED_CLASS = re.compile(r"Can only (?:create new object|build) .*?but got (\S+)")
_UNSUPPORTED_OPCODE = re.compile(r"Unsupported operand (\d+)")
# the opcodes that import or build objects (pickletools' names); a crafted file may use them instead of GLOBAL
_OBJECT_OPCODES = {"INST", "OBJ", "EXT1", "EXT2", "EXT4", "PERSID", "BINPERSID", "NEWOBJ", "NEWOBJ_EX", "REDUCE",
                   "BUILD", "GLOBAL", "STACK_GLOBAL"}
_OPCODE_NAMES = {ord(op.code): op.name for op in pickletools.opcodes}


class CheckpointError(ValueError):
    """A checkpoint or weights file that is missing, unreadable or not what the command expects."""


class UnsafeCheckpointError(CheckpointError):
    """A file that holds objects other than tensors and plain containers: refused without unpickling them."""


def describe(err: BaseException | None) -> str:
    """``Type: what went wrong``, in one line: the first line of the message, or for torch's weights-only
    unpickler the line that follows its boilerplate."""
    text = str(err).strip()
    if text.startswith(_WEIGHTS_ONLY_FAILED) and "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"


def refused_object(err: BaseException) -> str | None:
    """The object torch's weights-only unpickler refused (``posix.system``, ``pickle opcode INST``), from its
    message; None when it refused something else (a damaged file)."""
    text = str(err)
    if found := _REFUSED_GLOBAL.search(text) or _REFUSED_CLASS.search(text):
        return found.group(1)
    opcode = _UNSUPPORTED_OPCODE.search(text)
    name = _OPCODE_NAMES.get(int(opcode.group(1))) if opcode else None
    return f"pickle opcode {name}" if name in _OBJECT_OPCODES else None


def converted_name(path: str | os.PathLike) -> Path:
    """Where the conversion hint suggests writing a trusted file's weights-only copy: ``<stem>.weights<suffix>``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.weights{path.suffix or '.ckpt'}")


def load_weights_only(path: str | os.PathLike, *, what: str = "checkpoint", mmap: bool = False) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU.

    what: the file's name in messages ("checkpoint", "weights file").
    mmap: map the tensors' storage instead of reading it (for a check that only needs to know the file is safe;
        zip-format files only, older files are read whole).
    Raises UnsafeCheckpointError for objects other than weights, CheckpointError for a file that is not a readable
    torch file (the error torch raised is its __cause__); FileNotFoundError for a missing one.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        # explicit True: TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD overrides only a call that leaves weights_only unset
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and zipfile.is_zipfile(path))
    except pickle.UnpicklingError as err:
        refused = refused_object(err) if str(err).startswith(_WEIGHTS_ONLY_FAILED) else None
        if refused is not None:
            raise UnsafeCheckpointError(
                f"{what} {path} holds objects other than weights ({refused}), so it was not loaded: loading it could "
                f"run code. Only if you trust where it came from, convert it once with `{CONVERT_COMMAND} {path} "
                f"{converted_name(path)}` (see docs/deployment.md)"
            ) from None
        failure: Exception = err
    except Exception as err:  # truncated zip, garbage bytes, an empty file: torch raises many types
        failure = err
    raise CheckpointError(f"cannot read {what} {path}: {describe(failure)} (truncated or not a PyTorch checkpoint?)"
                          ) from failure
