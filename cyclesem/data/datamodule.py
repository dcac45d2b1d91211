"""`DomainMixDataModule`: a labelled set of fixed size N mixing real (target) and source images.

round(real_frac·N) labelled target images, the rest labelled source (none with ``source_images="none"``, the
target-only control: the same real images alone). ``source_filter="pavement"`` drops the source scenes shot from
the pavement first (the split file of `cyclesem.data.prepare`, written once beside the images). Each pool is shuffled once with
`seed`, and a fraction takes the first k of that permutation, so subsets are nested across fractions
(the 10 % target subset is inside the 20 % one). Every training batch is
``{"source": {"image", "label"}, "target": {"image", "label"}}`` with either side absent when it has
no images (real_frac 0 or 1, unless ``unlabeled_target`` adds the rest of the target train split with
all-255 labels). An epoch is ceil(N / batch_size) batches whatever the fraction (under DDP the ranks share
them out: ceil(N / (batch_size · ranks)) each, see `EpochSampler`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import lightning as L
import numpy as np
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset

from cyclesem.data.image_io import DatasetError
from cyclesem.data.labels import NUM_CLASSES
from cyclesem.data.prepare import ensure_pavement_free_split
from cyclesem.data.resumable import EpochSampler, ResumableLoader, SeededSamples

DatasetFactory = Callable[..., Dataset]


def split_labeled(num_labeled: int, real_frac: float) -> tuple[int, int]:
    """(number of source images, number of target images) in a labelled set of size N."""
    num_target = int(round(real_frac * num_labeled))
    return num_labeled - num_target, num_target


def nested_indices(pool_size: int, count: int, seed: int, *, salt: int) -> np.ndarray:
    """The first `count` items of one seeded permutation of the pool: nested across counts."""
    rng = np.random.default_rng([seed, salt])
    return rng.permutation(pool_size)[:count]


def _root_of(factory: DatasetFactory) -> Any:
    return getattr(factory, "keywords", {}).get("root", "<set>")


class DomainMixDataModule(L.LightningDataModule):
    def __init__(
        self,
        *,
        source: DatasetFactory,
        target_train: DatasetFactory,
        target_val: DatasetFactory,
        real_frac: float,
        target_test: DatasetFactory | None = None,
        num_labeled: int,
        batch_size: int,
        val_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        unlabeled_target: bool = False,
        source_images: str = "raw",
        source_filter: str = "none",
        seed: int = 0,
        paired: DatasetFactory | None = None,
        prepare: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= real_frac <= 1.0:
            raise ValueError(f"real_frac={real_frac} is out of range: expected a float in [0, 1]")
        self.source_factory, self.target_factory, self.val_factory = source, target_train, target_val
        self.test_factory = target_test
        self.paired_factory, self.prepare = paired, prepare
        self.real_frac, self.num_labeled, self.seed = real_frac, num_labeled, seed
        self.batch_size, self.val_batch_size = batch_size, val_batch_size or batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.unlabeled_target = unlabeled_target
        self.num_source, self.num_target = split_labeled(num_labeled, real_frac)
        self.source_images = str(getattr(source_images, "value", source_images))
        if self.source_images == "none":  # target_only: the same real images, and no source image at all
            self.num_source = 0
        elif self.source_images != "raw":
            raise ValueError(f"source_images={source_images!r}: expected 'raw' or 'none'")
        self.source_filter = str(getattr(source_filter, "value", source_filter))
        if self.source_filter not in ("none", "pavement"):
            raise ValueError(f"data.source_filter={source_filter!r}: expected 'none' or 'pavement'")
        self.train_sets: dict[str, Dataset] = {}
        self.labeled_sets: dict[str, Subset] = {}

    def prepare_data(self) -> None:
        if self.prepare is not None:
            self.prepare()

    def _build(self, factory: DatasetFactory, key: str, **kwargs: Any) -> Dataset:
        if _root_of(factory) is None:
            raise DatasetError(
                f"data.{key}.root is not set: point it at the dataset (or set GTA5_ROOT / CITYSCAPES_ROOT), "
                "or use data=synthetic for the embedded synthetic pair"
            )
        return factory(**kwargs)

    def source_set(self) -> Dataset:
        """The source images, without the scenes shot from the pavement under ``source_filter="pavement"``."""
        root = _root_of(self.source_factory)
        if self.source_filter == "none" or root is None:  # (no root: _build says so)
            return self._build(self.source_factory, "source")
        return self._build(self.source_factory, "source", split_file=ensure_pavement_free_split(root))

    def _labeled_subset(self, dataset: Dataset, count: int, name: str, salt: int) -> Subset:
        if count > len(dataset):
            filtered = " without its scenes shot from the pavement (data.source_filter=pavement)" \
                if salt == 0 and self.source_filter == "pavement" else ""
            raise DatasetError(
                f"data.num_labeled={self.num_labeled} at data.real_frac={self.real_frac} needs {count} labelled "
                f"{name} images but {_root_of(self.source_factory if salt == 0 else self.target_factory)} has "
                f"only {len(dataset)}{filtered}: lower data.num_labeled"
            )
        return Subset(dataset, nested_indices(len(dataset), count, self.seed, salt=salt).tolist())

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and not self.train_sets:
            if self.num_source > 0:
                source = self.source_set()
                self.labeled_sets["source"] = self._labeled_subset(source, self.num_source, "source", salt=0)
                self.train_sets["source"] = self.labeled_sets["source"]
            target_parts: list[Dataset] = []
            if self.num_target > 0 or self.unlabeled_target:
                target = self._build(self.target_factory, "target_train")
                labeled = self._labeled_subset(target, self.num_target, "target", salt=1)
                if self.num_target > 0:
                    self.labeled_sets["target"] = labeled
                    target_parts.append(labeled)
                if self.unlabeled_target:
                    rest = sorted(set(range(len(target))) - set(labeled.indices))
                    if rest:
                        unlabeled = self._build(self.target_factory, "target_train", labeled=False)
                        target_parts.append(Subset(unlabeled, rest))
            if target_parts:
                self.train_sets["target"] = ConcatDataset(target_parts) if len(target_parts) > 1 else target_parts[0]
        if not hasattr(self, "val_set"):
            self.val_set = self._build(self.val_factory, "target_val")
            self.paired_set = self.paired_factory() if self.paired_factory is not None else None
        if stage in (None, "test") and not hasattr(self, "test_set"):
            self.test_set = self._build(self.test_factory, "target_test") if self.test_factory is not None else None

    @property
    def ranks(self) -> tuple[int, int]:
        """(this process's global rank, number of processes) of the attached Trainer; (0, 1) without one."""
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    @property
    def steps_per_epoch(self) -> int:
        """Training steps per epoch: one pass over N labelled images, shared out across the DDP ranks."""
        return math.ceil(self.num_labeled / (self.batch_size * self.ranks[1]))

    def _loader_options(self) -> dict[str, Any]:
        return dict(num_workers=self.num_workers, pin_memory=self.pin_memory, persistent_workers=self.num_workers > 0)

    def _eval_loader(self, dataset: Dataset) -> DataLoader:
        rank, world_size = self.ranks
        # under DDP each rank evaluates its own share, none twice (DistributedSampler would pad with repeats)
        sampler = UnrepeatedDistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=False) \
            if world_size > 1 else None
        return DataLoader(dataset, batch_size=self.val_batch_size, sampler=sampler, shuffle=False,
                          **self._loader_options())

    def _batches_done(self) -> int:
        """Batches of the current epoch in the checkpoint being resumed (Lightning's restored loop progress).
        Lightning has no public API for the position inside the epoch a fit restarts at (the loader's own count
        would include batches prefetched but never trained on), so this reads the fit loop's progress counter."""
        return self.trainer.fit_loop.epoch_loop.batch_progress.current.processed if self.trainer is not None else 0

    def train_dataloader(self) -> CombinedLoader:
        rank, world_size = self.ranks
        num_samples = self.steps_per_epoch * self.batch_size  # per rank
        loaders = {
            side: ResumableLoader(SeededSamples(ds), batch_size=self.batch_size, drop_last=True,
                                  sampler=EpochSampler(len(ds), num_samples, self.seed + salt, rank, world_size),
                                  batches_done=self._batches_done, **self._loader_options())
            for salt, (side, ds) in enumerate(sorted(self.train_sets.items()))
        }
        return CombinedLoader(loaders, mode="min_size")

    def _eval_loaders(self, labelled: Dataset) -> list[DataLoader]:
        loaders = [self._eval_loader(labelled)]
        if self.paired_set is not None:
            loaders.append(self._eval_loader(self.paired_set))
        return loaders

    def val_dataloader(self) -> list[DataLoader]:
        """The target val split (checkpoint selection) and, where it exists, the paired set (translation error)."""
        return self._eval_loaders(self.val_set)

    def test_dataloader(self) -> list[DataLoader]:
        """The held-out target test split (``target_test``; the val split where none is given) and the paired
        set, for the checkpoint being tested."""
        return self._eval_loaders(self.test_set if self.test_set is not None else self.val_set)

    def split_name(self, stage: str) -> str:
        """Which images a stage scores, for the run's record: ``<root>/<split>``."""
        test_set = getattr(self, "test_set", None)
        dataset = test_set if stage == "test" and test_set is not None else self.val_set
        return f"{getattr(dataset, 'root', '?')}/{getattr(dataset, 'split', '?')}"

    def labeled_loader(self, sides: tuple[str, ...]) -> DataLoader:
        """The labelled images of `sides` ("source", "target") in one seeded stream of training batches: order
        and augmentations from (seed, epoch), as in training (the frozen classifier pre-trains on it)."""
        dataset = ConcatDataset([self.labeled_sets[side] for side in sides if side in self.labeled_sets])
        sampler = EpochSampler(len(dataset), len(dataset), self.seed)  # Lightning calls set_epoch
        return DataLoader(SeededSamples(dataset), batch_size=self.batch_size, sampler=sampler, drop_last=False)

    def labeled_class_counts(self) -> np.ndarray:
        """Pixel count per trainId over the labelled training images (both domains), (19,) int64."""
        counts = np.zeros(NUM_CLASSES, dtype=np.int64)
        for subset in self.labeled_sets.values():
            for index in subset.indices:
                train_ids = subset.dataset.read_train_ids(index)
                counts += np.bincount(train_ids[train_ids < NUM_CLASSES].ravel(), minlength=NUM_CLASSES)
        return counts
