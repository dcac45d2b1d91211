"""A training data stream that a resumed run continues exactly: order and augmentations depend only on
(seed, epoch, position), and Lightning restores the position from the checkpoint.

`EpochSampler` yields ``(index, sample_seed)`` pairs; `SeededSamples` seeds the albumentations transforms
inside the wrapped dataset with ``sample_seed`` before reading the item, so an image gets the same crop and
flip whatever process, worker or restart reads it. `ResumableLoader` is a DataLoader with
``state_dict``/``load_state_dict``: Lightning stores its state in every checkpoint and, when it restarts
mid-epoch, loads it back, and the sampler then skips the batches the killed run had already trained on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Sampler, Subset


class EpochSampler(Sampler[tuple[int, int]]):
    """`num_samples` ``(index, sample_seed)`` pairs per epoch and rank from repeated seeded permutations of
    ``range(size)``; the stream depends only on (seed, epoch). Lightning calls `set_epoch`.

    Under DDP every rank draws the same global stream of ``num_samples · world_size`` pairs and keeps the positions
    ``rank, rank + world_size, …``: the ranks share out one epoch without overlap, and a sample gets the same
    augmentation seed whatever the number of ranks.
    """

    def __init__(self, size: int, num_samples: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        self.size, self.num_samples, self.seed, self.epoch = size, num_samples, seed, 0
        self.rank, self.world_size = rank, world_size
        self._resume: tuple[int, int] | None = None  # (epoch, samples of this rank to skip) for the next pass

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, epoch: int, skip: int) -> None:
        """The next pass over ``epoch`` starts after its first ``skip`` samples (a resumed mid-epoch run)."""
        self.epoch, self._resume = epoch, (epoch, skip)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        total = self.num_samples * self.world_size
        repeats = math.ceil(total / self.size)
        order = torch.cat([torch.randperm(self.size, generator=generator) for _ in range(repeats)])[:total]
        seeds = torch.randint(2**31 - 1, (total,), generator=generator)
        order, seeds = order[self.rank :: self.world_size], seeds[self.rank :: self.world_size]  # (num_samples,)
        start = 0
        if self._resume is not None and self._resume[0] == self.epoch:
            start = self._resume[1]
        self._resume = None
        return iter(zip(order[start:].tolist(), seeds[start:].tolist(), strict=True))

    def __len__(self) -> int:
        return self.num_samples

    def describe(self) -> dict[str, int]:
        return {"size": self.size, "num_samples": self.num_samples, "seed": self.seed, "world_size": self.world_size}


def _transforms_in(dataset: Dataset) -> list[Any]:
    """The seedable (albumentations) transforms of the datasets inside Subset / ConcatDataset wrappers."""
    if isinstance(dataset, Subset):
        return _transforms_in(dataset.dataset)
    if isinstance(dataset, ConcatDataset):
        return [t for part in dataset.datasets for t in _transforms_in(part)]
    transform = getattr(dataset, "transform", None)
    return [transform] if hasattr(transform, "set_random_seed") else []


class SeededSamples(Dataset):
    """``dataset[index]`` read with its augmentations seeded by ``sample_seed``; items are ``(index, sample_seed)``."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.transforms = _transforms_in(dataset)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int]) -> Any:
        index, sample_seed = item
        for transform in self.transforms:
            transform.set_random_seed(sample_seed)
        return self.dataset[index]


class ResumableLoader(DataLoader):
    """A DataLoader over an `EpochSampler` whose position Lightning saves and restores (it is ``_Stateful``).

    ``batches_done()`` is asked on restore: how many batches of the interrupted epoch the checkpoint holds.
    """

    def __init__(self, *args: Any, batches_done: Callable[[], int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.sampler, EpochSampler):
            raise TypeError(
                f"ResumableLoader needs an EpochSampler, got {type(self.sampler).__name__}. Under DDP set "
                "trainer.use_distributed_sampler=false (trainer=ddp and trainer=ddp_cpu do): the datamodule shards "
                "the data across ranks itself"
            )
        self.batches_done = batches_done

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batch_size": self.batch_size, **self.sampler.describe()}

    def load_state_dict(self, state: dict[str, int]) -> None:
        ours = {"batch_size": self.batch_size, **self.sampler.describe()}
        theirs = {key: state.get(key) for key in ours}
        if theirs != ours:
            raise ValueError(
                f"the checkpoint's training data stream {theirs} differs from this run's {ours}: resume with the "
                "same data.* settings and seed as the interrupted run (or start a new run without ckpt_path)"
            )
        self.sampler.resume_at(state["epoch"], self.batches_done() * self.batch_size)
