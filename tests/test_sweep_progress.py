"""A multirun's plan, progress lines and time left (cyclesem/study/sweep_progress.py)."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode

from cyclesem.runtime.config import ConfigError
from cyclesem.study.records import record_path
from cyclesem.study.sweep_progress import (
    PlannedJob,
    estimate_seconds,
    job_finished,
    log_to_wandb,
    plan_sweep,
    seconds_per_batch,
    start,
)
from tests.conftest import CONF_DIR
from tests.test_sweep import run_study

TABLE = {"cyclesem": 0.77, "baseline": 0.38, "target_only": 0.23}


def test_plan_and_cost_model_of_a_study_slice(tmp_path):
    """real_frac_study narrowed on the command line: 2 methods × 2 fractions × 3 seeds = 12 jobs, of which the
    plan keeps 10 (seed 3 only at 10 %), each 48 epochs × ceil(200 / 4) = 2400 batches; one has a record."""
    study_dir = tmp_path / "study"
    key = "data.real_frac=0.1,experiment=real_frac_study,method=cyclesem,seed=3"
    record_path(study_dir, key).parent.mkdir(parents=True)
    record_path(study_dir, key).write_text(json.dumps({"status": "completed", "test": {"mIoU": 0.5}}))
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        config = GlobalHydra.instance().hydra.compose_config(
            "train", ["+experiment=real_frac_study", "method=baseline,cyclesem", "data.real_frac=0.1,0.3",
                      "seed=0,1,3", f"study.dir={study_dir}", "resume_sweep=true",
                      f"hydra.sweep.dir={tmp_path / 'sweep'}"], run_mode=RunMode.MULTIRUN)
        jobs, swept = plan_sweep(config)
    assert swept == 12 and len(jobs) == 10 and {j.batches for j in jobs} == {2400}
    assert [j.key for j in jobs if j.done] == [key]
    # 5 baseline and 4 cyclesem jobs to run, two at a time: (5 · 0.38 + 4 · 0.77) · 2400 / 2 = 5976 s
    pending = [(j.method, j.batches) for j in jobs if not j.done]
    assert estimate_seconds(pending, TABLE, parallel_jobs=2) == pytest.approx(5976)
    assert start(tmp_path / "sweep", jobs, swept, TABLE, parallel_jobs=2) == (
        "sweep: 10 jobs (of 12 in the sweep), 1 done already, 9 to run 2 at a time: ~1h39m left (cost model)")


def test_measured_jobs_replace_the_table():
    finished = [("baseline", 2400, 960.0)]  # 0.4 s per batch: the table's 0.38 × 400/380
    assert seconds_per_batch("baseline", TABLE, finished) == pytest.approx(0.4)
    assert seconds_per_batch("cyclesem", TABLE, finished) == pytest.approx(0.77 * 0.4 / 0.38)
    assert seconds_per_batch("oracle", TABLE, finished) == pytest.approx(0.77 * 0.4 / 0.38)  # not in the table
    assert estimate_seconds([("baseline", 100), ("baseline", 300)], TABLE, 4, finished) == pytest.approx(80)


def test_each_job_is_counted_once_and_its_w_and_b_run_gets_the_progress(tmp_path):
    jobs = [PlannedJob("a", "baseline", 0.1, 0, 100), PlannedJob("b", "baseline", 0.1, 1, 100, done=True),
            PlannedJob("c", "target_only", 0.0, 0, 100, invalid="data.real_frac=0.0 is out of range"),
            PlannedJob("d", "cyclesem", 0.1, 0, 100)]
    start(tmp_path, jobs, 8, TABLE, parallel_jobs=1)
    first = job_finished(tmp_path, "a", {"wall_time_s": 50.0, "test": {"mIoU": 0.25}})
    assert job_finished(tmp_path, "a", {"wall_time_s": 50.0, "test": {"mIoU": 0.25}}) == first  # W&B, then Hydra
    assert (first.index, first.total) == (2, 4)  # the resumed job counts as done
    assert first.eta_s == pytest.approx(100 * 0.77 * 0.5 / 0.38)  # cyclesem left, scaled by baseline's 0.5 s/batch
    assert re.fullmatch(r"job 2/4 baseline real_frac=0.1 seed=0: test mIoU=0.2500 in 50s; \d+s elapsed, ~1m41s left",
                        first.line()), first.line()
    assert job_finished(tmp_path, "b", None) is None and job_finished(tmp_path, "outside the plan", None) is None
    failed = job_finished(tmp_path, "c", None, ConfigError("data.real_frac=0.0 is out of range"))
    assert failed.index == 3 and "failed (ConfigError)" in failed.line()
    last = job_finished(tmp_path, "d", {"wall_time_s": 80.0, "val": {"mIoU": 0.5}, "test": {}})
    assert last.line().endswith("sweep done") and "val mIoU=0.5000" in last.line()

    run = SimpleNamespace(summary={})
    log_to_wandb(last, run)
    assert run.summary["sweep/job_index"] == run.summary["sweep/jobs_total"] == 4 and run.summary["sweep/eta_s"] == 0


@pytest.mark.slow
def test_tiny_study_sweep_prints_its_plan_and_one_line_per_job(tmp_path, data_dir):
    """The smoke study narrowed to 4 jobs, 2 of them in the plan, on the side_by_side launcher (the lines come
    from its worker processes); then, one record removed, a resumed sweep counts the other as done."""
    study = tmp_path / "study"
    narrowed = ("method=baseline,target_only", "seed=0")
    proc = run_study(tmp_path / "sweep1", study, data_dir, *narrowed)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "sweep: 2 jobs (of 4 in the sweep), 0 done already, 2 to run" in proc.stdout
    lines = sorted(re.findall(r"^job \d/2 .*$", proc.stdout, re.MULTILINE))
    assert [line[:8] for line in lines] == ["job 1/2 ", "job 2/2 "], proc.stdout[-3000:]
    assert all("real_frac=0.5 seed=0: test mIoU=" in line for line in lines)
    assert lines[-1].endswith("sweep done")

    (study / "runs" / "data.real_frac=0.5,experiment=real_frac_study_smoke,method=target_only,seed=0.json").unlink()
    proc = run_study(tmp_path / "sweep2", study, data_dir, *narrowed, "resume_sweep=true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "sweep: 2 jobs (of 4 in the sweep), 1 done already, 1 to run 1 at a time" in proc.stdout
    job_lines = re.findall(r"^job .*$", proc.stdout, re.MULTILINE)
    assert len(job_lines) == 1 and job_lines[0].startswith("job 2/2 target_only real_frac=0.5 seed=0: test mIoU=")
