"""The FCN-score: the reference segmenter's cache, its anchors, translation_score / translation_gain in the module,
and in a training run's record."""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from cyclesem.data.paired import PairedImages
from cyclesem.data.synthetic.pair import ensure_synthetic_pair
from cyclesem.data.transforms import eval_transform
from cyclesem.method import reference_segmenter as reference_module
from cyclesem.method.cache_files import machine_record
from cyclesem.method.module import CycleSemModule
from cyclesem.method.reference_segmenter import (
    RECORD_FILE,
    WEIGHTS_FILE,
    ReferenceCacheError,
    ensure_reference,
    key_inputs,
    reference_key,
    translation_reference,
)
from cyclesem.method.translation_score import (
    MIN_GAIN_SPAN,
    TranslationReference,
    gain_meaningful,
    translation_gain,
)
from cyclesem.models.segmenter import UNet
from cyclesem.models.weights_file import UnsafeCheckpointError
from cyclesem.runtime.config import ReferenceConfig
from cyclesem.study.run_record import portable_path
from tests.conftest import compose_config, compose_train, default_pair_params, default_pair_root
from tests.payload_helpers import write_payload

CPU = torch.device("cpu")
BATCH = 4  # the smoke preset's data.val_batch_size: anchors and evaluation batch alike


@pytest.fixture(scope="module")
def pair_root(data_dir) -> Path:
    """The smoke preset's 32×64 pair (the same parameters, so shared with the training tests)."""
    return ensure_synthetic_pair(default_pair_root(data_dir), height=32, width=64, num_source=12, num_target_train=12,
                                 num_target_val=4, num_target_test=4, palette_shift=default_pair_params()[1],
                                 progress=False)


def smoke_spec(data_dir: Path, cache_dir: Path, *overrides: str) -> dict:
    """The smoke preset's resolved reference.* (a tiny U-Net, 100 batches), cached in `cache_dir`."""
    cfg = compose_config("reference", ["+experiment=smoke", f"paths.data_dir={data_dir}",
                                       f"reference.cache_dir={cache_dir}", *overrides])
    resolved = OmegaConf.to_container(cfg.reference, resolve=True)
    return OmegaConf.to_container(OmegaConf.merge(OmegaConf.structured(ReferenceConfig), resolved), enum_to_str=True)


def paired_set(pair_root: Path, *, renders: bool = True) -> PairedImages:
    return PairedImages(pair_root / "gta5" / "images", pair_root / "gta5_as_cityscapes" / "images" if renders else None,
                        label_dir=pair_root / "gta5" / "labels", transform=eval_transform(), limit=4)


@pytest.fixture(scope="module")
def built(tmp_path_factory, data_dir, pair_root):
    """One trained smoke reference (its spec and cache entry) shared by the tests that only read it."""
    spec = smoke_spec(data_dir, tmp_path_factory.mktemp("reference_cache"))
    return spec, ensure_reference(spec, CPU)


def counting_trainer(monkeypatch) -> list[dict]:
    calls: list[dict] = []
    original = reference_module.train_reference

    def spy(spec, device):
        calls.append(spec)
        return original(spec, device)

    monkeypatch.setattr(reference_module, "train_reference", spy)
    return calls


