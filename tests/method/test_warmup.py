"""The warm-up CycleGAN: trained alone without labels on the smoke pair, its curve, its cache (reuse, a changed key,
damaged files), early stopping, and the command that builds it."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from cyclesem.data import segmentation_dataset
from cyclesem.data.visualize import to_uint8_image
from cyclesem.method import warmup as warmup_module
from cyclesem.method import warmup_training
from cyclesem.method.cache_files import machine_record
from cyclesem.method.reference_segmenter import translation_reference
from cyclesem.method.warmup import (
    CURVE_COLUMNS,
    CURVE_FILE,
    NETWORKS,
    PARTIAL_FILE,
    RECORD_FILE,
    SAMPLE_IMAGES,
    STRIPS_DIR,
    TRANSLATIONS_FILE,
    WEIGHTS_FILE,
    WarmupCacheError,
    cyclegan_config,
    ensure_warmup,
    read_warmup,
    warmup_inputs,
    warmup_key,
)
from cyclesem.runtime.config import ConfigError, ModelConfig, ReferenceConfig, WarmupConfig, plain_spec
from cyclesem.warmup import build_warmup
from tests.conftest import compose_config

CPU = torch.device("cpu")


def specs(data_dir: Path, cache_dir: Path, *overrides: str) -> tuple[dict, dict, dict]:
    """The smoke preset's (warmup.*, CycleGAN config, reference.*) as `python -m cyclesem.warmup` composes them."""
    cfg = compose_config("warmup", ["+experiment=smoke", f"paths.data_dir={data_dir}", f"warmup.cache_dir={cache_dir}",
                                    *overrides])
    model = plain_spec(OmegaConf.masked_copy(cfg.model, [*warmup_module.CYCLEGAN_KEYS, "loss"]), ModelConfig)
    return (plain_spec(cfg.warmup, WarmupConfig), cyclegan_config(model), plain_spec(cfg.reference, ReferenceConfig))


@pytest.fixture(scope="module")
def smoke_pair(data_dir) -> Path:
    from hydra.utils import instantiate

    cfg = compose_config("warmup", ["+experiment=smoke", f"paths.data_dir={data_dir}"])
    return instantiate(cfg.data.prepare)()


def counting_trainer(monkeypatch) -> list[dict]:
    calls: list[dict] = []
    original = warmup_module.train_warmup

    def spy(spec, *args, **kwargs):
        calls.append(spec)
        return original(spec, *args, **kwargs)

    monkeypatch.setattr(warmup_module, "train_warmup", spy)
    return calls


@pytest.fixture(scope="module")
def built(tmp_path_factory, data_dir, smoke_pair):
    """One smoke warm-up (4 batches, scored every 2), trained while no label file can be read."""
    cache = tmp_path_factory.mktemp("warmup_cache")
    spec, cyclegan, reference = specs(data_dir, cache)
    # the reference (trained on labelled target images, once) and the paired set's source labels are the score's;
    # the warm-up's own training images must never open a label
    from hydra.utils import instantiate

    cfg = compose_config("warmup", ["+experiment=smoke", f"paths.data_dir={data_dir}"])
    translation_reference(reference, instantiate(cfg.data.paired)(), CPU, batch_size=4)
    with pytest.MonkeyPatch.context() as patch:
        def no_labels(path):
            raise AssertionError(f"the warm-up read the label {path}")

        patch.setattr(segmentation_dataset, "read_train_ids_checked", no_labels)
        entry = ensure_warmup(spec, cyclegan, reference, CPU, batch_size=4)
    return spec, cyclegan, reference, entry


