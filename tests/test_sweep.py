"""A tiny multirun sweep end to end, then the report on its output."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from cyclesem.report.__main__ import main as report_main
from tests.conftest import REPO, compose_config


@pytest.mark.parametrize("experiment,fractions", [
    ("real_frac_sweep", "0.0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0"),
    ("real_frac_sweep_low", "0.0,0.01,0.02,0.05,0.1"),
])
def test_sweep_presets_list_their_grid(experiment, fractions, tmp_path):
    from hydra.core.hydra_config import HydraConfig

    compose_config("train", [f"+experiment={experiment}"], tmp_path)
    params = HydraConfig.get().sweeper.params
    assert params["model"] == "cyclesem,baseline" and params["data.real_frac"] == fractions


@pytest.mark.slow
def test_tiny_sweep_and_report(tmp_path, data_dir):
    sweep_dir = tmp_path / "sweep"
    proc = subprocess.run(
        [sys.executable, "-m", "cyclesem.train", "-m", "+experiment=smoke", "model=cyclesem,baseline",
         "data.real_frac=0.0,0.5", "trainer.max_epochs=1", "logger=csv", f"paths.data_dir={data_dir}",
         f"hydra.sweep.dir={sweep_dir}"],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p.name for p in sweep_dir.iterdir() if p.is_dir())
    assert len(jobs) == 4 and all((sweep_dir / j / "metrics.json").is_file() for j in jobs)
    assert any("model=baseline" in j and "data.real_frac=0.5" in j for j in jobs)  # readable job dirs

    assert report_main([str(sweep_dir), "--no-wandb"]) == 0
    for name in ("results.csv", "summary.md", "curves.png"):
        assert (sweep_dir / name).stat().st_size > 0, name
    rows = list(csv.DictReader((sweep_dir / "results.csv").open()))
    assert {(r["method"], float(r["real_frac"]), r["status"]) for r in rows} == {
        (m, f, "completed") for m in ("cyclesem", "baseline") for f in (0.0, 0.5)}


@pytest.mark.slow
def test_resume_sweep_skips_completed_jobs_and_resumes_interrupted_ones(tmp_path, data_dir):
    sweep_dir = tmp_path / "sweep"
    command = [sys.executable, "-m", "cyclesem.train", "-m", "+experiment=smoke", "model=baseline",
               "data.real_frac=0.0,0.5", "trainer.max_epochs=1", "logger=none", f"paths.data_dir={data_dir}",
               f"hydra.sweep.dir={sweep_dir}"]
    assert subprocess.run(command, cwd=REPO, capture_output=True, timeout=900).returncode == 0
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    finished = (jobs[0] / "metrics.json").stat().st_mtime_ns
    (jobs[1] / "metrics.json").unlink()  # as if this job had been killed after its last checkpoint
    proc = subprocess.run([*command, "resume_sweep=true"],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("already completed, skipping") == 1
    assert (jobs[0] / "metrics.json").stat().st_mtime_ns == finished
    assert json.loads((jobs[1] / "metrics.json").read_text())["status"] == "completed"
    assert "Restored all states from the checkpoint" in proc.stderr + proc.stdout


def run_study(sweep_dir, study_dir, data_dir, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cyclesem.train", "-m", "+experiment=real_frac_study_smoke", "logger=none",
         f"paths.data_dir={data_dir}", f"hydra.sweep.dir={sweep_dir}", f"study.dir={study_dir}", *extra],
        cwd=REPO, capture_output=True, text=True, timeout=900, env={**os.environ, "WANDB_MODE": "disabled"},
    )


def test_a_job_key_names_what_a_job_computes_not_where_its_data_is():
    from cyclesem.study.records import job_key

    job = ["method=baseline", "data.real_frac=0.1", "seed=0", "+experiment=gta5_study"]
    key = job_key(job)
    assert key == "data.real_frac=0.1,experiment=gta5_study,method=baseline,seed=0"
    assert job_key([*job, "data.source.root=/a/gta5", "data.target_train.root=/b/cityscapes", "paths.data_dir=/c",
                    "study.dry_run=true", "hydra/launcher=slurm_gpu"]) == key
    assert job_key([*job, "data.num_labeled=3"]) != key  # what it computes


def test_study_preset_lists_the_comparison_set(tmp_path):
    cfg = compose_config("train", ["+experiment=real_frac_study"], tmp_path)
    from hydra.core.hydra_config import HydraConfig

    from cyclesem.runtime.config import jobs_per_machine
    from cyclesem.study.records import planned_jobs

    jobs = planned_jobs(cfg.study.plan)
    assert {m for m, _, _ in jobs} == {"cyclesem", "cyclegan", "baseline", "target_only", "oracle", "cyclesem_unlabeled"}
    assert {s for m, f, s in jobs if (m, f) == ("cyclesem", 0.1)} == {0, 1, 2, 3, 4}  # 5 seeds where it matters
    assert {f for m, f, _ in jobs if m == "target_only"} >= {0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0}
    assert cfg.study.dir == "experiments/real_frac_study" and cfg.model.log_images_every_n_steps == 0
    assert cfg.threads == 1 and HydraConfig.get().launcher.n_jobs == jobs_per_machine(1)
    assert cfg.model.channels_last is False  # pinned with the threads: the study's records were run contiguous


@pytest.mark.slow
def test_study_smoke_end_to_end_resumes_from_committed_records_only(tmp_path, data_dir):
    """The study preset on the tiny pair: only the planned jobs run, each leaves a record, the report rebuilds
    everything from the records; then, as in a fresh clone after an interrupted study (two records missing, no
    sweep directory), resume_sweep=true runs exactly the two missing jobs."""
    study = tmp_path / "study"
    proc = run_study(tmp_path / "sweep1", study, data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = sorted(p.name for p in (study / "runs").glob("*.json"))
    assert len(records) == 6  # 3 methods × 1 fraction × 2 seeds of the 12 the sweep lists
    assert all("data.real_frac=0.5" in r for r in records)
    # the jobs outside the plan left no directory behind (the report on the sweep dir would list them as missing)
    assert sorted(p.name.split("_", 1)[1] for p in (tmp_path / "sweep1").iterdir() if p.is_dir()) == sorted(
        f"data.real_frac=0.5,method={m},seed={s}" for m in ("cyclesem", "baseline", "target_only") for s in (0, 1))

    assert report_main([str(study), "--no-wandb"]) == 0
    groups = {r["method"]: r for r in csv.DictReader((study / "groups.csv").open())}
    assert set(groups) == {"cyclesem", "baseline", "target_only"} and {g["n"] for g in groups.values()} == {"2"}
    assert json.loads((study / "efficiency.json").read_text())["paired_differences"]

    removed = records[:2]
    for name in removed:
        (study / "runs" / name).unlink()
    proc = run_study(tmp_path / "sweep2", study, data_dir, "resume_sweep=true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    trained = [p for p in (tmp_path / "sweep2").iterdir() if (p / "metrics.json").is_file()]
    assert len(trained) == 2 and sorted(p.name for p in (study / "runs").glob("*.json")) == records