# ----------------------------------------------------------------- the cache
def test_same_config_reuses_the_cached_reference(built, monkeypatch):
    spec, first = built
    assert "training" in first.record and first.record["training"]["batches"] == spec["batches"]
    assert first.record["training"]["machine"] == machine_record()  # another CPU model builds other anchors
    weights = first.directory / WEIGHTS_FILE
    written = weights.stat().st_mtime_ns
    calls = counting_trainer(monkeypatch)
    again = ensure_reference(spec, CPU)
    assert calls == [] and again.key == first.key and weights.stat().st_mtime_ns == written
    for a, b in zip(first.segmenter.state_dict().values(), again.segmenter.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert not any(p.requires_grad for p in again.segmenter.parameters()) and not again.segmenter.training


def test_a_changed_config_or_pair_version_is_another_key_and_retrains(built, tmp_path, monkeypatch, capsys, caplog):
    spec, first = built
    calls = counting_trainer(monkeypatch)
    changed = {**spec, "batches": spec["batches"] + 1}
    with caplog.at_level(logging.INFO):
        other = ensure_reference(changed, CPU)
    assert len(calls) == 1 and other.key != first.key and other.directory.parent == first.directory.parent
    # a build of minutes says what it trains, where, and shows its progress
    assert (f"training the reference segmenter {other.key} ({spec['batches'] + 1} batches of {spec['batch_size']}) "
            f"into {other.directory}") in caplog.text
    assert f"{spec['batches'] + 1}/{spec['batches'] + 1}" in capsys.readouterr().out
    assert (other.directory / WEIGHTS_FILE).is_file() and (first.directory / WEIGHTS_FILE).is_file()
    assert ensure_reference(changed, CPU).key == other.key and len(calls) == 1  # now cached as well
    # where things are is not part of the key; the pair's VERSION and render parameters are
    assert reference_key(key_inputs({**spec, "cache_dir": str(tmp_path)})) == first.key
    manifest = json.loads(Path(spec["pair_manifest"]).read_text())
    for field, value in (("version", manifest["version"] + 1), ("params", {**manifest["params"], "seed": 7})):
        bumped = tmp_path / f"{field}.json"
        bumped.write_text(json.dumps({**manifest, field: value}))
        assert reference_key(key_inputs({**spec, "pair_manifest": str(bumped)})) != first.key


def test_an_interrupted_build_is_rebuilt(data_dir, pair_root, tmp_path, monkeypatch):
    spec = smoke_spec(data_dir, tmp_path)
    entry = ensure_reference(spec, CPU)
    (entry.directory / RECORD_FILE).unlink()  # reference.json is written last: without it the entry is incomplete
    calls = counting_trainer(monkeypatch)
    assert ensure_reference(spec, CPU).key == entry.key and len(calls) == 1
    assert ensure_reference(spec, CPU, train=False) is not None  # cached: evaluation finds it without training
    assert ensure_reference({**spec, "seed": 1}, CPU, train=False) is None  # not cached: never trained there


def test_a_corrupt_or_mismatched_cache_file_is_a_clear_error(data_dir, pair_root, tmp_path):
    spec = smoke_spec(data_dir, tmp_path)
    entry = ensure_reference(spec, CPU)
    record_path, weights_path = entry.directory / RECORD_FILE, entry.directory / WEIGHTS_FILE
    good_record, good_weights = record_path.read_text(), weights_path.read_bytes()

    record_path.write_text(good_record[: len(good_record) // 2])
    with pytest.raises(ReferenceCacheError, match=f"cached reference {record_path} is unreadable.*delete"):
        ensure_reference(spec, CPU)
    record_path.write_text(json.dumps({**json.loads(good_record), "key_inputs": {"other": 1}}))
    with pytest.raises(ReferenceCacheError, match=f"{record_path} was written for other inputs"):
        ensure_reference(spec, CPU)
    record_path.write_text(good_record)
    weights_path.write_bytes(good_weights[:100])
    with pytest.raises(ReferenceCacheError, match=f"cached reference {weights_path} cannot be loaded"):
        ensure_reference(spec, CPU)
    torch.save({"head.weight": torch.zeros(1)}, weights_path)
    with pytest.raises(ReferenceCacheError, match=f"{weights_path} cannot be loaded"):
        ensure_reference(spec, CPU)


def test_a_loaded_reference_is_read_weights_only_before_its_cache_entry_is_made(data_dir, pair_root, tmp_path):
    spec = smoke_spec(data_dir, tmp_path / "cache")
    trained_elsewhere = instantiate(spec["segmenter"])
    torch.save(trained_elsewhere.state_dict(), tmp_path / "segmenter.pt")
    loaded = {**spec, "checkpoint": str(tmp_path / "segmenter.pt"), "prefix": ""}
    entry = ensure_reference(loaded, CPU)
    assert "training" not in entry.record and entry.record["checkpoint"] == str(tmp_path / "segmenter.pt")
    for key, value in trained_elsewhere.state_dict().items():
        assert torch.equal(entry.segmenter.state_dict()[key], value), key
    assert ensure_reference(loaded, CPU, train=False).record == entry.record  # found in the cache

    marker = tmp_path / "payload_ran"
    crafted = write_payload("top", tmp_path, data_dir, marker)
    with pytest.raises(UnsafeCheckpointError, match=f"{crafted} holds objects other than weights"):
        ensure_reference({**loaded, "checkpoint": str(crafted)}, CPU)
    assert not marker.exists() and sorted(p.name for p in (tmp_path / "cache").iterdir()) == [entry.key, f"{entry.key}.lock"]


# ----------------------------------------------------------------- anchors and the score
def identity_module(reference: TranslationReference | None) -> CycleSemModule:
    """G_S→T = identity: the translation score is then the reference's mIoU on whatever is fed as the source."""
    return CycleSemModule(
        segmenter=UNet(num_classes=19, base_channels=4, depth=2), optimizer_seg=torch.optim.Adam,
        gen_s2t=nn.Identity(), gen_t2s=nn.Identity(), disc_s=nn.Conv2d(3, 1, 1), disc_t=nn.Conv2d(3, 1, 1),
        optimizer_g=torch.optim.Adam, optimizer_d=torch.optim.Adam, reference=reference,
    ).eval()


def score_as_translated(module: CycleSemModule, dataset: PairedImages, image_key: str) -> dict[str, float]:
    """The val-stage translation metrics with ``item[image_key]`` as the source image."""
    with torch.no_grad():
        for batch in torch.utils.data.DataLoader(dataset, batch_size=BATCH):
            module.validation_step({**batch, "source_image": batch[image_key]}, 0, dataloader_idx=1)
    with warnings.catch_warnings():  # self.log without a Trainer only warns
        warnings.simplefilter("ignore")
        values = module._log_eval("val", module.val_metrics, module.val_translation, module.val_translation_score)
    return {k.split("/", 1)[1]: v for k, v in values.items() if k.startswith("val/translation")}


@pytest.fixture(scope="module")
def swap_pair(data_dir, tmp_path_factory) -> tuple[dict, Path]:
    """The smoke reference's spec on the smoke pair at palette_shift=1 (the swap palette), and that pair's root: a
    reference that learned the target palette reads those raw source images far worse than their renders, so floor
    and ceiling are apart on every CPU and thread count. (On the default small-gap pair a 100-batch smoke reference
    cannot tell them apart: at one thread on an AMD EPYC it read floor 0.052, ceiling 0.049.)"""
    from hydra.utils import instantiate

    shift = "data.prepare.palette_shift=1.0"
    root = instantiate(compose_config("reference", ["+experiment=smoke", f"paths.data_dir={data_dir}", shift])
                       .data.prepare)()
    return smoke_spec(data_dir, tmp_path_factory.mktemp("swap_reference"), shift), Path(root)


def test_identity_translation_of_renders_scores_the_ceiling_and_of_raw_source_the_floor(swap_pair):
    spec, root = swap_pair
    dataset = paired_set(root)
    reference = translation_reference(spec, dataset, CPU, batch_size=BATCH)
    assert reference.ceiling > reference.floor  # the swapped palette: raw source reads worse than the renders
    module = identity_module(reference)
    module.val_metrics.update(torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 4, 4, dtype=torch.long))
    ceiling = score_as_translated(module, dataset, "paired_image")
    assert ceiling["translation_score"] == reference.ceiling and ceiling["translation_gain"] == 1.0
    assert ceiling["translation_l1"] == 0.0  # the renders against themselves
    module.val_metrics.update(torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 4, 4, dtype=torch.long))
    floor = score_as_translated(module, dataset, "source_image")
    assert floor["translation_score"] == reference.floor and floor["translation_gain"] == 0.0
    # the anchors were measured once: reference.json holds them, and a second call reads them back
    stored = json.loads((Path(spec["cache_dir"]) / reference.key / RECORD_FILE).read_text())["anchors"]
    assert [(a["floor"], a["ceiling"], a["images"]) for a in stored.values()] == [(reference.floor, reference.ceiling, 4)]
    again = translation_reference(spec, dataset, CPU, batch_size=BATCH)
    assert (again.floor, again.ceiling) == (reference.floor, reference.ceiling)


def test_without_paired_renders_there_is_a_floor_but_no_ceiling_or_gain(built, pair_root):
    spec, _ = built
    source_only = paired_set(pair_root, renders=False)
    assert "paired_image" not in source_only[0] and source_only[0]["label"].shape == (32, 64)
    reference = translation_reference(spec, source_only, CPU, batch_size=BATCH)
    assert reference.ceiling is None and not reference.has_gain
    module = identity_module(reference)
    module.val_metrics.update(torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 4, 4, dtype=torch.long))
    scores = score_as_translated(module, source_only, "source_image")
    assert scores == {"translation_score": reference.floor}  # no translation_l1 without renders either


