"""Convert a checkpoint or weights file you trust into one that loads weights-only.

    python -m cyclesem.convert_checkpoint old.ckpt old.weights.ckpt

Every other command reads files weights-only and refuses one that holds other objects (an old checkpoint that
stored a config object, or a crafted file: reading them unrestricted would run code they carry). This is the one
place in cyclesem that unpickles a file without that restriction, so run it only on files whose origin you trust.
The copy holds the same content as tensors and plain containers: OmegaConf configs, dataclasses and Namespaces
become dicts, enums their names, paths strings, numpy arrays tensors and numpy numbers Python numbers. Any other
object is named and nothing is written; the copy is checked to load weights-only before it is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import io
import sys
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from cyclesem.models.weights_file import (
    CheckpointError,
    UnsafeCheckpointError,
    describe,
    load_weights_only,
    refused_object,
)
from cyclesem.runtime.checkpoint import atomic_torch_save
from cyclesem.runtime.errors import exit_on_user_error

_KEPT = (torch.Tensor, str, bytes, int, float, complex, bool, type(None), torch.dtype, torch.device, torch.Size)


class ConversionError(CheckpointError):
    """A file that cannot be turned into plain containers and tensors; nothing was written."""


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def to_plain(node: Any, where: str = "", changes: list[str] | None = None) -> Any:
    """``node`` with every object a weights-only load refuses replaced by plain data; each replacement is noted
    in ``changes`` as ``"<key path>: <type> -> <type>"``. Raises ConversionError naming what has no plain form."""
    changes = [] if changes is None else changes

    def note(value: Any) -> Any:
        changes.append(f"{where or '<root>'}: {type(node).__name__} -> {type(value).__name__}")
        return value

    # enums by name, as cyclesem.train stores configs (OmegaConf's enum_to_str) and an enum field reads them back;
    # before the kept types, since a `str, Enum` is a str too
    if isinstance(node, enum.Enum):
        return note(node.name)
    if isinstance(node, _KEPT):
        return node
    if isinstance(node, (DictConfig, ListConfig)):
        return note(to_plain(OmegaConf.to_container(node, resolve=True, enum_to_str=True), where, changes))
    if isinstance(node, PurePath):
        return note(str(node))
    if isinstance(node, np.ndarray):
        return note(torch.from_numpy(np.ascontiguousarray(node)))
    if isinstance(node, np.generic):
        return note(node.item())
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return note(to_plain(dataclasses.asdict(node), where, changes))
    if isinstance(node, argparse.Namespace):
        return note(to_plain(vars(node), where, changes))
    if isinstance(node, Mapping):
        items = {k: to_plain(v, _join(where, k), changes) for k, v in node.items()}
        if type(node) is OrderedDict:  # a state_dict: keep its _metadata (module versions load_state_dict reads)
            state = OrderedDict(items)
            if hasattr(node, "_metadata"):
                state._metadata = node._metadata  # type: ignore[attr-defined]
            return state
        return items if type(node) is dict else note(items)
    if isinstance(node, (list, tuple, set, frozenset)):
        items = [to_plain(v, _join(where, i), changes) for i, v in enumerate(node)]
        if type(node) in (list, tuple, set):
            return type(node)(items)
        return note(set(items) if isinstance(node, frozenset) else tuple(items))  # a namedtuple: a plain tuple
    raise ConversionError(f"{where or '<root>'} is a {type(node).__module__}.{type(node).__qualname__}, which has "
                          "no plain form (tensors, numbers, strings and containers of them): nothing was written")


def convert(source: str | Path, target: str | Path) -> list[str]:
    """Write ``target``: ``source``'s content as tensors and plain containers. Returns what was replaced."""
    source, target = Path(source).expanduser(), Path(target).expanduser()
    if not source.is_file():
        raise FileNotFoundError(f"{source} does not exist: expected the checkpoint or weights file to convert")
    if target.exists():
        raise FileExistsError(f"{target} exists: choose another output path (the input is never overwritten)")
    try:
        loaded = load_weights_only(source)
    except UnsafeCheckpointError:
        try:
            loaded = torch.load(source, map_location="cpu", weights_only=False)  # the trusted path: see the docstring
        except Exception as err:  # a class it names that this environment cannot import, a truncated file
            raise ConversionError(f"cannot unpickle {source} even unrestricted: {describe(err)}: nothing was "
                                  "written") from None
    changes: list[str] = []
    plain = to_plain(loaded, changes=changes)
    buffer = io.BytesIO()
    torch.save(plain, buffer)
    buffer.seek(0)
    try:
        torch.load(buffer, map_location="cpu", weights_only=True)
    except Exception as err:  # something to_plain kept that torch still refuses (a tensor subclass)
        raise ConversionError(f"the converted copy of {source} still does not load weights-only "
                              f"({refused_object(err) or describe(err)}): nothing was written") from None
    atomic_torch_save(plain, target)
    return changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cyclesem.convert_checkpoint", description=__doc__.split("\n")[0],
                                     epilog="Run it only on files you trust: it unpickles them without the "
                                            "weights-only restriction, so code they carry runs.")
    parser.add_argument("source", type=Path, help="the trusted checkpoint or weights file")
    parser.add_argument("target", type=Path, help="where to write the weights-only copy (must not exist)")
    args = parser.parse_args(argv)
    with exit_on_user_error():
        changes = convert(args.source, args.target)
    for change in changes:
        print(f"converted {change}")
    print(f"wrote {args.target}: loads weights-only" + ("" if changes else f" ({args.source} already did)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
