"""The train entry point end to end on the tiny smoke preset."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cyclesem.data.labels import CLASS_NAMES
from cyclesem.data.synthetic.pair import pair_dir_name
from cyclesem.runtime.config import ConfigError
from cyclesem.study.run_record import portable_path
from cyclesem.train import build, train
from tests.conftest import (
    REPO,
    compose_config,
    compose_train,
    default_pair_params,
    default_pair_root,
    epoch_values_from_csv,
    real_layout_overrides,
)


def read_metrics(run_dir) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def assert_consistent_scores(scores: dict) -> None:
    """A split's scores agree with each other: mIoU is the mean of the per-class IoUs of the classes present,
    and fwIoU (Σ freq_c · IoU_c) is at most the pixel accuracy (Σ freq_c · recall_c), as IoU_c <= recall_c."""
    ious = [scores[f"iou_{name}"] for name in CLASS_NAMES]
    present = [v for v in ious if not math.isnan(v)]
    assert present and all(0.0 <= v <= 1.0 for v in present)
    assert scores["mIoU"] == pytest.approx(sum(present) / len(present), abs=1e-6)
    assert 0.0 <= scores["fwIoU"] <= scores["pixel_acc"] + 1e-6 and scores["pixel_acc"] <= 1.0


def capture_build(monkeypatch) -> dict:
    """Make train() hand over what it builds: the module, the Trainer, and the module's parameters as built."""
    seen: dict = {}

    def capturing_build(cfg):
        datamodule, model, trainer = build(cfg)
        seen.update(model=model, trainer=trainer,
                    initial={k: v.detach().clone() for k, v in model.named_parameters()})
        return datamodule, model, trainer

    monkeypatch.setattr("cyclesem.train.build", capturing_build)
    return seen


def moved(seen: dict, prefix: str) -> bool:
    """Whether any parameter under `prefix` left its built value."""
    params = dict(seen["model"].named_parameters())
    return any(not torch.equal(v, params[k]) for k, v in seen["initial"].items() if k.startswith(prefix))


@pytest.mark.parametrize("model,real_frac", [("cyclesem", 0.3), ("baseline", 0.0), ("baseline", 0.3),
                                             ("baseline", 1.0)])
def test_fast_dev_run(model, real_frac, tmp_path, data_dir):
    cfg = compose_train([f"model={model}", f"data.real_frac={real_frac}", "trainer.fast_dev_run=true"],
                        tmp_path, data_dir)
    record = train(cfg)
    written = read_metrics(tmp_path)
    assert written["status"] == "completed" and written["test"]["mIoU"] == record["test"]["mIoU"]
    assert record["status"] == "completed" and record["method"] == model and record["real_frac"] == real_frac
    for split in ("val", "test"):
        assert_consistent_scores(record[split])
    for split in ("val", "test"):  # paired synthetic scenes, generators only
        for key in ("translation_l1", "translation_score"):
            assert (key in record[split]) == (model == "cyclesem"), key


@pytest.mark.parametrize("overrides,expected", [
    # no target image: the CycleGAN would have no target domain
    (["data.real_frac=0.0"], r"method=cyclesem trains no CycleGAN here: data.real_frac=0.0 of data.num_labeled=8 "
                             r"gives 8 labelled source and 0 labelled target images .*method=baseline .*"
                             r"data.unlabeled_target=true \(method=cyclesem_unlabeled"),
    (["method=cyclegan", "data.real_frac=0.05"], r"method=cyclegan trains no CycleGAN here: .* 0 labelled target "
                                                 r"images .*method=baseline"),  # round(0.05 · 8) = 0
    # no source image: nothing to translate
    (["data.real_frac=1.0"], r"method=cyclesem trains no CycleGAN here: .* 0 labelled source and 8 labelled target "
                             r"images, so there is nothing to translate. Expected method=target_only"),
    (["method=cyclesem_unlabeled", "data.real_frac=1.0"], r"0 labelled source .*method=target_only"),
], ids=["cyclesem-0.0", "cyclegan-rounds-to-0", "cyclesem-1.0", "cyclesem_unlabeled-1.0"])
def test_a_cyclegan_method_without_both_domains_is_refused_naming_the_method_to_use(overrides, expected, tmp_path,
                                                                                   data_dir):
    """At 0 % real (no unlabelled target images) or 100 % real a CycleGAN method would train its segmenter alone,
    with untrained generators, and record itself as cyclesem: refused before anything is built or written."""
    cfg = compose_train([*overrides, "trainer.fast_dev_run=true"], tmp_path, data_dir)
    with pytest.raises(ConfigError, match=expected):
        train(cfg)
    assert not (tmp_path / "metrics.json").exists()