def test_translation_gain():
    assert translation_gain(0.3, floor=0.1, ceiling=0.5) == pytest.approx(0.5)
    assert translation_gain(0.1, 0.1, 0.5) == 0.0 and translation_gain(0.5, 0.1, 0.5) == 1.0
    assert translation_gain(0.05, 0.1, 0.5) == pytest.approx(-0.125)  # worse than the raw source images
    with pytest.raises(ValueError, match="ceiling > floor"):
        translation_gain(0.3, floor=0.4, ceiling=0.4)
    reference = TranslationReference(nn.Conv2d(3, 19, 1), 0.4, 0.3)
    assert not reference.has_gain and not reference.gain_meaningful and not reference.segmenter.training
    # a gain over a span below MIN_GAIN_SPAN (0.10) is computed but flagged: one 0.01 of score noise is 0.2 of gain
    assert MIN_GAIN_SPAN == 0.10
    assert gain_meaningful(0.07, 0.57) and gain_meaningful(0.40, 0.50) and not gain_meaningful(0.45, 0.50)
    assert not gain_meaningful(0.1, None)
    small = TranslationReference(nn.Conv2d(3, 19, 1), 0.45, 0.50)
    assert small.has_gain and not small.gain_meaningful and small.gain(0.46) == pytest.approx(0.2)
    assert TranslationReference(nn.Conv2d(3, 19, 1), 0.07, 0.57).gain_meaningful
    with pytest.raises(ValueError, match="ceiling=1.5"):
        TranslationReference(nn.Conv2d(3, 19, 1), 0.1, 1.5)


