"""DomainMixDataModule on the real synthetic pair: subset sizes, nesting, batch structure, errors."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from cyclesem.data.cityscapes import CityscapesDataset
from cyclesem.data.datamodule import DomainMixDataModule, split_labeled
from cyclesem.data.gta5 import GTA5Dataset
from cyclesem.data.image_io import DatasetError
from cyclesem.data.synthetic.pair import ensure_synthetic_pair

N = 10


@pytest.fixture(scope="module")
def pair_root(tmp_path_factory):
    return ensure_synthetic_pair(tmp_path_factory.mktemp("dm") / "synthetic", height=32, width=64, num_source=16,
                                 num_target_train=16, num_target_val=4, num_target_test=4, progress=False)


def make_datamodule(root, real_frac: float, **kwargs) -> DomainMixDataModule:
    dm = DomainMixDataModule(
        source=partial(GTA5Dataset, root=root / "gta5"),
        target_train=partial(CityscapesDataset, root=root / "cityscapes", split="train"),
        target_val=partial(CityscapesDataset, root=root / "cityscapes", split="val", keep_label_resolution=True),
        real_frac=real_frac, num_labeled=kwargs.pop("num_labeled", N), batch_size=4, **kwargs,
    )
    dm.setup("fit")
    return dm


@pytest.mark.parametrize("real_frac,sizes", [(0.0, (10, 0)), (0.1, (9, 1)), (0.5, (5, 5)), (1.0, (0, 10))])
def test_subset_sizes(pair_root, real_frac, sizes):
    assert split_labeled(N, real_frac) == sizes
    dm = make_datamodule(pair_root, real_frac)
    got = tuple(len(dm.labeled_sets[s].indices) if s in dm.labeled_sets else 0 for s in ("source", "target"))
    assert got == sizes


def test_subsets_are_nested_across_fractions(pair_root):
    fractions = [0.1, 0.3, 0.5, 0.8, 1.0]
    targets = [set(make_datamodule(pair_root, f).labeled_sets["target"].indices) for f in fractions]
    assert all(a <= b for a, b in zip(targets, targets[1:], strict=False))
    sources = [set(make_datamodule(pair_root, f).labeled_sets["source"].indices) for f in [0.8, 0.5, 0.0]]
    assert all(a <= b for a, b in zip(sources, sources[1:], strict=False))
    other_seed = set(make_datamodule(pair_root, 0.5, seed=1).labeled_sets["target"].indices)
    assert other_seed != targets[2]


@pytest.mark.parametrize("real_frac,sides", [(0.0, {"source"}), (0.5, {"source", "target"}), (1.0, {"target"})])
def test_batches_hold_the_present_domains(pair_root, real_frac, sides):
    dm = make_datamodule(pair_root, real_frac)
    loader = dm.train_dataloader()
    batches = [b for b, *_ in iter(loader)] if isinstance(next(iter(loader)), tuple) else list(loader)
    assert len(batches) == dm.steps_per_epoch == 3  # ceil(N / batch) whatever the fraction
    batch = batches[0]
    assert set(batch) == sides
    for side in sides:
        assert batch[side]["image"].shape == (4, 3, 32, 64) and batch[side]["label"].shape == (4, 32, 64)
        labels = batch[side]["label"].unique()
        assert set(labels.tolist()) <= set(range(19)) | {255}


def test_unlabeled_target_adds_the_rest_with_ignore_labels(pair_root):
    dm = make_datamodule(pair_root, 0.0, unlabeled_target=True)
    target = dm.train_sets["target"]
    assert len(target) == 16 and "target" not in dm.labeled_sets
    assert torch.all(target[0]["label"] == 255)
    dm = make_datamodule(pair_root, 0.5, unlabeled_target=True)
    labeled = sum(int((dm.train_sets["target"][i]["label"] != 255).any()) for i in range(16))
    assert len(dm.train_sets["target"]) == 16 and labeled == 5


def test_too_many_labeled_images_is_a_clear_error(pair_root):
    with pytest.raises(DatasetError, match="needs 20 labelled target images .* has only 16"):
        make_datamodule(pair_root, 1.0, num_labeled=20)


def test_unset_root_names_the_key():
    dm = DomainMixDataModule(source=partial(GTA5Dataset, root=None), target_train=partial(CityscapesDataset, root=None),
                             target_val=partial(CityscapesDataset, root=None), real_frac=0.0, num_labeled=4,
                             batch_size=2)
    with pytest.raises(DatasetError, match="data.source.root is not set.*data=synthetic"):
        dm.setup("fit")


def test_class_counts_cover_the_labelled_images(pair_root):
    dm = make_datamodule(pair_root, 0.5)
    counts = dm.labeled_class_counts()
    assert counts.shape == (19,) and counts.sum() > 0.9 * N * 32 * 64


@pytest.fixture(scope="module")
def pavement_root(tmp_path_factory):
    return ensure_synthetic_pair(tmp_path_factory.mktemp("dm") / "synthetic_pavement0.4", height=32, width=64,
                                 num_source=24, num_target_train=4, num_target_val=2, num_target_test=1,
                                 pavement_share=0.4, progress=False)


def test_source_filter_pavement_drops_the_scenes_shot_from_the_pavement(pavement_root):
    """The synthetic pair's pavement scenes are in the full source set and not in the filtered one."""
    import json

    on_pavement = set(json.loads((pavement_root / "manifest.json").read_text())["pavement_scenes"])
    assert on_pavement
    full = make_datamodule(pavement_root, 0.0, num_labeled=24)
    assert on_pavement <= {full.labeled_sets["source"].dataset.names[i] for i in full.labeled_sets["source"].indices}
    filtered = make_datamodule(pavement_root, 0.0, num_labeled=8, source_filter="pavement")
    source = filtered.labeled_sets["source"].dataset
    assert not on_pavement & set(source.names)
    assert len(source) <= 24 - len(on_pavement)
    assert (pavement_root / "gta5" / "split_no_pavement.txt").is_file()
    with pytest.raises(DatasetError, match="needs 24 labelled source images.* without its scenes shot from the pave"):
        make_datamodule(pavement_root, 0.0, num_labeled=24, source_filter="pavement")


def test_source_filter_must_be_known(pair_root):
    with pytest.raises(ValueError, match="data.source_filter='roads': expected 'none' or 'pavement'"):
        make_datamodule(pair_root, 0.5, source_filter="roads")
