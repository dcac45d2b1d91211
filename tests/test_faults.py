"""Faults: SIGKILL and resume, reproducibility, atomic checkpoints, full disks, files that go bad mid-run.

(The synthetic pair's lock in isolation: tests/data/test_synthetic.py; resumable sweeps:
tests/test_sweep.py; truncated or foreign checkpoints: tests/test_evaluate_stylize.py.)
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import torch
import yaml

from cyclesem.data.image_io import DatasetError
from cyclesem.runtime.checkpoint import CheckpointSaveError, atomic_torch_save, build_module, load_checkpoint
from cyclesem.study.run_record import machine_record
from cyclesem.train import train
from tests.conftest import REPO, compose_train, default_pair_root

# 3 epochs × 4 steps (smoke: 8 labelled images, batch 2); last.ckpt every 3 steps and at every epoch end
RUN = ["data.real_frac=0.5", "trainer.max_epochs=3", "callbacks.last_checkpoint.every_n_train_steps=3"]


def run_cli(run_dir: Path, data_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled"}  # cwd=REPO: `tests.fault_helpers` is importable
    return subprocess.run(
        [sys.executable, "-m", "cyclesem.train", "+experiment=smoke", "logger=csv", f"paths.data_dir={data_dir}",
         f"hydra.run.dir={run_dir}", *RUN, *extra],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )


def weights(path: Path) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state = dict(checkpoint["state_dict"])
    for i, opt in enumerate(checkpoint["optimizer_states"]):  # Adam moments and step counts
        for pid, slots in opt["state"].items():
            state.update({f"opt{i}.{pid}.{k}": torch.as_tensor(v) for k, v in slots.items()})
    for i, sched in enumerate(checkpoint["lr_schedulers"]):
        state[f"sched{i}.last_epoch"] = torch.tensor(sched["last_epoch"])
    for rank, streams in enumerate(checkpoint["cyclesem"]["ranks"]):  # pools and instance-noise states
        state.update({f"rank{rank}.pool_{side}.{k}": pool[k] for side, pool in streams["pools"].items()
                      for k in ("images", "generator")})
        if streams["noise"] is not None:
            state[f"rank{rank}.noise"] = streams["noise"]["state"]
        # streams["rng"] (the global torch/numpy/python states) is left out: a resumed run ends with another global
        # torch RNG state than a straight one (seen after the issue-33/35/36 merges; an open item of issue 33), while
        # everything that draws randomness for training (pools, noise, the data stream) has its own generator above
    return state


def same_scores(a: dict, b: dict) -> bool:
    """Equal score dicts, nan (a class absent from prediction and ground truth) equal to nan."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:5]}"


@pytest.mark.slow
@pytest.mark.parametrize("rule", [[], ["model.loss.seg_source_rule=anneal", "model.disc_noise=0.1"]],
                         ids=["constant", "anneal-noise"])
def test_run_killed_mid_epoch_resumes_to_identical_weights_and_metrics(tmp_path, data_dir, rule):
    """Killed (SIGKILL) after step 7 — 1 step past the step-6 checkpoint, mid-epoch 2 — and restarted with
    ckpt_path=last, the run ends bit-identical to one that was never interrupted: weights, optimizer and scheduler
    states, image pools, random streams and val/test metrics (CPU, same thread count, so the same kernels run in
    the same order). With ``anneal`` the stylized weight depends on the batch's place in the run, which the resume
    restores; with instance noise (``disc_noise``) every discriminator input draws noise, from a stream the data
    loader does not share (it draws its base seed from the global one each time an epoch starts, also right after
    the resume)."""
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert run_cli(straight, data_dir, *rule).returncode == 0

    proc = run_cli(killed, data_dir, *rule, "+callbacks.kill._target_=tests.fault_helpers.KillAfterStep",
                   "+callbacks.kill.step=7")
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert not (killed / "metrics.json").exists()
    resume_point = torch.load(killed / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert resume_point["epoch"] == 1 and resume_point["loops"]["fit_loop"]["epoch_loop.batch_progress"][
        "total"]["processed"] == 6

    proc = run_cli(killed, data_dir, *rule, "ckpt_path=last")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "not resumable" not in proc.stderr  # Lightning's warning for loaders that restart the epoch
    assert_same_weights(straight / "checkpoints" / "last.ckpt", killed / "checkpoints" / "last.ckpt")
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (straight, killed))
    assert same_scores(a["val"], b["val"]) and same_scores(a["test"], b["test"]) and a["epochs"] == b["epochs"] == 3


def test_same_seed_twice_gives_identical_runs_and_records_what_ran(tmp_path, data_dir):
    records = []
    for name in ("first", "second"):
        cfg = compose_train(["data.real_frac=0.5", "seed=3", "logger=csv"], tmp_path / name, data_dir)
        records.append(train(cfg))
    first, second = records
    assert same_scores(first["val"], second["val"]) and same_scores(first["test"], second["test"])
    assert_same_weights(Path(first["last_checkpoint"]), Path(second["last_checkpoint"]))
    assert first["seed"] == 3 and first["versions"]["torch"] == version("torch")
    assert first["git_commit"] is None or len(first["git_commit"]) == 40
    assert first["machine"] == machine_record() and first["machine"]["cpu"]  # which CPU computed the scores
    hparams = yaml.safe_load(next((tmp_path / "first").rglob("hparams.yaml")).read_text())  # the logger's config
    assert hparams["seed"] == 3 and hparams["versions"]["torch"] == version("torch")
    assert hparams["config"]["data"]["real_frac"] == 0.5 and "git_commit" in hparams

    cfg = compose_train(["data.real_frac=0.5", "seed=4", "trainer.max_epochs=1"], tmp_path / "other", data_dir)
    assert not same_scores(train(cfg)["val"], first["val"])  # the seed matters: another seed, another run