# ----------------------------------------------------------------- a training run
def miou_by_hand(predictions: list[np.ndarray], labels: list[np.ndarray], num_classes: int = 19) -> float:
    """mIoU over the classes present in ground truth or prediction, from one numpy confusion matrix."""
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    for prediction, label in zip(predictions, labels, strict=True):
        valid = label != 255
        confusion += np.bincount(num_classes * label[valid] + prediction[valid],
                                 minlength=num_classes**2).reshape(num_classes, num_classes)
    true_pos = np.diag(confusion).astype(float)
    union = confusion.sum(0) + confusion.sum(1) - true_pos
    return float(np.mean(true_pos[union > 0] / union[union > 0]))


def test_training_run_records_translation_score_and_keeps_the_reference_out_of_checkpoints(tmp_path, data_dir):
    from cyclesem.runtime.checkpoint import build_module, load_checkpoint
    from cyclesem.train import build, train

    cfg = compose_train(["data.real_frac=0.5", "trainer.max_epochs=1"], tmp_path, data_dir)
    record = train(cfg)
    reference = record["translation_reference"]
    assert reference["ceiling"] > reference["floor"] and reference["key"]
    assert reference["min_gain_span"] == MIN_GAIN_SPAN
    assert reference["gain_meaningful"] == (reference["ceiling"] - reference["floor"] >= MIN_GAIN_SPAN)
    assert record["warm_start"] is None  # from scratch
    for split in ("val", "test"):
        score = record[split]["translation_score"]
        assert 0.0 <= score <= 1.0 and "translation_l1" in record[split]
        expected = (score - reference["floor"]) / (reference["ceiling"] - reference["floor"])
        assert record[split]["translation_gain"] == pytest.approx(expected)
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["translation_reference"] == reference
    assert {k: written["test"][k] for k in ("translation_score", "translation_gain", "translation_l1")} == \
        {k: record["test"][k] for k in ("translation_score", "translation_gain", "translation_l1")}
    checkpoint = torch.load(record["last_checkpoint"], map_location="cpu", weights_only=True)
    assert not any(k.startswith("reference") for k in checkpoint["state_dict"])
    assert checkpoint["cyclesem"]["reference_config"]["cache_dir"].endswith("reference")

    # the reference stays frozen in eval mode through fit: no gradient, BatchNorm statistics unchanged
    datamodule, model, trainer = build(compose_train(["data.real_frac=0.5", "trainer.fast_dev_run=true"],
                                                     tmp_path / "again", data_dir))
    assert model.reference.key == reference["key"]  # read from the cache the first run filled
    before = {k: v.clone() for k, v in model.reference.segmenter.state_dict().items()}
    trainer.fit(model, datamodule=datamodule)
    assert "val/translation_score" in trainer.callback_metrics
    segmenter = model.reference.segmenter
    assert not segmenter.training and not any(p.requires_grad for p in segmenter.parameters())
    assert all(torch.equal(before[k], v.cpu()) for k, v in segmenter.state_dict().items())

    # the recorded test scores, recomputed by hand: the tested checkpoint's G_S→T on the paired source images,
    # the reference's argmax, an mIoU from a numpy confusion matrix; the floor is the same on the raw images
    generator = build_module(load_checkpoint(record["best_checkpoint"])).gen_s2t.eval()
    items = [datamodule.paired_set[i] for i in range(len(datamodule.paired_set))]
    labels = [item["label"].numpy().astype(np.int64) for item in items]
    with torch.no_grad():
        translated = [segmenter(generator(item["source_image"][None])).argmax(1)[0].numpy() for item in items]
        raw = [segmenter(item["source_image"][None]).argmax(1)[0].numpy() for item in items]
    assert len(items) == 4 and record["test_checkpoint"] == f"best val/mIoU (checkpoints/{Path(record['best_checkpoint']).name})"
    assert record["test"]["translation_score"] == pytest.approx(miou_by_hand(translated, labels), abs=1e-6)
    assert reference["floor"] == pytest.approx(miou_by_hand(raw, labels), abs=1e-6)


