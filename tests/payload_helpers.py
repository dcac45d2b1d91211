"""Crafted checkpoints whose unpickling runs a command, for tests/test_weights_only.py and tests/test_checkpoint.py."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from cyclesem.method.from_config import instantiate_module
from cyclesem.method.module import CHECKPOINT_KEY
from cyclesem.train import to_plain
from tests.conftest import compose_train


class Payload:
    """Unpickling this runs `touch <marker>` (what a crafted checkpoint would do with worse commands)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def write_payload(kind: str, directory: Path, data_dir: Path, marker: Path) -> Path:
    """``directory/<kind>.ckpt``: "top", the payload beside an empty state_dict; "nested", a cyclesem checkpoint
    (the smoke preset's weights and model config, so it would rebuild) with the payload deep in its model config."""
    path = directory / f"{kind}.ckpt"
    if kind == "top":
        torch.save({"state_dict": {}, "x": Payload(marker)}, path)
        return path
    cfg = compose_train([], directory / "compose", data_dir)
    model_config = to_plain(cfg.model)
    model_config["segmenter"]["note"] = Payload(marker)
    torch.save({"state_dict": instantiate_module(cfg.model).state_dict(),
                CHECKPOINT_KEY: {"model_config": model_config}}, path)
    return path
