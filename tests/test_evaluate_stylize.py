"""evaluate and stylize rebuild the networks from a checkpoint alone; W&B offline logging."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import wandb
from lightning.pytorch.loggers import WandbLogger
from PIL import Image

from cyclesem.evaluate import evaluate
from cyclesem.runtime.checkpoint import CheckpointError, load_checkpoint
from cyclesem.stylize import stylize
from cyclesem.train import train
from tests.conftest import REPO, compose_config, compose_train, default_pair_root


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, data_dir):
    run_dir = tmp_path_factory.mktemp("run")
    record = train(compose_train(["data.real_frac=0.5"], run_dir, data_dir))
    return run_dir, record


def test_evaluate_reproduces_the_test_metrics(trained_run, tmp_path, data_dir):
    run_dir, record = trained_run
    cfg = compose_config("evaluate", [f"ckpt_path={record['best_checkpoint']}", f"paths.data_dir={data_dir}",
                                      "save_predictions=true", "save_label_ids=true"], tmp_path)
    result = evaluate(cfg, tmp_path)
    assert result["mIoU"] == pytest.approx(record["test"]["mIoU"], abs=1e-6)
    assert result["fwIoU"] == pytest.approx(record["test"]["fwIoU"], abs=1e-6)
    for key in ("translation_l1", "translation_score", "translation_gain"):  # the paired set, the cached reference
        assert result[key] == pytest.approx(record["test"][key], abs=1e-6), key
    colour = sorted((tmp_path / "predictions" / "color").glob("*.png"))
    label_ids = sorted((tmp_path / "predictions" / "labelIds").glob("*_pred_labelIds.png"))
    assert len(colour) == len(label_ids) == result["num_images"] == 4
    ids = np.unique(np.array(Image.open(label_ids[0])))
    assert set(ids.tolist()) <= {7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33}


@pytest.mark.parametrize("direction", ["s2t", "t2s"])
def test_stylize_translates_a_folder_keeping_names(direction, trained_run, tmp_path, data_dir):
    run_dir, record = trained_run
    input_dir = default_pair_root(data_dir) / "gta5" / "images"
    cfg = compose_config("stylize", [f"ckpt_path={record['last_checkpoint']}", f"input_dir={input_dir}",
                                     f"output_dir={tmp_path / 'out'}", f"direction={direction}"])
    written = stylize(cfg)
    inputs = sorted(p.name for p in input_dir.glob("*.png"))
    assert sorted(p.name for p in written) == inputs
    source, translated = (np.array(Image.open(d / inputs[0])) for d in (input_dir, tmp_path / "out"))
    assert translated.shape == source.shape and not np.array_equal(translated, source)


def test_bad_checkpoints_get_clear_errors(tmp_path):
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match="cannot read checkpoint .*truncated.ckpt"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, foreign)
    with pytest.raises(CheckpointError, match="not written by cyclesem.train"):
        load_checkpoint(foreign)
    proc = subprocess.run([sys.executable, "-m", "cyclesem.evaluate", f"ckpt_path={foreign}",
                           f"hydra.run.dir={tmp_path / 'eval'}"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "foreign.ckpt" in proc.stderr and "Traceback" not in proc.stderr


def test_stylize_refuses_a_baseline_checkpoint(tmp_path, data_dir):
    record = train(compose_train(["model=baseline", "trainer.max_epochs=1"], tmp_path / "run", data_dir))
    cfg = compose_config("stylize", [f"ckpt_path={record['last_checkpoint']}", f"input_dir={data_dir}",
                                     f"output_dir={tmp_path / 'out'}"])
    with pytest.raises(CheckpointError, match="no generators"):
        stylize(cfg)


def test_wandb_offline_run_records_losses_metrics_and_media(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    # W&B reads WANDB_MODE once per process setup: a test that ran a (disabled) run before would keep this one
    # disabled too (tests/report runs before this file), so start from a fresh setup
    wandb.teardown()
    logged: set[str] = set()
    original = WandbLogger.log_metrics

    def spy(self, metrics, step=None):
        logged.update(metrics)
        return original(self, metrics, step)

    monkeypatch.setattr(WandbLogger, "log_metrics", spy)
    try:
        train(compose_train(["data.real_frac=0.5", "trainer.max_epochs=1"], tmp_path, data_dir, logger="wandb"))
    finally:
        wandb.finish()  # the entry point's main() does this; train() alone leaves the run open
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("run-*.wandb"))
    media = runs[0] / "files" / "media"
    assert list(media.rglob("panel_*.png")) and list(media.rglob("*.mask.png"))
    assert list(media.rglob("per_class_iou_*.table.json"))
    for key in ("train/g_gan_step", "train/g_cycle_step", "train/g_sem_source_step", "train/d_target_step",
                "train/seg_target_step", "val/mIoU", "val/fwIoU", "val/iou_car", "val/translation_l1",
                "test/mIoU", "lr-Adam"):
        assert key in logged, key