def test_no_reference_no_translation_score(tmp_path, data_dir):
    from cyclesem.train import build

    _, model, _ = build(compose_train(["reference=none", "trainer.fast_dev_run=true"], tmp_path, data_dir))
    assert model.reference is None
    _, baseline, _ = build(compose_train(["model=baseline", "trainer.fast_dev_run=true"], tmp_path, data_dir))
    assert baseline.reference is None  # no generator, nothing to score


def test_a_run_never_trains_a_missing_reference_unless_asked(tmp_path, data_dir, capsys):
    from cyclesem.train import build

    # a reference config no other test has cached: another budget is another key
    overrides = ["trainer.fast_dev_run=true", "reference.batches=7", f"reference.cache_dir={tmp_path / 'cache'}"]
    _, model, _ = build(compose_train([*overrides, "reference.train_if_missing=false"], tmp_path / "a", data_dir))
    assert model.reference is None and not (tmp_path / "cache").exists()  # nothing trained, nothing written
    _, model, _ = build(compose_train([*overrides, "reference.train_if_missing=true"], tmp_path / "b", data_dir))
    assert model.reference is not None and model.reference.ceiling is not None
    _, model, _ = build(compose_train([*overrides, "reference.train_if_missing=false"], tmp_path / "c", data_dir))
    assert model.reference is not None  # cached now: every run scores against it


def test_the_v2_study_keeps_its_reference_cache_key(tmp_path):
    """The reference key of `+experiment=real_frac_study` (the first pair's manifest params, as `pair_params` gives
    them for the preset's data.prepare) is the one every committed v2 cyclesem/cyclegan record names."""
    from cyclesem.data.synthetic.pair import VERSION, pair_params
    from tests.conftest import REPO

    cfg = compose_config("train", ["+experiment=real_frac_study", f"paths.data_dir={tmp_path}"], tmp_path)
    prepare = OmegaConf.to_container(cfg.data.prepare, resolve=True)
    params = pair_params(**{k: v for k, v in prepare.items() if k not in ("_target_", "_partial_", "root", "progress")})
    manifest = Path(cfg.reference.pair_manifest)
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"version": VERSION, "params": params}))
    spec = OmegaConf.to_container(OmegaConf.merge(OmegaConf.structured(ReferenceConfig),
                                                  OmegaConf.to_container(cfg.reference, resolve=True)),
                                  enum_to_str=True)
    committed = {(json.loads(p.read_text()).get("translation_reference") or {}).get("key")
                 for p in (REPO / "experiments/real_frac_study/runs").glob("*.json")} - {None}
    assert committed == {reference_key(key_inputs(spec))} == {"d7feaf706d01921c"}


