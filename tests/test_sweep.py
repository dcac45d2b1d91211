"""A tiny multirun sweep end to end, then the report on its output."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from cyclesem.report.__main__ import main as report_main
from cyclesem.runtime.config import validate
from cyclesem.study.run_record import method_of
from tests.conftest import REPO, compose_config


@pytest.mark.parametrize("experiment,fractions", [
    ("real_frac_sweep", "0.0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0"),
    ("real_frac_sweep_low", "0.0,0.01,0.02,0.05,0.1"),
])
def test_sweep_presets_list_their_grid(experiment, fractions, tmp_path):
    """The baseline runs at every fraction; cyclesem only where its CycleGAN has both domains (not 0 or 100 %)."""
    from hydra.core.hydra_config import HydraConfig

    from cyclesem.study.records import planned_jobs

    cfg = compose_config("train", [f"+experiment={experiment}"], tmp_path)
    params = HydraConfig.get().sweeper.params
    assert params["model"] == "cyclesem,baseline" and params["data.real_frac"] == fractions
    grid = {float(f) for f in fractions.split(",")}
    jobs = planned_jobs(cfg.study.plan)
    assert {f for m, f, s in jobs if m == "baseline" and s == 0} == grid
    assert {f for m, f, s in jobs if m == "cyclesem" and s == 0} == grid - {0.0, 1.0}


@pytest.mark.parametrize("experiment", ["real_frac_study", "real_frac_study_smoke", "real_frac_sweep",
                                        "real_frac_sweep_low"])
def test_every_planned_job_of_a_sweep_preset_passes_validation(experiment, tmp_path):
    """Each job the preset's plan keeps, composed as it will run, passes config validation (which refuses a
    CycleGAN method without both domains, e.g. cyclesem at 0 % real without unlabelled target images)."""
    jobs, _ = _plan([f"+experiment={experiment}"], tmp_path)
    assert jobs and [(j.key, j.invalid) for j in jobs if j.invalid] == []


@pytest.mark.slow
def test_tiny_sweep_and_report(tmp_path, data_dir):
    sweep_dir = tmp_path / "sweep"
    proc = subprocess.run(
        [sys.executable, "-m", "cyclesem.train", "-m", "+experiment=smoke", "model=cyclesem,baseline",
         "data.real_frac=0.25,0.5", "trainer.max_epochs=1", "logger=csv", f"paths.data_dir={data_dir}",
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
        (m, f, "completed") for m in ("cyclesem", "baseline") for f in (0.25, 0.5)}


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

    from cyclesem.study.records import planned_jobs

    jobs = planned_jobs(cfg.study.plan)
    assert {m for m, _, _ in jobs} == {"cyclesem", "cyclegan", "baseline", "target_only", "oracle", "cyclesem_unlabeled"}
    assert {s for m, f, s in jobs if (m, f) == ("cyclesem", 0.1)} == {0, 1, 2, 3, 4}  # 5 seeds where it matters
    assert {f for m, f, _ in jobs if m == "target_only"} >= {0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0}
    assert cfg.study.dir == "experiments/real_frac_study" and cfg.model.log_images_every_n_steps == 0
    assert cfg.threads == 1 and HydraConfig.get().launcher.n_jobs == (os.cpu_count() or 1)  # one job per core
    assert cfg.model.channels_last is False  # pinned with the threads: the study's records were run contiguous
    assert cfg.data.prepare.palette_shift == 1.0  # pinned: the first pair, whatever the default becomes
    assert ("oracle", 1.0) not in {(m, f) for m, f, _ in jobs}  # at 100 % real the oracle is target_only


def _plan(overrides: list[str], tmp_path):
    """The jobs `python -m cyclesem.train -m <overrides>` would run (cyclesem.study.sweep_progress.plan_sweep)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    from cyclesem.study.sweep_progress import plan_sweep
    from tests.conftest import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        config = GlobalHydra.instance().hydra.compose_config(
            "train", [*overrides, f"hydra.sweep.dir={tmp_path / 'sweep'}"], run_mode=RunMode.MULTIRUN)
        return plan_sweep(config)


def test_the_committed_v2_study_is_found_done_by_its_preset(tmp_path, monkeypatch):
    """Every job `+experiment=real_frac_study` plans has its committed record: resume_sweep=true runs nothing (the
    palette shift pinned in the preset is not an override, so no job key changed)."""
    monkeypatch.chdir(REPO)  # study.dir is relative to the repository
    jobs, swept = _plan(["+experiment=real_frac_study", "resume_sweep=true"], tmp_path)
    assert swept == 6 * 9 * 5 and len(jobs) == len(list((REPO / "experiments/real_frac_study/runs").glob("*.json")))
    assert [j.key for j in jobs if not j.done] == []


def test_gap_calibration_plans_source_only_and_target_only_per_palette_shift(tmp_path):
    jobs, swept = _plan(["+experiment=gap_calibration"], tmp_path)
    assert swept == 2 * 2 * 5
    assert sorted((j.method, j.real_frac) for j in jobs) == [("baseline", 0.0)] * 5 + [("target_only", 1.0)] * 5
    shifts = sorted(j.key.split("data.prepare.palette_shift=")[1].split(",")[0] for j in jobs if j.method == "baseline")
    assert shifts == ["0.0", "0.25", "0.5", "0.75", "1.0"] and {j.seed for j in jobs} == {0}
    assert {j.batches for j in jobs} == {2400} and not any(j.invalid for j in jobs)  # the v2 study's budget
    more, _ = _plan(["+experiment=gap_calibration", "seed=0,1,2", "data.prepare.palette_shift=0.0,1.0"], tmp_path)
    assert len(more) == 2 * 2 * 3
    cfg = compose_config("train", ["+experiment=gap_calibration", "data.prepare.palette_shift=0.5", "method=baseline",
                                   "data.real_frac=0.0", "paths.data_dir=data"], tmp_path)
    assert cfg.study.dir == "experiments/domain_gap/calibration" and cfg.threads == 1
    assert cfg.data.prepare.root == "data/synthetic_palette0.5" and cfg.data.target_test.split == "test"


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


