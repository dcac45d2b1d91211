"""DDP with manual optimization: trainer=ddp_cpu (2 gloo processes) against a single process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from hydra.utils import instantiate

from cyclesem.checkpoint import build_module, load_checkpoint, stored_data_config
from cyclesem.method.metrics import scores_from_confusion
from tests.conftest import REPO, compose_config

SMOKE = ["+experiment=smoke", "logger=csv"]


def run_cli(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cyclesem.train", *SMOKE, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "WANDB_MODE": "disabled"})


def single_process_confmat(checkpoint_path) -> torch.Tensor:
    """The val confusion matrix of the checkpoint's networks, computed by one process over the whole val split."""
    checkpoint = load_checkpoint(checkpoint_path)
    module = build_module(checkpoint)
    datamodule = instantiate(stored_data_config(checkpoint))
    datamodule.setup("validate")
    with torch.no_grad():
        for batch in datamodule.val_dataloader()[0]:
            module.validation_step(batch, 0)
    return module.val_metrics.confmat


@pytest.mark.slow
@pytest.mark.parametrize("data", [
    ["data.real_frac=0.5"],
    # 1 labelled target image among unlabelled ones: a rank's target slice is often without any label
    ["data.real_frac=0.1", "data.unlabeled_target=true"],
], ids=["labelled", "mostly-unlabelled-target"])
def test_ddp_cpu_keeps_ranks_identical_and_counts_each_val_image_once(tmp_path, data_dir, data):
    run_dir, dump = tmp_path / "run", tmp_path / "dump"
    proc = run_cli([*data, f"paths.data_dir={data_dir}", f"hydra.run.dir={run_dir}", "trainer=ddp_cpu",
                    "+callbacks.dump._target_=tests.ddp_helpers.DumpRankState", f"+callbacks.dump.out={dump}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "unused" not in proc.stderr.lower() and "marked ready" not in proc.stderr
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "completed" and record["epochs"] == 2

    params = [torch.load(dump / f"params_rank{r}.pt") for r in (0, 1)]
    assert params[0].keys() == params[1].keys() and len(params[0]) > 100
    assert all(torch.equal(params[0][k], params[1][k]) for k in params[0]), "ranks drifted apart"
    initial = build_module(load_checkpoint(run_dir / "checkpoints" / "last.ckpt"))
    assert all(torch.equal(initial.state_dict()[k], v) for k, v in params[0].items())  # rank 0 saved them

    local = [torch.load(dump / f"confmat_rank{r}.pt") for r in (0, 1)]
    assert all(m.sum() > 0 for m in local)  # both ranks evaluated a share of the val split
    whole = single_process_confmat(run_dir / "checkpoints" / "last.ckpt")
    assert torch.equal(local[0] + local[1], whole)  # every val pixel counted once, none twice
    # the logged scores are those of the summed matrix (the last validation ran on the last.ckpt weights)
    assert record["val"]["mIoU"] == pytest.approx(scores_from_confusion(whole)["mIoU"], abs=1e-6)


def test_ddp_inside_a_multirun_stops_with_a_clear_message(tmp_path, data_dir):
    proc = subprocess.run(
        [sys.executable, "-m", "cyclesem.train", "-m", *SMOKE, "data.real_frac=0.5", f"paths.data_dir={data_dir}",
         "trainer=ddp_cpu",
         f"hydra.sweep.dir={tmp_path}", "seed=0,1"],
        cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ, "WANDB_MODE": "disabled"})
    assert proc.returncode != 0
    assert "cannot run inside a Hydra multirun" in proc.stderr and "hydra/launcher=slurm_gpu" in proc.stderr
    record = json.loads(next(tmp_path.glob("0_*/metrics.json")).read_text())
    assert record["status"] == "failed" and "multirun" in record["error"]


def test_ddp_configs_compose(tmp_path):
    cpu = compose_config("train", ["trainer=ddp_cpu"], tmp_path)
    assert cpu.trainer.devices == 2 and cpu.trainer.strategy.process_group_backend == "gloo"
    assert cpu.trainer.strategy.find_unused_parameters and not cpu.trainer.use_distributed_sampler
    gpu = compose_config("train", ["trainer=ddp"], tmp_path)
    assert gpu.trainer.strategy.process_group_backend == "nccl" and gpu.trainer.sync_batchnorm
    assert gpu.trainer.precision == "bf16-mixed" and gpu.trainer.accelerator == "gpu"
