"""A tiny multirun sweep end to end, then the report on its output."""

from __future__ import annotations

import csv
import json
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