def test_warmup_trains_without_labels_and_writes_weights_record_and_curve(built):
    spec, cyclegan, _, entry = built
    record = entry.record
    assert record["batches_trained"] == spec["batches"] == 4 and not record["stopped_early"]
    assert record["training"]["source_images"] == 12 and record["training"]["target_images"] == 12
    assert record["training"]["machine"] == machine_record()  # another CPU model builds other weights
    # before the first batch, every eval_every = 2 batches, and after the last
    assert [p["batch"] for p in record["curve"]] == [0, 2, 4]
    floor, ceiling = record["reference"]["floor"], record["reference"]["ceiling"]
    for point in record["curve"]:
        assert 0.0 <= point["translation_score"] <= 1.0 and point["translation_l1"] > 0
        assert point["translation_gain"] == pytest.approx((point["translation_score"] - floor) / (ceiling - floor))
    assert all(p["g_cycle"] > 0 and p["d_target"] > 0 for p in record["curve"][1:])  # loss means since the last point
    assert record["curve"][0]["g_cycle"] is None  # nothing trained before batch 0
    with open(entry.directory / CURVE_FILE, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(CURVE_COLUMNS) and [int(r["batch"]) for r in rows] == [0, 2, 4]
    assert float(rows[-1]["translation_score"]) == record["curve"][-1]["translation_score"]
    state = torch.load(entry.directory / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    assert {k.split(".", 1)[0] for k in state} == set(NETWORKS)
    assert json.loads((entry.directory / RECORD_FILE).read_text())["key"] == entry.key == entry.directory.name
    assert entry.summary() == {"key": entry.key, "batches": 4, "budget": 4, "stopped_early": False,
                               **{k: record["curve"][-1][k] for k in ("translation_score", "translation_gain",
                                                                      "translation_l1")},
                               "reference": record["reference"]}
    assert cyclegan["loss"] == {"gan": 1.0, "cycle": 10.0, "identity": 0.5}


def rows_of(figure_path: Path, height: int) -> list[np.ndarray]:
    """The image rows of translations.png (label column cut off), each (height, width, 3)."""
    figure = np.asarray(Image.open(figure_path).convert("RGB"))
    return [figure[y : y + height, 85:] for y in range(0, figure.shape[0], height + 1)]


def test_the_warmup_shows_its_translations_at_every_point_of_the_curve(built, data_dir):
    """translations.png: the paired set's source images, G_S→T of them at batches 0, 2 and 4, and the paired renders,
    one row each; the per-point strips it was rebuilt from are gone once the entry is complete."""
    from hydra.utils import instantiate

    spec, cyclegan, _, entry = built
    assert not (entry.directory / STRIPS_DIR).exists()
    paired = instantiate(compose_config("warmup", ["+experiment=smoke", f"paths.data_dir={data_dir}"]).data.paired)()
    first = paired[0]
    height, width = first["source_image"].shape[-2:]
    rows = rows_of(entry.directory / TRANSLATIONS_FILE, height)
    assert len(rows) == 2 + len(entry.record["curve"]) == 5
    assert all(row.shape == (height, SAMPLE_IMAGES * (width + 1) - 1, 3) for row in rows)
    source, *translated, perfect = rows
    assert np.array_equal(source[:, :width], to_uint8_image(first["source_image"]))
    assert np.array_equal(perfect[:, :width], to_uint8_image(first["paired_image"]))
    # the last row is the cached generator's output; training moved it away from batch 0's
    state = torch.load(entry.directory / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    generator = instantiate(cyclegan["gen_s2t"])
    generator.load_state_dict({k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("gen_s2t.")})
    with torch.no_grad():
        last = to_uint8_image(generator.eval()(first["source_image"][None])[0])
    assert np.abs(translated[-1][:, :width].astype(int) - last.astype(int)).max() <= 1  # PNG of the same tensor
    assert not np.array_equal(translated[0], translated[-1])


def test_the_same_inputs_reuse_the_cache_without_training(built, monkeypatch):
    spec, cyclegan, reference, entry = built
    weights = entry.directory / WEIGHTS_FILE
    written = weights.stat().st_mtime_ns
    calls = counting_trainer(monkeypatch)
    again = ensure_warmup(spec, cyclegan, reference, CPU, batch_size=4)
    assert calls == [] and again.key == entry.key and weights.stat().st_mtime_ns == written
    assert again.record == entry.record
    assert ensure_warmup({**spec, "seed": 5}, cyclegan, reference, CPU, train=False) is None  # not cached, not trained


def test_a_changed_key_trains_a_new_warmup(built, data_dir, tmp_path, monkeypatch):
    spec, cyclegan, reference, entry = built
    calls = counting_trainer(monkeypatch)
    other = ensure_warmup({**spec, "batches": 2}, cyclegan, reference, CPU, batch_size=4)
    assert len(calls) == 1 and other.key != entry.key and other.directory.parent == entry.directory.parent
    assert other.record["batches_trained"] == 2 and (entry.directory / WEIGHTS_FILE).is_file()
    key = warmup_key(warmup_inputs(spec, cyclegan, reference))
    assert key == entry.key
    # where things are is not part of the key; what the warm-up is (seed, networks, losses, crop, reference) is
    assert warmup_key(warmup_inputs({**spec, "cache_dir": str(tmp_path), "num_workers": 3, "compile": True}, cyclegan,
                                    reference)) == key
    skip_spec, skip_cyclegan, _ = specs(data_dir, tmp_path, "+model.gen_s2t.input_skip=true")
    assert skip_cyclegan["gen_t2s"]["input_skip"] is True  # gen_t2s follows gen_s2t
    crop = {**spec, "source": {**spec["source"], "transform": {**spec["source"]["transform"], "crop": [16, 32]}}}
    changed = [({**spec, "seed": 1}, cyclegan, reference), (skip_spec, skip_cyclegan, reference), (crop, cyclegan, reference),
               (spec, {**cyclegan, "loss": {**cyclegan["loss"], "identity": 0.0}}, reference),
               (spec, cyclegan, {**reference, "batches": reference["batches"] + 1}), (spec, cyclegan, None)]
    assert len({key, *(warmup_key(warmup_inputs(*inputs)) for inputs in changed)}) == len(changed) + 1


def test_compile_compiles_the_four_networks_under_the_same_key_and_the_record_says_so(built, tmp_path, monkeypatch):
    """warmup.compile=true goes through the module's compile path (nn.Module.compile on each network; stubbed here:
    inductor's C++ build takes minutes on a CPU, tests/bench/test_bench.py runs it) and is not part of the key."""
    from hydra.utils import instantiate

    spec, cyclegan, reference, entry = built
    compiled: list[str] = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, *a, **k: compiled.append(type(self).__name__))
    fast = ensure_warmup({**spec, "cache_dir": str(tmp_path), "compile": True}, cyclegan, reference, CPU, batch_size=4)
    assert fast.key == entry.key and fast.record["training"]["compile"] is True
    assert entry.record["training"]["compile"] is False
    generator, discriminator = (type(instantiate(cyclegan[name])).__name__ for name in ("gen_s2t", "disc_s"))
    assert sorted(c for c in compiled if c != "Identity") == sorted([generator, generator, discriminator, discriminator])


def test_a_damaged_cache_is_a_clear_error_never_trained_over(built, tmp_path, monkeypatch):
    spec, cyclegan, reference, built_entry = built
    spec = {**spec, "cache_dir": str(tmp_path)}  # not part of the key: a copy of the entry is found there
    shutil.copytree(built_entry.directory, tmp_path / built_entry.key)
    calls = counting_trainer(monkeypatch)
    entry = ensure_warmup(spec, cyclegan, reference, CPU, batch_size=4)
    assert calls == [] and entry.directory == tmp_path / built_entry.key
    record_path = entry.directory / RECORD_FILE
    good = record_path.read_text()
    record_path.write_text(good[: len(good) // 2])
    with pytest.raises(WarmupCacheError, match=f"cached warm-up {record_path} is unreadable.*delete"):
        ensure_warmup(spec, cyclegan, reference, CPU)
    record_path.write_text(json.dumps({**json.loads(good), "key_inputs": {"other": 1}}))
    with pytest.raises(WarmupCacheError, match=f"{record_path} was written for other inputs"):
        ensure_warmup(spec, cyclegan, reference, CPU)
    assert calls == []
    record_path.unlink()  # warmup.json is written last: without it the entry is an interrupted build
    assert ensure_warmup(spec, cyclegan, reference, CPU, batch_size=4).key == entry.key and len(calls) == 1
    with pytest.raises(WarmupCacheError, match="holds no warmup.json"):
        read_warmup(tmp_path / "nothing")


def test_an_interrupted_warmup_resumes_where_it_stopped_and_ends_as_one_that_never_stopped(built, tmp_path,
                                                                                           monkeypatch):
    """Killed after the evaluation at batch 2 of 4: the next build continues from partial.pt and ends with the
    uninterrupted build's weights, bit for bit, and its curve."""
    spec, cyclegan, reference, entry = built
    spec = {**spec, "cache_dir": str(tmp_path)}
    original = warmup_training.CycleGANWarmup.on_train_batch_end

    def killed_after_batch_2(self, *args):
        original(self, *args)
        if self.train_batches == 2:
            raise RuntimeError("killed")

    with monkeypatch.context() as patch:
        patch.setattr(warmup_training.CycleGANWarmup, "on_train_batch_end", killed_after_batch_2)
        with pytest.raises(RuntimeError, match="killed"):
            ensure_warmup(spec, cyclegan, reference, CPU, batch_size=4)
    directory = tmp_path / entry.key
    assert (directory / PARTIAL_FILE).is_file() and not (directory / RECORD_FILE).exists()
    assert torch.load(directory / PARTIAL_FILE, weights_only=True)["train_batches"] == 2
    assert sorted(p.name for p in (directory / STRIPS_DIR).iterdir()) == ["batch_0000000.png", "batch_0000002.png"]
    trained: list[int] = []
    original_step = warmup_training.CycleGANWarmup.training_step
    monkeypatch.setattr(warmup_training.CycleGANWarmup, "training_step",
                        lambda self, batch, i: (trained.append(i), original_step(self, batch, i))[1])
    resumed = ensure_warmup(spec, cyclegan, reference, CPU, batch_size=4)
    assert trained == [0, 1]  # batches 3 and 4 only
    assert resumed.record["batches_trained"] == 4 and resumed.record["training"]["resumed_at_batch"] == 2
    assert not (directory / PARTIAL_FILE).exists()
    strip = lambda curve: [{k: v for k, v in p.items() if k != "wall_time_s"} for p in curve]  # noqa: E731
    assert strip(resumed.record["curve"]) == strip(entry.record["curve"])
    ours = torch.load(directory / WEIGHTS_FILE, weights_only=True)
    theirs = torch.load(entry.directory / WEIGHTS_FILE, weights_only=True)
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    # the figure kept the killed build's rows (batches 0 and 2) and added the resumed one's
    assert np.array_equal(np.asarray(Image.open(directory / TRANSLATIONS_FILE)),
                          np.asarray(Image.open(entry.directory / TRANSLATIONS_FILE)))


def test_an_unusable_interrupted_state_is_a_clear_error(built, tmp_path):
    spec, cyclegan, reference, entry = built
    spec = {**spec, "cache_dir": str(tmp_path)}
    partial = tmp_path / entry.key / PARTIAL_FILE
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"not a torch file")
    with pytest.raises(WarmupCacheError, match=f"interrupted warm-up state {partial} cannot be read.*delete it"):
        ensure_warmup(spec, cyclegan, reference, CPU, batch_size=4)
    torch.save({"key": "0123456789abcdef", "train_batches": 2}, partial)
    with pytest.raises(WarmupCacheError, match=f"{partial} was not written for the warm-up {entry.key}"):
        ensure_warmup(spec, cyclegan, reference, CPU, batch_size=4)
    assert not (tmp_path / entry.key / RECORD_FILE).exists()


def test_patience_stops_when_the_score_stops_rising(built, tmp_path):
    """With learning rate 0 nothing changes, so the first evaluation after batch 0 is no better: one batch."""
    spec, cyclegan, reference, _ = built
    frozen = {**cyclegan, **{k: {**cyclegan[k], "lr": 0.0} for k in ("optimizer_g", "optimizer_d")}}
    spec = {**spec, "cache_dir": str(tmp_path), "batches": 6, "eval_every": 1, "patience": 1}
    entry = ensure_warmup(spec, frozen, reference, CPU, batch_size=4)
    assert entry.record["stopped_early"] and entry.record["batches_trained"] == 1
    scores = [p["translation_score"] for p in entry.record["curve"]]
    assert [p["batch"] for p in entry.record["curve"]] == [0, 1] and scores[0] == scores[1]
    with pytest.raises(ValueError, match="warmup.patience=1 stops on the translation score, which needs a reference"):
        ensure_warmup({**spec, "seed": 3}, frozen, None, CPU)


def test_the_command_builds_what_it_prints(data_dir, smoke_pair, tmp_path, capsys):
    bad = compose_config("warmup", ["+experiment=smoke", f"paths.data_dir={data_dir}", "warmup.batches=0"])
    with pytest.raises(ConfigError, match="warmup.batches=0 is out of range: expected an integer >= 1"):
        build_warmup(bad)
    cfg = compose_config("warmup", ["+experiment=smoke", f"paths.data_dir={data_dir}",
                                    f"warmup.cache_dir={tmp_path}", "warmup.batches=2", "device=cpu"])
    record = build_warmup(cfg)
    out = capsys.readouterr().out
    assert record["batches_trained"] == 2 and f"warm-up {record['key']}: {tmp_path / record['key'] / RECORD_FILE}" in out
    assert "2 of 2 batches" in out and "12 source and 12 target images (no labels)" in out
    assert f"curve: {tmp_path / record['key'] / CURVE_FILE}" in out


def test_a_study_job_finds_the_warmup_the_command_builds_for_its_seed(data_dir, smoke_pair, tmp_path):
    """`python -m cyclesem.warmup seed=k` (with the pair's overrides) builds the warm-up a warm-started study job of
    seed k loads: the study presets (threads, class weights, budget, reference.train_if_missing, …) touch nothing
    the warm-up key hashes."""
    from cyclesem.train import to_plain

    def key_of(train_overrides: list[str]) -> str:
        cfg = compose_config("train", ["+experiment=[gap_study,smoke]", f"paths.data_dir={data_dir}",
                                       f"warmup.cache_dir={tmp_path}", *train_overrides])
        return warmup_key(warmup_inputs(to_plain(cfg.warmup), cyclegan_config(to_plain(cfg.model)),
                                        to_plain(cfg.reference)))

    command = specs(data_dir, tmp_path, "seed=1")
    assert key_of(["method=cyclesem_warm", "data.real_frac=0.1", "seed=1"]) == warmup_key(warmup_inputs(*command))
    assert key_of(["method=cyclegan_warm", "data.real_frac=0.1", "seed=1"]) == warmup_key(warmup_inputs(*command))
    assert key_of(["method=cyclesem_warm", "data.real_frac=0.1", "seed=2"]) != warmup_key(warmup_inputs(*command))
