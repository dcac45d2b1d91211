"""Copies of F_T that the generators' semantic terms may go through instead of F_T itself.

- ``ema``: an exponential moving average of F_T, updated after every segmenter step, never stepped by
  the generators' loss — the generators cannot co-adapt with a classifier that moves this slowly.
- ``frozen``: a copy pre-trained on the run's labelled images and then frozen (CyCADA pre-trains on
  source only; ``pretrain_on=target`` judges translations by real target semantics instead). The
  pre-training is a Lightning stage of its own (`cyclesem.method.pretrain`), run by `cyclesem.train.build`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def frozen(*modules: nn.Module | None) -> Iterator[None]:
    """Parameters of `modules` get no gradient inside the block (inputs still do)."""
    params = [p for m in modules if m is not None for p in m.parameters()]
    previous = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, previous, strict=True):
            p.requires_grad_(flag)


def classifier_copy(segmenter: nn.Module) -> nn.Module:
    """A gradient-free copy of F_T in eval mode (BatchNorm uses running statistics)."""
    clone = copy.deepcopy(segmenter)
    clone.requires_grad_(False)
    return clone.eval()


@torch.no_grad()
def ema_update(average: nn.Module, model: nn.Module, decay: float) -> None:
    """average ← decay·average + (1 − decay)·model for parameters; buffers (BN statistics) are copied."""
    for avg_p, p in zip(average.parameters(), model.parameters(), strict=True):
        avg_p.lerp_(p.detach(), 1.0 - decay)
    for avg_b, b in zip(average.buffers(), model.buffers(), strict=True):
        avg_b.copy_(b)
