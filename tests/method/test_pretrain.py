"""The frozen classifier's pre-training stage: a Lightning fit of the segmenter alone, then frozen."""

from __future__ import annotations

from functools import partial

import torch
from torch.utils.data import DataLoader, Dataset

from cyclesem.method.harness import random_batch
from cyclesem.method.pretrain import pretrain_classifier
from cyclesem.models.segmenter import UNet


class Images(Dataset):
    def __init__(self, count: int) -> None:
        batch = random_batch(count, 16, 16, seed=3, sides=("source",))["source"]
        self.images, self.labels = batch["image"], batch["label"]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        return {"image": self.images[index], "label": self.labels[index]}


def test_pretraining_fits_then_freezes(tmp_path):
    torch.manual_seed(0)
    classifier = UNet(base_channels=4, depth=2).requires_grad_(False)
    before = [p.detach().clone() for p in classifier.parameters()]
    loader = DataLoader(Images(4), batch_size=2)
    history = pretrain_classifier(classifier, loader, partial(torch.optim.Adam, lr=1e-2), epochs=3,
                                  accelerator="cpu", default_root_dir=tmp_path)
    assert len(history) == 3 and history[-1] < history[0]  # it learned the four images
    assert any(not torch.equal(b, p) for b, p in zip(before, classifier.parameters(), strict=True))
    assert not classifier.training and not any(p.requires_grad for p in classifier.parameters())


def test_max_batches_limits_each_epoch(tmp_path):
    classifier = UNet(base_channels=4, depth=2)
    history = pretrain_classifier(classifier, DataLoader(Images(4), batch_size=1), partial(torch.optim.SGD, lr=0.0),
                                  epochs=2, max_batches=1, accelerator="cpu", default_root_dir=tmp_path)
    assert len(history) == 2 and history[0] == history[1]  # lr 0, one batch each: the same first batch's loss
