"""Reading the self-describing checkpoints that `cyclesem.train` writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate

from cyclesem.module import CycleSemModule
from cyclesem.module_hooks import CHECKPOINT_KEY


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or not written by cyclesem.train."""


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # truncated zip, pickle garbage, …
        raise CheckpointError(f"cannot read checkpoint {path}: {type(err).__name__}: {err} "
                              "(truncated or not a PyTorch checkpoint?)") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"checkpoint {path} is not a Lightning checkpoint (no 'state_dict')")
    info = checkpoint.get(CHECKPOINT_KEY)
    if not isinstance(info, dict) or not info.get("model_config"):
        raise CheckpointError(f"checkpoint {path} was not written by cyclesem.train (no '{CHECKPOINT_KEY}' "
                              "entry with the model config), so its networks cannot be rebuilt")
    return checkpoint


def instantiate_module(model_config: Any) -> CycleSemModule:
    """Build the module from `model` config; for the baseline the CycleGAN networks are not even built."""
    skipped = {} if model_config.get("style_transfer", True) else dict.fromkeys(CycleSemModule.GAN_KEYS)
    return instantiate(model_config, _convert_="object", **skipped)


def build_module(checkpoint: dict[str, Any], path: str | Path = "<checkpoint>") -> CycleSemModule:
    """Rebuild the module from the config stored in the checkpoint and load its weights."""
    module = instantiate_module(checkpoint[CHECKPOINT_KEY]["model_config"])
    missing, unexpected = module.load_state_dict(checkpoint["state_dict"], strict=False)
    if missing or unexpected:
        raise CheckpointError(f"checkpoint {path} does not match its own model config: missing "
                              f"{missing[:5]}, unexpected {unexpected[:5]}")
    return module.eval()


def stored_data_config(checkpoint: dict[str, Any]) -> dict[str, Any] | None:
    return checkpoint[CHECKPOINT_KEY].get("data_config")