def test_gap_study_plans_the_calibrated_pairs_study_with_its_warm_started_arms(tmp_path):
    jobs, _ = _plan(["+experiment=gap_study"], tmp_path)
    assert len(jobs) == 75 and not any(j.invalid for j in jobs) and {j.batches for j in jobs} == {2400}
    cells = {(j.method, j.real_frac) for j in jobs}
    seeds = lambda method, frac: {j.seed for j in jobs if (j.method, j.real_frac) == (method, frac)}  # noqa: E731
    for frac in (0.025, 0.05, 0.1, 0.3):
        assert {("baseline", frac), ("target_only", frac), ("oracle", frac), ("cyclesem_warm", frac)} <= cells
    assert seeds("cyclesem_warm", 0.1) == seeds("baseline", 0.1) == seeds("target_only", 0.1) == {0, 1, 2, 3, 4}
    assert seeds("cyclesem", 0.1) == seeds("cyclegan_warm", 0.1) == seeds("cyclesem_warm_unlabeled", 0.0) == {0, 1, 2}
    assert ("oracle", 1.0) not in cells and ("target_only", 0.0) not in cells
    assert {m for m, _ in cells} == {"baseline", "target_only", "oracle", "cyclesem_warm", "cyclesem", "cyclegan_warm",
                                     "cyclesem_warm_unlabeled"}
    cfg = compose_config("train", ["+experiment=gap_study", "method=cyclesem_warm_unlabeled", "data.real_frac=0.0",
                                   "paths.data_dir=data"], tmp_path)
    assert cfg.data.prepare.palette_shift == 0.25 and cfg.data.prepare.root == "data/synthetic_palette0.25"
    assert cfg.study.dir == "experiments/domain_gap/gap_study" and cfg.threads == 1
    assert cfg.model.warm_start is True and cfg.data.unlabeled_target is True
    assert method_of(cfg) == "cyclesem_warm_unlabeled"


def test_real_frac_study_warm_adds_the_warm_arm_to_the_v2_studys_records(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    jobs, _ = _plan(["+experiment=real_frac_study_warm", "resume_sweep=true"], tmp_path)
    assert sorted((j.method, j.real_frac, j.seed) for j in jobs) == [("cyclesem_warm", 0.1, s) for s in (0, 1, 2)]
    cfg = compose_config("train", ["+experiment=real_frac_study_warm", "method=cyclesem_warm"], tmp_path)
    assert cfg.study.dir == "experiments/real_frac_study" and cfg.data.prepare.palette_shift == 1.0
    assert cfg.model.warm_start is True and cfg.threads == 1


@pytest.mark.parametrize("preset", ["gap_study", "real_frac_study_warm", "real_frac_study"])
def test_the_study_presets_compile_the_warm_started_arms_and_no_other(preset, tmp_path):
    """compile's paired check (experiments/domain_gap/compile) came after every other arm had run contiguous: the
    warm-started arms, all run after it, are compiled; the others keep their records' setting; the command line
    still decides (the check's compiled twins)."""
    methods = ["baseline", "target_only", "oracle", "cyclesem", "cyclegan", "cyclesem_unlabeled", "cyclesem_warm",
               "cyclegan_warm", "cyclesem_warm_unlabeled"]
    compiled = {}
    for method in methods:
        cfg = compose_config("train", [f"+experiment={preset}", f"method={method}"], tmp_path)
        validate(cfg)
        compiled[method] = cfg.model.compile
    assert compiled == {m: m.endswith(("_warm", "_warm_unlabeled")) for m in methods}
    twin = compose_config("train", [f"+experiment={preset}", "method=cyclesem", "model.compile=true"], tmp_path)
    assert twin.model.compile is True


@pytest.mark.parametrize("preset", ["gap_study", "real_frac_study_warm"])
def test_the_warm_study_presets_read_the_committed_cache_their_warmup_command_writes(preset, tmp_path):
    """The warm studies read their reference segmenter and warm-ups from experiments/domain_gap/cache (committed with
    the records, so every job on any machine scores against one reference and loads one warm-up per seed), which
    the warm-up command in the preset's header writes; a smoke preset after it keeps its caches with its pair."""
    header = (REPO / f"conf/experiment/{preset}.yaml").read_text().splitlines()
    line = next(ln for ln in header if ln.lstrip("# ").startswith("python -m cyclesem.warmup "))
    overrides = line.split("python -m cyclesem.warmup", 1)[1].split("  #", 1)[0].split()
    assert "paths.cache_dir=experiments/domain_gap/cache" in overrides
    command = compose_config("warmup", overrides, tmp_path)
    job = compose_config("train", [f"+experiment={preset}", "method=cyclesem_warm", "data.real_frac=0.1"], tmp_path)
    assert job.warmup.cache_dir == command.warmup.cache_dir == "experiments/domain_gap/cache/warmup"
    assert job.reference.cache_dir == command.reference.cache_dir == "experiments/domain_gap/cache/reference"
    assert job.data.prepare.root == command.data.prepare.root
    smoke = compose_config("train", [f"+experiment=[{preset},smoke]", "paths.data_dir=/tmp/d"], tmp_path)
    assert smoke.warmup.cache_dir == "/tmp/d/warmup" and smoke.reference.cache_dir == "/tmp/d/reference"