def test_unlabeled_target_trains_the_cyclegan_at_zero_real(tmp_path, data_dir, monkeypatch):
    """0 % real + unlabelled target images: the generators train (their weights move, the cycle loss falls from
    the first epoch to the second) and the record carries their translation error."""
    seen = capture_build(monkeypatch)
    cfg = compose_train(["data.real_frac=0.0", "data.unlabeled_target=true", "trainer.max_epochs=2", "run_test=false"],
                        tmp_path, data_dir, logger="csv")
    record = train(cfg)
    assert record["status"] == "completed" and record["unlabeled_target"] is True and record["method"] == "cyclesem_unlabeled"
    assert moved(seen, "gen_s2t.") and moved(seen, "gen_t2s.") and moved(seen, "disc_t.")
    cycle = epoch_values_from_csv(tmp_path, "train/g_cycle_epoch")
    assert sorted(cycle) == [0, 1] and cycle[1] < cycle[0]
    assert record["val"]["translation_l1"] > 0 and "translation_score" in record["val"]


def _params(net) -> list:
    return [p.detach().clone() for p in net.parameters()]


def _same(a: list, b: list) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("variant", ["ema", "frozen", "none"])
def test_semantic_classifier_variants_run(variant, tmp_path, data_dir):
    """Each variant changes the classifier the generators' semantic terms go through: ema follows F_T at a
    distance, frozen is pre-trained by its own stage and then never moves, none has no semantic terms."""
    cfg = compose_train([f"model.semantic_classifier={variant}", "model.pretrain_on=both",
                         "trainer.fast_dev_run=true"], tmp_path, data_dir)
    datamodule, model, trainer = build(cfg)
    if variant == "none":
        assert model.sem_net is None
    else:
        assert bool(model.sem_net_ready) == (variant == "frozen")
        if variant == "frozen":  # pre-trained before the joint fit: no longer F_T's initial weights
            assert not _same(_params(model.sem_net), _params(model.segmenter))
        copy_before = _params(model.sem_net)
    trainer.fit(model, datamodule=datamodule)
    logged = set(trainer.callback_metrics)
    assert ("train/g_sem_source_step" in logged) == (variant != "none")
    assert "train/g_gan_step" in logged
    if variant != "none":
        assert not _same(_params(model.sem_net), _params(model.segmenter))  # the generators see another net
        assert _same(_params(model.sem_net), copy_before) == (variant == "frozen")
        assert not any(p.requires_grad for p in model.sem_net.parameters())


def test_a_frozen_run_resumed_from_another_classifiers_checkpoint_is_refused(tmp_path, data_dir):
    """An ``ema`` run's checkpoint loads into a ``frozen`` run without a complaint (same networks), but its copy
    of F_T was never pre-trained: the frozen run stops before its first step instead of judging translations with
    it. (A resume skips the pre-training: the run's own checkpoint holds the pre-trained copy.)"""
    ema = train(compose_train(["model.semantic_classifier=ema", "data.real_frac=0.5", "trainer.max_epochs=1",
                               "run_test=false", "test_checkpoint=last"], tmp_path / "ema", data_dir))
    cfg = compose_train(["model.semantic_classifier=frozen", "data.real_frac=0.5", "trainer.max_epochs=2",
                         f"ckpt_path={ema['last_checkpoint']}"], tmp_path / "frozen", data_dir)
    with pytest.raises(ValueError, match=r"semantic_classifier=frozen but the frozen classifier of checkpoint "
                                         r".*ema/checkpoints/last.ckpt was never pre-trained"):
        train(cfg)
    assert not (tmp_path / "frozen" / "checkpoints" / "last.ckpt").exists()  # not one step


def record_fake_dtypes(monkeypatch) -> list[torch.dtype]:
    """The dtype of G_S→T(x_s) in every training step from now on."""
    from cyclesem.method.module import CycleSemModule

    dtypes: list[torch.dtype] = []
    translate = CycleSemModule.translate

    def recording(module, source_image, target_image):
        fakes = translate(module, source_image, target_image)
        dtypes.append(fakes.source_as_target.dtype)
        return fakes

    monkeypatch.setattr(CycleSemModule, "translate", recording)
    return dtypes


