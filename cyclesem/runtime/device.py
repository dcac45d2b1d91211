"""Choosing the device for the inference entry points (training leaves this to the Trainer)."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device=cuda but no CUDA device is available: use device=cpu or device=auto")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device={name!r} is not one of auto, cpu, cuda")
    return torch.device(name)
