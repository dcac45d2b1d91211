"""Device correctness without a GPU: the module's real training, validation and test steps (and the benchmark's
steps) with every tensor their code creates without ``device=`` on another device than the networks.

Why this set-up. On a GPU a tensor made with ``torch.tensor(...)`` or ``torch.zeros(...)`` without ``device=``
lands on the CPU while the networks and losses are on CUDA, and the first op that mixes them raises ("Expected
all tensors to be on the same device"). On a CPU-only machine both are the CPU and nothing shows. PyTorch's
``meta`` device gives the mismatch without a GPU, but the networks cannot run on it for a whole step: the steps
read values (``bool()`` of the finite checks, a pool's coin flip, the metrics' ``compute``, ``.item()`` in
messages), and meta tensors have none. So the networks and the data stay on the CPU, and the *default* device is
switched to ``meta`` while the module's, the frozen classifier's pre-training and the media callbacks' hooks run
(`meta_default_inside`): a tensor created there without ``device=`` lands on meta, and the first op that mixes
it with the step's CPU tensors raises "Tensor on device meta is not on the expected device cpu!" — the mirror
image of the GPU failure. Lightning's own logging machinery runs with the CPU default (it is not under test and
moves what it is given itself), and so does the reading of dataset items (data loading, on the CPU everywhere). Code that means a CPU tensor on every machine (a pool's coin flip, drawn from
its CPU generator) must say so with ``device=``, which it should anyway.

On commit 1ff157b the first test fails in ``EpochMeans.update``: ``nonfinite_steps``, created without a device by
``count_nonfinite``, met the step's losses in ``torch.stack``.
"""

from __future__ import annotations

import functools
import json

import pytest
import torch

from cyclesem.bench.steps import BenchSettings, measure_variant
from cyclesem.method import media_callbacks
from cyclesem.method.module import CycleSemModule
from cyclesem.method.pretrain import SegmenterModule
from cyclesem.train import train
from tests.conftest import compose_train

MODULE_HOOKS = ("setup", "configure_model", "configure_optimizers", "on_train_start", "training_step",
                "on_train_epoch_end", "validation_step", "on_validation_epoch_start", "on_validation_epoch_end",
                "test_step", "on_test_epoch_start", "on_test_epoch_end", "on_save_checkpoint", "on_load_checkpoint",
                # what the benchmark calls directly
                "translate", "generator_step", "discriminator_step", "segmenter_step")
HOOKS = [(CycleSemModule, MODULE_HOOKS), (SegmenterModule, ("training_step", "on_train_epoch_end")),
         (media_callbacks.ImagePanels, ("on_train_batch_end",)),
         (media_callbacks.ClassIoUTable, ("on_validation_end", "on_test_end")),
         (media_callbacks.ValSamples, ("on_validation_epoch_end",))]


def with_default_device(device: str, method):
    @functools.wraps(method)
    def wrapped(*args, **kwargs):
        with torch.device(device):
            return method(*args, **kwargs)
    return wrapped


@pytest.fixture
def meta_default_inside(monkeypatch):
    """Inside the hooks of `HOOKS`, tensors created without a device land on meta; Lightning's ``log`` runs with
    the CPU default."""
    for cls, names in HOOKS:
        for name in names:
            monkeypatch.setattr(cls, name, with_default_device("meta", getattr(cls, name)))
    for cls in (CycleSemModule, SegmenterModule):
        monkeypatch.setattr(cls, "log", with_default_device("cpu", cls.log))
    # reading dataset items is data loading, which runs on the CPU (in loader workers) on every machine
    monkeypatch.setattr(media_callbacks.ValSamples, "fixed_samples",
                        with_default_device("cpu", media_callbacks.ValSamples.fixed_samples))


@pytest.mark.parametrize("overrides", [
    # F_T fused into the generator step, class weights, instance noise, clipping, the annealed weight, a NaN
    # batch (the skip path and its buffer restore), panels every step, step checkpoints and the test stage
    # loading the best one; the translation score's reference scores the paired set
    ["data.real_frac=0.5", "model.class_weights=median", "model.disc_noise=0.1", "model.gradient_clip_val=1.0",
     "model.loss.seg_source_rule=anneal", "model.log_images_every_n_steps=1",
     "callbacks.last_checkpoint.every_n_train_steps=2",
     "+callbacks.poison._target_=tests.fault_helpers.PoisonBatch", "+callbacks.poison.batch=1"],
    # the frozen classifier, pre-trained by its own stage, with unlabelled target images
    ["method=cyclesem_unlabeled", "data.real_frac=0.25", "model.semantic_classifier=frozen",
     "model.pretrain_on=both"],
    ["method=baseline", "data.real_frac=0.5", "model.class_weights=inverse"],
], ids=["joint", "frozen-unlabelled", "baseline"])
def test_training_validation_and_test_steps_create_no_tensor_off_the_model_device(
        overrides, tmp_path, data_dir, meta_default_inside):
    cfg = compose_train([*overrides, "trainer.max_epochs=1"], tmp_path / "run", data_dir, logger="csv")
    record = train(cfg)
    assert record["status"] == "completed" and record["train_batches"] == 4
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]
    assert json.dumps(written, sort_keys=True) == json.dumps(record["test"], sort_keys=True)  # nan == nan
    assert set(record["test"]) >= {"mIoU", "fwIoU", "pixel_acc"}
    assert ("translation_score" in record["test"]) == (overrides[0] != "method=baseline")


@pytest.mark.parametrize("variant", ["joint", "cyclegan", "naive"])
def test_benchmark_steps_create_no_tensor_off_the_model_device(variant, meta_default_inside):
    settings = BenchSettings(height=32, width=32, ngf=4, n_blocks=1, ndf=4, seg_base_channels=4, seg_depth=2,
                             warmup=1, steps=1, threads=1,
                             optimizer_g={"_target_": "torch.optim.Adam", "_partial_": True, "lr": 2e-4},
                             optimizer_seg={"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3})
    result = measure_variant(settings, variant)
    assert result["flops_per_step"] > 0 and len(result["seconds_per_step"]) == 1
