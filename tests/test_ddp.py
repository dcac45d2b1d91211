"""DDP with manual optimization: trainer=ddp_cpu (2 gloo processes) against a single process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from datetime import timedelta

import pytest
import torch
from hydra.utils import instantiate

from cyclesem.method.metrics import scores_from_confusion
from cyclesem.runtime.checkpoint import build_module, load_checkpoint, stored_data_config
from tests.conftest import REPO, compose_config, epoch_values_from_csv
from tests.ddp_helpers import RecordStepLosses

SMOKE = ["+experiment=smoke", "logger=csv"]


# a collective that waits longer than this fails the run: a hang becomes a failed test, not a stuck CI
COLLECTIVE_TIMEOUT = ["trainer.strategy.timeout.seconds=90"]


def run_cli(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cyclesem.train", *SMOKE, *COLLECTIVE_TIMEOUT, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=900, env={**os.environ, "WANDB_MODE": "disabled"})


def single_process_confmat(checkpoint_path, split: str = "val") -> torch.Tensor:
    """The `split` (val or test) confusion matrix of the checkpoint's networks, computed by one process over the
    whole split."""
    checkpoint = load_checkpoint(checkpoint_path)
    module = build_module(checkpoint)
    datamodule = instantiate(stored_data_config(checkpoint))
    datamodule.setup("validate" if split == "val" else "test")
    loader = datamodule.val_dataloader()[0] if split == "val" else datamodule.test_dataloader()[0]
    with torch.no_grad():
        for batch in loader:
            module.validation_step(batch, 0)
    return module.val_metrics.confmat


def same_streams(a: dict, b: dict, global_rng: bool = True) -> bool:
    """Equal image pools (images and coin generators), instance-noise and (global_rng) global torch RNG states."""
    pools = all(torch.equal(a["pools"][side][k], b["pools"][side][k])
                for side in ("source", "target") for k in ("images", "generator"))
    noise = (a["noise"] is None and b["noise"] is None) or torch.equal(a["noise"]["state"], b["noise"]["state"])
    return pools and noise and (not global_rng or torch.equal(a["rng"]["torch"], b["rng"]["torch"]))


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
    for cfg in (cpu, gpu):  # a collective that waits longer fails the run instead of hanging it
        assert instantiate(cfg.trainer.strategy.timeout) == timedelta(seconds=1800)


@pytest.mark.slow
def test_ddp_cpu_epochs_without_validation_kill_and_resume_finish(tmp_path, data_dir):
    """The defaults a multi-GPU user runs: validation only every 2nd epoch, the Rich progress bar, a logger and
    step checkpoints. Epoch 0 ends without validation, where rank 0's progress bar used to enter an all-reduce
    that rank 1 never joined (Lightning issue 21264). Killed mid-epoch 2 (SIGKILL on both ranks after batch 11,
    two batches past the step-9 checkpoint) and resumed with ckpt_path=last, the run finishes, every logged
    epoch loss is the mean over both ranks' batches, the resumed epoch included, and each rank resumes with its
    own image pools, instance-noise stream and RNG states (not rank 0's), which differ from the other rank's."""
    run_dir, steps, streams = tmp_path / "run", tmp_path / "steps", tmp_path / "streams"
    common = ["data.real_frac=0.5", "data.num_labeled=16", f"paths.data_dir={data_dir}", f"hydra.run.dir={run_dir}",
              "trainer=ddp_cpu", "trainer.max_epochs=3", "trainer.check_val_every_n_epoch=2",
              "callbacks.last_checkpoint.every_n_train_steps=3", "model.disc_noise=0.1",
              "+callbacks.steps._target_=tests.ddp_helpers.RecordStepLosses", f"+callbacks.steps.out={steps}",
              "+callbacks.streams._target_=tests.ddp_helpers.DumpRankStreams", f"+callbacks.streams.out={streams}"]
    proc = run_cli([*common, "+callbacks.kill._target_=tests.fault_helpers.KillAfterStep", "+callbacks.kill.step=11"])
    assert proc.returncode == -9, proc.stderr[-3000:]  # 16 images / (2 per batch · 2 ranks) = 4 batches an epoch
    assert not (run_dir / "metrics.json").exists()
    resume_point = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert resume_point["epoch"] == 2 and resume_point["loops"]["fit_loop"]["epoch_loop.batch_progress"][
        "total"]["processed"] == 9

    proc = run_cli([*common, "ckpt_path=last"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "completed" and record["epochs"] == 3
    # the test scores gathered from both ranks are those of one process over the whole test split
    whole = scores_from_confusion(single_process_confmat(record["best_checkpoint"], "test"))
    assert record["test"]["mIoU"] == pytest.approx(whole["mIoU"], abs=1e-6)

    saved = [torch.load(streams / f"saved_rank{r}_at9.pt", weights_only=False) for r in (0, 1)]
    restored = [torch.load(streams / f"restored_rank{r}_at9.pt", weights_only=False) for r in (0, 1)]
    # pools and instance noise resume exactly on each rank; the global torch RNG state does not yet (it differs
    # at on_train_start after a DDP resume, while the single-process resume in test_faults restores it exactly):
    # an open item of issue 33, kept visible here rather than asserted away
    assert [same_streams(saved[r], restored[r], global_rng=False) for r in (0, 1)] == [True, True]
    # own streams: the ranks' coin generators (same number of draws) and noise generators are in other states
    assert not torch.equal(saved[0]["pools"]["target"]["generator"], saved[1]["pools"]["target"]["generator"])
    assert not torch.equal(saved[0]["noise"]["state"], saved[1]["noise"]["state"])

    by_batch = {}  # (rank, epoch, batch) -> values; a batch redone after the resume logs the same values again
    for rank in (0, 1):
        for line in (steps / f"steps_rank{rank}.jsonl").read_text().splitlines():
            row = json.loads(line)
            by_batch[(rank, row["epoch"], row["batch"])] = row
    assert len(by_batch) == 2 * 3 * 4
    for key in RecordStepLosses.KEYS:
        per_epoch = defaultdict(list)
        for (_, epoch, _), row in by_batch.items():
            per_epoch[epoch].append(row[key])
        logged = epoch_values_from_csv(run_dir, key.replace("_step", "_epoch"))
        assert sorted(logged) == [0, 1, 2]
        for epoch, values in per_epoch.items():  # equal batch sizes: the weighted mean is the plain mean
            assert logged[epoch] == pytest.approx(sum(values) / len(values), rel=1e-5), (key, epoch)
