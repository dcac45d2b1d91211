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
    """Inside the block, parameters of `modules` get no gradient (inputs still do) and their BatchNorm
    layers keep their running statistics: a forward that only passes gradients through a network (F_T in the
    generators' semantic terms) must not move the statistics it is evaluated with. BatchNorm still normalises
    with the batch's own statistics in train mode, so the gradients are those of a training forward."""
    params = [p for m in modules if m is not None for p in m.parameters()]
    norms = [n for m in modules if m is not None for n in m.modules() if isinstance(n, nn.modules.batchnorm._BatchNorm)]
    previous = [p.requires_grad for p in params]
    tracking = [n.track_running_stats for n in norms]
    for p in params:
        p.requires_grad_(False)
    for n in norms:
        n.track_running_stats = False  # train mode: batch statistics, running ones neither read nor written
    try:
        yield
    finally:
        for p, flag in zip(params, previous, strict=True):
            p.requires_grad_(flag)
        for n, flag in zip(norms, tracking, strict=True):
            n.track_running_stats = flag


def check_pretrained(ready: bool, ckpt_path: str | None) -> None:
    """The ``frozen`` copy must hold pre-trained weights before the joint training starts: a run resumed from a
    checkpoint of another ``semantic_classifier`` (an ``ema`` copy loads into it without a complaint) would
    otherwise judge the translations with whatever weights that run left there."""
    if not ready:
        source = f"checkpoint {ckpt_path}" if ckpt_path else "this module"
        raise ValueError(f"model.semantic_classifier=frozen but the frozen classifier of {source} was never "
                         "pre-trained (its sem_net_ready is false: a checkpoint of a run with another "
                         "semantic_classifier?): resume with that run's semantic_classifier, or start without "
                         "ckpt_path so that cyclesem.train pre-trains it")


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