def test_kill_during_checkpoint_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "last.ckpt"
    atomic_torch_save({"step": torch.tensor(1)}, path)
    # a child process starts writing step 2 and is SIGKILLed half-way through torch.save
    script = (
        "import os, signal, torch\n"
        "from cyclesem.runtime.checkpoint import atomic_torch_save\n"
        "def half_then_die(obj, handle):\n"
        "    handle.write(b'PK' * 1000); handle.flush(); os.kill(os.getpid(), signal.SIGKILL)\n"
        "torch.save = half_then_die\n"
        f"atomic_torch_save({{'step': torch.tensor(2)}}, {str(path)!r})\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    stale = list(tmp_path.glob(".last.ckpt.tmp-*"))
    assert len(stale) == 1 and stale[0].stat().st_size == 2000
    assert torch.load(path, weights_only=True)["step"].item() == 1  # the previous checkpoint, whole
    atomic_torch_save({"step": torch.tensor(3)}, path)  # the next save clears the debris
    assert torch.load(path, weights_only=True)["step"].item() == 3 and not list(tmp_path.glob(".last.ckpt.tmp-*"))


def _disk_full(obj, handle):
    handle.write(b"x" * 10)
    raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_while_saving_is_reported_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    atomic_torch_save({"step": torch.tensor(1)}, path)
    monkeypatch.setattr("cyclesem.runtime.checkpoint.torch.save", _disk_full)
    with pytest.raises(CheckpointSaveError, match=r"no space left on the device while saving checkpoint .*last\.ckpt"
                       r".*previous last\.ckpt is unchanged") as info:
        atomic_torch_save({"step": torch.tensor(2)}, path)
    assert info.value.errno == errno.ENOSPC
    assert torch.load(path, weights_only=True)["step"].item() == 1 and list(tmp_path.iterdir()) == [path]


def test_full_disk_during_training_stops_the_run_with_that_message(tmp_path, data_dir, monkeypatch):
    monkeypatch.setattr("cyclesem.runtime.checkpoint.torch.save", _disk_full)
    cfg = compose_train(["data.real_frac=0.5", "callbacks.last_checkpoint.every_n_train_steps=2"], tmp_path, data_dir)
    with pytest.raises(CheckpointSaveError, match="no space left on the device while saving checkpoint"):
        train(cfg)
    assert not list((tmp_path / "checkpoints").glob("*"))  # nothing half-written


@pytest.mark.parametrize("how", ["delete", "truncate"])
def test_dataset_file_broken_during_training_is_named_and_last_checkpoint_stays_valid(tmp_path, data_dir, how):
    train(compose_train(["trainer.fast_dev_run=true"], tmp_path / "render", data_dir))  # the smoke pair exists
    own_data = tmp_path / "data"
    shutil.copytree(data_dir, own_data)  # this test damages its own copy
    cfg = compose_train(["data.real_frac=0.5", "callbacks.last_checkpoint.every_n_train_steps=2",
                         "+callbacks.vandal._target_=tests.fault_helpers.BreakSourceImageAfterStep",
                         "+callbacks.vandal.step=2", f"+callbacks.vandal.how={how}"], tmp_path / "run", own_data)
    with pytest.raises(DatasetError, match=r"cannot read image .*gta5/images/.*\.png") as info:
        train(cfg)
    broken = next(p for p in (default_pair_root(own_data) / "gta5" / "images").iterdir() if p.name in str(info.value)) \
        if how == "truncate" else None
    assert broken is None or broken.stat().st_size == 100
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")  # saved at step 2, loads whole
    assert checkpoint["global_step"] > 0
    build_module(checkpoint)


@pytest.mark.slow
def test_jobs_starting_at_once_on_an_empty_cache_generate_the_dataset_once(tmp_path):
    """Three training jobs start together (as joblib or a SLURM array starts a sweep) with no dataset yet: one
    renders it, the others wait on the lock, all train on the complete set, and nothing half-written remains."""
    data_dir = tmp_path / "data"
    jobs = [subprocess.Popen(
        [sys.executable, "-m", "cyclesem.train", "+experiment=smoke", "logger=none", "trainer.fast_dev_run=true",
         f"paths.data_dir={data_dir}", f"hydra.run.dir={tmp_path / f'job{i}'}"],
        cwd=REPO, env={**os.environ, "WANDB_MODE": "disabled"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True) for i in range(3)]
    errors = [job.communicate(timeout=600)[1] for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0, 0], errors[0][-2000:]
    # the pair once, and (the smoke preset builds a missing one) the translation score's reference once beside it
    pair = default_pair_root(data_dir).name
    assert sorted(p.name for p in data_dir.iterdir()) == ["reference", pair, f"{pair}.lock"]
    assert len([p for p in (data_dir / "reference").iterdir() if p.is_dir()]) == 1
    assert len(list((default_pair_root(data_dir) / "gta5" / "images").glob("*.png"))) == 12  # the smoke preset's count
    assert all(json.loads((tmp_path / f"job{i}" / "metrics.json").read_text())["status"] == "completed"
               for i in range(3))