def test_full_scale_config_runs_on_tiny_inputs(tmp_path, data_dir, monkeypatch):
    """experiment=full_scale (CycleGAN-size networks, data=gta5_cityscapes, trainer=gpu with bf16-mixed)
    on the smoke pair's folders with tiny crops, on the CPU: one step trains the networks under bf16 autocast on
    channels-last weights (real_frac 0.5 of 4 images: with the default 10 % there would be no target image, and
    so no CycleGAN to train — refused by config validation)."""
    root = default_pair_root(data_dir)
    cfg = compose_config("train", [
        "+experiment=full_scale", "logger=none", f"paths.data_dir={data_dir}", "trainer.accelerator=cpu", "trainer.fast_dev_run=true", "data.num_workers=0",
        "data.pin_memory=false", "data.num_labeled=4", "data.real_frac=0.5", "data.batch_size=1", "data.val_batch_size=1",
        f"data.source.root={root}/gta5", f"data.target_train.root={root}/cityscapes",
        "data.source.transform.resize=[32,64]", "data.source.transform.crop=[32,32]",
        "data.target_train.transform.resize=[32,64]", "data.target_train.transform.crop=[32,32]",
        "data.target_val.transform.resize=[32,64]",
        # the smoke pair must exist: render it through the synthetic config's prepare step
        f"data.prepare={{_target_: cyclesem.data.synthetic.pair.ensure_synthetic_pair, _partial_: true, root: {root}, "
        "height: 32, width: 64, num_source: 12, num_target_train: 12, num_target_val: 4, num_target_test: 4, "
        f"progress: false, palette_shift: {default_pair_params()[1]}}}",
    ], tmp_path)
    assert cfg.trainer.precision == "bf16-mixed" and cfg.model.gen_s2t.ngf == 64 and cfg.model.gen_s2t.n_blocks == 9
    seen, fake_dtypes = capture_build(monkeypatch), record_fake_dtypes(monkeypatch)
    record = train(cfg)
    assert record["status"] == "completed" and record["train_batches"] == 1
    assert_consistent_scores(record["test"])
    model = seen["model"]
    from cyclesem.models.generator import ResnetBlock

    assert sum(isinstance(m, ResnetBlock) for m in model.gen_s2t.modules()) == 9  # the CycleGAN-size network ran
    assert model.gen_s2t.model[1].out_channels == 64
    assert fake_dtypes and set(fake_dtypes) == {torch.bfloat16}  # the generators ran under bf16 autocast
    assert moved(seen, "gen_s2t.") and moved(seen, "segmenter.")  # and the step trained
    conv = next(m for m in model.segmenter.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)  # full_scale's model.channels_last


@pytest.mark.slow
def test_compiled_channels_last_networks_train_validate_and_test_on_cpu(tmp_path, data_dir, monkeypatch, fresh_dynamo):
    """model.compile=true (torch.compile of every network, inductor on the CPU, fp32 as the study's warm-started
    arms run it) with model.channels_last=true: every network was compiled once, the step trained on channels-last
    weights, and validation and testing scored. bf16 autocast is tested eagerly above (full_scale) and compiled on
    the GPU by `make gpu-check` (bench_compile): on this CPU each dtype is one more inductor compile of every graph."""
    compiled: list[str] = []
    original = torch.nn.Module.compile

    def counting_compile(module, *args, **kwargs):
        compiled.append(type(module).__name__)
        return original(module, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "compile", counting_compile)
    cfg = compose_train(["model.channels_last=true", "model.compile=true", "data.real_frac=0.5",
                         "trainer.fast_dev_run=true"], tmp_path, data_dir)
    seen = capture_build(monkeypatch)
    record = train(cfg)
    assert record["status"] == "completed" and record["train_batches"] == 1
    assert sorted(compiled) == ["PatchDiscriminator", "PatchDiscriminator", "ResnetGenerator", "ResnetGenerator",
                                "UNet"]
    assert moved(seen, "gen_s2t.") and moved(seen, "disc_t.") and moved(seen, "segmenter.")
    model = seen["model"]
    for net in (model.segmenter, model.gen_s2t, model.disc_t):
        conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last), type(net).__name__
    for split in ("val", "test"):
        assert_consistent_scores(record[split])
        assert record[split]["translation_l1"] > 0


