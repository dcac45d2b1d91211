"""The Hydra launcher presets in conf/hydra/launcher: what they compose to, the sbatch script the Slurm one
would submit, and real two-job sweeps through the local ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig

from tests.conftest import CONF_DIR, REPO


def compose_launcher(overrides: list[str]) -> DictConfig:
    """train.yaml with its hydra node, resolved; returns hydra.launcher."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    return cfg.hydra.launcher


def test_slurm_preset_asks_one_gpu_per_job_and_leaves_the_cluster_fields_to_the_user():
    launcher = compose_launcher(["hydra/launcher=slurm_gpu", "hydra.sweep.dir=/sweeps/s1"])
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (1, 1, 1)
    assert launcher.cpus_per_task == 8 and launcher.mem_gb == 64 and launcher.timeout_min == 1440
    assert launcher.partition is None and launcher.account is None
    assert launcher.array_parallelism == 32 and launcher.max_num_timeout == 0
    assert launcher.submitit_folder == "/sweeps/s1/.submitit/%j"


def test_local_and_parallel_presets():
    local = compose_launcher(["hydra/launcher=local", "hydra.sweep.dir=/sweeps/s1"])
    assert local._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"
    assert (local.gpus_per_node, local.tasks_per_node, local.timeout_min) == (1, 1, 1440)
    assert local.submitit_folder == "/sweeps/s1/.submitit/%j"
    parallel = compose_launcher(["hydra/launcher=parallel"])
    assert parallel._target_ == "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    assert parallel.n_jobs == 2 and parallel.prefer == "processes"
    assert compose_launcher(["hydra/launcher=parallel", "hydra.launcher.n_jobs=4"]).n_jobs == 4


def test_slurm_preset_becomes_the_sbatch_script_we_expect(tmp_path, monkeypatch):
    """Run the plugin's launch() up to submission: submitit checks every parameter name and writes the script."""
    import submitit
    from submitit.slurm.slurm import SlurmExecutor

    launcher = instantiate(compose_launcher([
        "hydra/launcher=slurm_gpu", "hydra.launcher.partition=gpu", "hydra.launcher.account=proj",
        f"hydra.sweep.dir={tmp_path}"]))
    scripts: list[str] = []

    class Submitted:  # what map_array returns: a job whose results() we can read
        def results(self):
            return ["done"]

    def capture(executor, fn, *job_args):
        scripts.append(executor._executor._make_submission_file_text("python -m cyclesem.train", "uid"))
        return [Submitted() for _ in job_args[0]]

    monkeypatch.setattr(SlurmExecutor, "affinity", classmethod(lambda cls: 2))  # pretend srun is installed
    monkeypatch.setattr(submitit.AutoExecutor, "map_array", capture)
    launcher.setup(hydra_context=None, task_function=None,
                   config=DictConfig({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    assert launcher.launch([["data.real_frac=0.0"], ["data.real_frac=1.0"]], initial_job_idx=0) == ["done"] * 2
    lines = set(scripts[0].splitlines())
    for option in ("--partition=gpu", "--account=proj", "--gpus-per-node=1", "--ntasks-per-node=1",
                   "--cpus-per-task=8", "--mem=64GB", "--time=1440", "--nodes=1", "--signal=USR2@120"):
        assert f"#SBATCH {option}" in lines, (option, scripts[0])
    assert f"#SBATCH --output={tmp_path}/.submitit/%j/%j_0_log.out" in lines


def run_tiny_sweep(launcher: list[str], sweep_dir: Path, data_dir: Path) -> subprocess.CompletedProcess:
    """The 2-job smoke sweep of tests/test_sweep.py, through a launcher preset."""
    return subprocess.run(
        [sys.executable, "-m", "cyclesem.train", "-m", "+experiment=smoke", "data.real_frac=0.0,1.0",
         "model=baseline", "logger=none", f"paths.data_dir={data_dir}", f"hydra.sweep.dir={sweep_dir}", *launcher],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"},
    )


def assert_two_completed_jobs(sweep_dir: Path) -> None:
    records = {p.name: json.loads((p / "metrics.json").read_text())
               for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith(".")}
    assert sorted(records) == ["0_data.real_frac=0.0,model=baseline", "1_data.real_frac=1.0,model=baseline"]
    assert [(r["status"], r["method"], r["real_frac"]) for _, r in sorted(records.items())] == [
        ("completed", "baseline", 0.0), ("completed", "baseline", 1.0)]


@pytest.mark.slow
def test_sweep_through_submitit_local(tmp_path, data_dir):
    sweep_dir = tmp_path / "sweep"
    proc = run_tiny_sweep(["hydra/launcher=local", "hydra.launcher.gpus_per_node=0"], sweep_dir, data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_two_completed_jobs(sweep_dir)
    # each job's stdout/stderr lands in <sweep dir>/.submitit/<job id>/; gpus_per_node=0 hid any GPU
    logs = sorted((sweep_dir / ".submitit").glob("*/*_0_log.err"))
    assert len(logs) == 2 and all("GPU available: False" in log.read_text() for log in logs)
    outs = "".join(p.read_text() for p in (sweep_dir / ".submitit").glob("*/*_0_log.out"))
    assert "baseline real_frac=0.0: fwIoU=" in outs and "baseline real_frac=1.0: fwIoU=" in outs


@pytest.mark.slow
def test_sweep_through_joblib_in_parallel(tmp_path, data_dir):
    sweep_dir = tmp_path / "sweep"
    proc = run_tiny_sweep(["hydra/launcher=parallel"], sweep_dir, data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2," in proc.stdout + proc.stderr
    assert_two_completed_jobs(sweep_dir)


@pytest.mark.slow
def test_side_by_side_jobs_pin_their_threads_and_match_a_job_run_alone(tmp_path, data_dir):
    """Two 1-thread jobs at once through hydra/launcher=side_by_side score exactly what the same job scores
    alone with one thread, and record the thread count they ran with."""
    common = ["+experiment=smoke", "logger=none", "model=baseline", "trainer.max_epochs=1", "threads=1",
              f"paths.data_dir={data_dir}"]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    sweep = subprocess.run([sys.executable, "-m", "cyclesem.train", "-m", *common, "hydra/launcher=side_by_side",
                            "data.real_frac=0.25,0.5", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                           cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    alone = subprocess.run([sys.executable, "-m", "cyclesem.train", *common, "data.real_frac=0.5",
                            f"hydra.run.dir={tmp_path / 'alone'}"], cwd=REPO, capture_output=True, text=True,
                           timeout=600, env=env)
    assert alone.returncode == 0, alone.stderr[-3000:]
    records = {json.loads(p.read_text())["real_frac"]: json.loads(p.read_text())
               for p in (tmp_path / "sweep").glob("*/metrics.json")}
    single = json.loads((tmp_path / "alone" / "metrics.json").read_text())
    assert sorted(records) == [0.25, 0.5]
    assert all(r["threads"] == {"intra_op": 1, "inter_op": 1} for r in (*records.values(), single))
    assert records[0.5]["test"] == single["test"] and records[0.5]["val"] == single["val"]


def test_side_by_side_runs_as_many_jobs_as_cores_per_job():
    from cyclesem.runtime.config import jobs_per_machine

    launcher = compose_launcher(["hydra/launcher=side_by_side", "threads=1"])
    assert launcher.n_jobs == jobs_per_machine(1) == (os.cpu_count() or 1)
    assert jobs_per_machine(None) == 1 and jobs_per_machine(64 * (os.cpu_count() or 1)) == 1
