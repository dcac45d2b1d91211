"""The resumable training stream: order and augmentations from (seed, epoch, position), mid-epoch skips."""

from __future__ import annotations

import pytest
import torch

from cyclesem.data.gta5 import GTA5Dataset
from cyclesem.data.resumable import EpochSampler, ResumableLoader, SeededSamples
from cyclesem.data.synthetic.pair import ensure_synthetic_pair
from cyclesem.data.transforms import train_transform


def test_sampler_stream_depends_only_on_seed_and_epoch():
    sampler = EpochSampler(size=5, num_samples=12, seed=7)
    first = list(sampler)
    assert len(first) == 12 and list(sampler) == first  # same epoch, same stream
    assert sorted(i for i, _ in first[:5]) == list(range(5))  # each pass is a permutation, repeated to 12
    sampler.set_epoch(1)
    assert list(sampler) != first
    assert list(EpochSampler(size=5, num_samples=12, seed=8)) != first


def test_resume_at_skips_the_done_samples_of_that_epoch_once():
    sampler = EpochSampler(size=5, num_samples=12, seed=7)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.resume_at(2, 8)
    assert list(sampler) == full[8:]
    assert list(sampler) == full  # the next pass is whole again
    sampler.resume_at(2, 4)
    sampler.set_epoch(3)  # the resumed epoch was already over: nothing skipped in another epoch
    assert len(list(sampler)) == 12


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = ensure_synthetic_pair(tmp_path_factory.mktemp("res") / "synthetic", height=32, width=64, num_source=6,
                                 num_target_train=2, num_target_val=2, num_target_test=2, progress=False)
    return GTA5Dataset(root / "gta5", transform=train_transform(crop=(24, 24), hflip=True, scale=(0.8, 1.25)))


def test_seeded_samples_give_the_same_augmentation_for_the_same_seed(source):
    samples = SeededSamples(torch.utils.data.Subset(source, [3, 1]))
    assert samples.transforms == [source.transform]
    a, b = samples[(0, 123)], samples[(0, 123)]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"]) and a["name"] == b["name"]
    others = [samples[(0, seed)]["image"] for seed in range(1, 6)]
    assert any(not torch.equal(a["image"], other) for other in others)  # the seed drives crop / flip / scale


def test_loader_state_round_trip_and_mismatch_error(source):
    done = {"batches": 2}
    loader = ResumableLoader(SeededSamples(source), batch_size=2, drop_last=True,
                             sampler=EpochSampler(len(source), 8, seed=0), batches_done=lambda: done["batches"])
    loader.sampler.set_epoch(1)
    full = [batch["name"] for batch in loader]
    state = loader.state_dict()
    assert state == {"epoch": 1, "batch_size": 2, "size": 6, "num_samples": 8, "seed": 0, "world_size": 1}
    fresh = ResumableLoader(SeededSamples(source), batch_size=2, drop_last=True,
                            sampler=EpochSampler(len(source), 8, seed=0), batches_done=lambda: done["batches"])
    fresh.load_state_dict(state)
    assert [batch["name"] for batch in fresh] == full[2:]
    other = ResumableLoader(SeededSamples(source), batch_size=2, drop_last=True,
                            sampler=EpochSampler(len(source), 8, seed=1), batches_done=lambda: 0)
    with pytest.raises(ValueError, match=r"training data stream .*'seed': 0.* differs from this run's .*'seed': 1"):
        other.load_state_dict(state)