def test_cli_trains_and_reports(tmp_path, data_dir):
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "cyclesem.train", "+experiment=smoke", "logger=csv", f"paths.data_dir={data_dir}",
         f"hydra.run.dir={run_dir}", "data.real_frac=0.5"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "fwIoU=" in proc.stdout and str(run_dir) in proc.stdout
    record = read_metrics(run_dir)
    assert record["epochs"] == 2 and record["best_checkpoint"].startswith(str(run_dir / "checkpoints"))
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert list((run_dir / "csv").rglob("panels/step*.png")), "image panels are written for the CSV logger"
    metrics_csv = next((run_dir / "csv").rglob("metrics.csv")).read_text()
    for key in ("train/g_gan_step", "train/d_target_step", "train/seg_source_step", "val/mIoU", "val/iou_road",
                "val/translation_l1", "val/translation_score", "val/translation_gain", "lr-Adam"):
        assert key in metrics_csv, key


def test_the_test_stage_scores_the_held_out_split_with_the_selected_checkpoint(tmp_path, data_dir):
    """Selection on val, scores on test: the recorded test scores are those of the best-val checkpoint on the
    test split's images, which are not the val split's."""
    import torch
    from hydra.utils import instantiate

    from cyclesem.method.metrics import scores_from_confusion
    from cyclesem.runtime.checkpoint import build_module, load_checkpoint, stored_data_config

    record = train(compose_train(["data.real_frac=0.5"], tmp_path, data_dir))
    assert record["test_split"].endswith("cityscapes/test") and record["selection_split"].endswith("cityscapes/val")
    # the record names the checkpoint relative to the run directory and the splits by no machine's folders
    best = Path(record["best_checkpoint"])
    assert record["test_checkpoint"] == f"best val/mIoU ({best.relative_to(tmp_path).as_posix()})"
    assert best.parent == tmp_path / "checkpoints"
    assert not record["test_split"].startswith("/") and not record["selection_split"].startswith("/")
    assert record["train_batches"] == record["segmenter_updates"] == 2 * 4  # what fit ran, whichever epoch is tested
    checkpoint = load_checkpoint(record["best_checkpoint"])
    module = build_module(checkpoint).eval()
    datamodule = instantiate(stored_data_config(checkpoint))
    datamodule.setup("test")
    scores = {}
    with torch.no_grad():
        for split, loader in (("test", datamodule.test_dataloader()[0]), ("val", datamodule.val_dataloader()[0])):
            module.val_metrics.reset()
            for batch in loader:
                module.validation_step(batch, 0)
            scores[split] = scores_from_confusion(module.val_metrics.confmat)["mIoU"]
    assert record["test"]["mIoU"] == pytest.approx(scores["test"], abs=1e-6)
    assert scores["val"] != pytest.approx(scores["test"], abs=1e-6)


def val_epochs(run_dir) -> list[int]:
    """The epochs the CSV logger holds a val/mIoU for."""
    rows = csv.DictReader(next((run_dir / "csv").rglob("metrics.csv")).open())
    return sorted({int(row["epoch"]) for row in rows if row.get("val/mIoU")})


def test_last_checkpoint_is_scored_without_selection_or_validation(tmp_path, data_dir):
    record = train(compose_train(["method=baseline", "data.real_frac=0.5", "test_checkpoint=last",
                                  "trainer.max_epochs=2"], tmp_path, data_dir, logger="csv"))
    assert record["test_checkpoint"] == "last (no selection)" and record["selection_split"] is None
    assert record["test_split"].endswith("cityscapes/test")
    assert_consistent_scores(record["test"])
    assert record["val"] == {} and val_epochs(tmp_path) == []  # nothing to select, so no validation
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file() and read_metrics(tmp_path)["status"] == "completed"


def test_val_points_validate_at_spread_epochs_ending_with_the_last(tmp_path, data_dir):
    record = train(compose_train(["method=baseline", "data.real_frac=0.5", "trainer.max_epochs=4", "val_points=2"],
                                 tmp_path, data_dir, logger="csv"))
    assert val_epochs(tmp_path) == [1, 3] and record["epochs"] == 4  # 0-based: after the 2nd and the 4th epoch
    # the record's val scores are the last validation's, and the best checkpoint is the epoch whose val/mIoU is
    # highest
    logged = epoch_values_from_csv(tmp_path, "val/mIoU")
    assert sorted(logged) == [1, 3] and record["val"]["mIoU"] == pytest.approx(logged[3], abs=1e-6)
    best_epoch = max(logged, key=logged.get)
    assert record["best_checkpoint"].endswith(f"best-epoch{best_epoch:03d}.ckpt")


