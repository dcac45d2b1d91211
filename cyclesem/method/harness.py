"""Stepping `CycleSemModule` without a Trainer: the unit tests and the benchmark drive its three optimizer
steps directly, on random batches."""

from __future__ import annotations

import torch

from cyclesem.data.labels import NUM_CLASSES
from cyclesem.method.module import CycleSemModule


def without_trainer(module: CycleSemModule) -> CycleSemModule:
    """Make `module.training_step` runnable with no Trainer attached: plain ``backward``, no logging, and the
    optimizers of ``configure_optimizers`` (the learning-rate schedulers are not stepped). Returns `module`."""
    module.manual_backward = lambda loss: loss.backward()  # Lightning routes it through the Trainer's strategy
    module.log_dict = lambda *args, **kwargs: None  # without a Trainer Lightning would warn on every call
    optimizers = module.configure_optimizers()[0]  # [opt_g, opt_d, opt_seg], or [opt_seg] for the baseline
    module.optimizers = lambda: optimizers if len(optimizers) > 1 else optimizers[0]
    return module


def random_batch(batch_size: int, height: int, width: int, *, seed: int = 0, sides: tuple[str, ...] = ("source", "target"),
                 device: str | torch.device = "cpu", channels_last: bool = False) -> dict:
    """``{side: {"image": (B, 3, H, W) in [-1, 1], "label": (B, H, W) trainIds}}`` for each of `sides`."""
    g = torch.Generator().manual_seed(seed)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    batch = {}
    for side in sides:
        image = torch.rand(batch_size, 3, height, width, generator=g) * 2 - 1
        label = torch.randint(0, NUM_CLASSES, (batch_size, height, width), generator=g)
        batch[side] = {"image": image.to(device, memory_format=memory_format), "label": label.to(device)}
    return batch