def test_gta5_reference_is_one_command_on_cityscapes_train_and_a_study_job_scores_against_it(
        tmp_path, gta5_root, cityscapes_root, monkeypatch):
    """``python -m cyclesem.reference data=gta5_cityscapes`` on the real-layout fixtures trains the study's U-Net
    (tiny here) on every Cityscapes train image; its key names those images, not their folder (a copy elsewhere
    finds the same entry; one more image is another key). A gta5_study job then scores its translations of the
    clean GTA5 frames against it without training it again: a floor, no ceiling, no gain."""
    from cyclesem.data.prepare import main as prepare_main
    from cyclesem.reference import build_reference
    from cyclesem.train import train
    from tests.conftest import real_layout_overrides
    from tests.data.conftest import write_cityscapes_pair

    tiny = ["reference.segmenter.base_channels=4", "reference.segmenter.depth=2", "reference.batches=3",
            "reference.batch_size=2", "reference.num_workers=0", "reference.train_set.transform.resize=[32,64]",
            "reference.train_set.transform.crop=[32,32]", f"paths.data_dir={tmp_path / 'data'}"]
    cfg = compose_config("reference", ["data=gta5_cityscapes", f"data.target_train.root={cityscapes_root}",
                                       "data.target_val.transform.resize=[32,64]", "device=cpu", *tiny])
    record = build_reference(cfg)
    assert record["training"]["train_images"] == 3 and record["training"]["val_images"] == 1
    assert record["key_inputs"]["train_images"]["count"] == 3 and "pair" not in record["key_inputs"]
    assert (tmp_path / "data" / "reference" / record["key"] / WEIGHTS_FILE).is_file()

    spec = OmegaConf.to_container(OmegaConf.merge(OmegaConf.structured(ReferenceConfig),
                                                  OmegaConf.to_container(cfg.reference, resolve=True)),
                                  enum_to_str=True)
    moved = Path(shutil.copytree(cityscapes_root, tmp_path / "elsewhere"))
    moved_spec = {**spec, "train_set": {**spec["train_set"], "root": str(moved)}}
    assert reference_key(key_inputs(moved_spec)) == record["key"]
    write_cityscapes_pair(moved, "train", "zurich", "000002_000019", seed=5)
    assert reference_key(key_inputs(moved_spec)) != record["key"]

    calls = counting_trainer(monkeypatch)
    assert prepare_main(["gta5", str(gta5_root), "--workers", "1"]) == 0  # the study reads the clean split
    job = compose_config("train", ["+experiment=gta5_study", *real_layout_overrides(gta5_root, cityscapes_root), *tiny,
                                   "method=cyclesem", "data.real_frac=0.34", "seed=0", "trainer.max_epochs=1",
                                   "trainer.accelerator=cpu", "trainer.precision=32-true", "logger=none"],
                         tmp_path / "job")
    result = train(job)
    assert calls == []  # found in the cache, not trained again
    used = result["translation_reference"]
    anchors = json.loads((tmp_path / "data" / "reference" / record["key"] / RECORD_FILE).read_text())["anchors"]
    (anchor,) = anchors.values()  # measured by the job on its 3 clean GTA5 frames, kept beside the weights
    assert anchor["images"] == 3 and "ceiling" not in anchor
    assert used["key"] == record["key"] and used["ceiling"] is None and used["floor"] == anchor["floor"]
    assert 0.0 <= result["test"]["translation_score"] <= 1.0 and "translation_gain" not in result["test"]
    assert result["selection_split"] is None and result["test_split"] == portable_path(f"{cityscapes_root}/val")