def test_every_method_preset_trains_with_the_same_segmenter_updates(tmp_path, data_dir):
    """The comparison set on one seed's labelled subset and one budget: every method makes the same number of
    segmenter updates (one per batch), and each trains on what its name says."""
    records = {}
    for method in ("cyclesem", "cyclegan", "baseline", "target_only", "oracle"):
        cfg = compose_train([f"method={method}", "data.real_frac=0.5", "trainer.max_epochs=1"], tmp_path / method,
                            data_dir)
        records[method] = train(cfg)
    assert {m: r["method"] for m, r in records.items()} == {m: m for m in records}
    assert {r["train_batches"] for r in records.values()} == {4}  # ceil(N=8 / batch 2)
    assert {r["segmenter_updates"] for r in records.values()} == {4}
    assert all("translation_l1" in r["test"] for m, r in records.items() if m in ("cyclesem", "cyclegan"))
    assert records["oracle"]["config"]["data"]["source"]["root"].endswith("gta5_as_cityscapes")
    # the control sees only the real images: the labelled set holds round(0.5·8) = 4 of them and no source
    from hydra.utils import instantiate

    datamodule = instantiate(compose_train(["method=target_only", "data.real_frac=0.5"], tmp_path, data_dir).data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    assert list(datamodule.labeled_sets) == ["target"] and len(datamodule.labeled_sets["target"]) == 4


def test_anneal_rule_trains_with_the_scheduled_stylized_weight(tmp_path, data_dir):
    """model.loss.seg_source_rule=anneal through train.build: 2 epochs × 4 batches, the logged weight of batch k
    is seg_source + (seg_source_end − seg_source) · k / 7."""
    cfg = compose_train(["model=baseline", "data.real_frac=0.5", "model.loss.seg_source_rule=anneal",
                         "model.loss.seg_source=2", "model.loss.seg_source_end=0.6", "run_test=false"],
                        tmp_path, data_dir, logger="csv")
    train(cfg)
    with open(next(tmp_path.rglob("metrics.csv"))) as handle:
        logged = [float(row["train/seg_source_weight_step"]) for row in csv.DictReader(handle)
                  if row.get("train/seg_source_weight_step")]
    assert logged == pytest.approx([2.0 - 1.4 * k / 7 for k in range(8)])


def test_pavement_pair_trains_with_its_pavement_scenes_filtered_out(tmp_path, data_dir):
    """data.prepare.pavement_share renders a pair of its own beside the default one; data.source_filter=pavement
    trains on its source images without the scenes shot from the pavement."""
    cfg = compose_train(["model=baseline", "data.prepare.pavement_share=0.5", "data.source_filter=pavement",
                         "data.real_frac=0.5", "trainer.fast_dev_run=true"], tmp_path, data_dir)
    datamodule, _, _ = build(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    root = data_dir / pair_dir_name(0.5, default_pair_params()[1])  # beside the default pair, named by both
    on_pavement = set(json.loads((root / "manifest.json").read_text())["pavement_scenes"])
    source = datamodule.labeled_sets["source"].dataset
    assert on_pavement and str(source.root) == str(root / "gta5") and not on_pavement & set(source.names)
    assert train(cfg)["status"] == "completed"


def test_real_layout_run_scores_cityscapes_val_with_no_checkpoint_selected_on_it(tmp_path, gta5_root, cityscapes_root):
    """data=gta5_cityscapes with its defaults on the GTA5 / Cityscapes-layout fixtures: Cityscapes' val split is the
    scored split, so the run scores its final weights and metrics.json names no selection split."""
    run_dir = tmp_path / "run"
    cfg = compose_config("train", [*real_layout_overrides(gta5_root, cityscapes_root), "data.real_frac=0.34",
                                   "trainer.max_epochs=1", "logger=none"], run_dir)
    train(cfg)
    record = read_metrics(run_dir)
    assert record["status"] == "completed" and record["train_batches"] == 3
    assert record["test_split"] == portable_path(f"{cityscapes_root}/val") and record["selection_split"] is None
    assert record["test_checkpoint"] == "last (no selection)" and record["val"] == {}  # no validation at all
    assert {"mIoU", "fwIoU"} <= set(record["test"])
