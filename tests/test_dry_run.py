"""A study's dry run (cyclesem/study/dry_run.py) on the GTA5 / Cityscapes-layout fixtures: every job of gta5_study
composed and checked, the plan with its GPU-hours, and a broken path named with its job before anything runs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from cyclesem.data.prepare import main as prepare_main
from cyclesem.study.dry_run import dry_run
from tests.conftest import CONF_DIR, REPO
from tests.data.conftest import write_cityscapes_pair, write_gta5_pair

# gta5_study's cost table (conf/experiment/gta5_study.yaml): seconds per batch on one GPU
TABLE = {"cyclesem": 0.053, "cyclegan": 0.049, "baseline": 0.018, "target_only": 0.009}


N = 40  # the smallest labelled set in which 2.5 % is a real image (round(0.025 · 40) = 1): a CycleGAN needs one


@pytest.fixture
def study_overrides(tmp_path, gta5_root, cityscapes_root) -> list[str]:
    """gta5_study on the real-layout fixtures grown to N pairs a domain, after the recipe's first step wrote the clean
    GTA5 split; records, sweep and reference cache under tmp_path."""
    for index in range(4, N + 1):
        write_gta5_pair(gta5_root, f"{index:05d}", seed=index)
        write_cityscapes_pair(cityscapes_root, "train", "bremen", f"{index:06d}_000019", seed=index)
    assert prepare_main(["gta5", str(gta5_root), "--workers", "1"]) == 0
    assert len((gta5_root / "split_clean.txt").read_text().split()) > N  # N names and the header
    return ["+experiment=gta5_study", f"data.source.root={gta5_root}", f"data.target_train.root={cityscapes_root}",
            f"data.num_labeled={N}", f"study.dir={tmp_path / 'study'}", f"paths.data_dir={tmp_path / 'data'}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}", "study.dry_run=true"]


def test_dry_run_of_the_gta5_study_checks_every_job_and_prints_its_gpu_hours(study_overrides, tmp_path, capsys):
    """93 jobs of the 108 in the sweep (baseline 9 fractions, target_only 8, cyclesem and cyclegan 7, × 3 seeds), each
    of 100 epochs × ceil(N / 1) = 4000 batches; GPU-hours from the preset's table, 32 jobs at a time (the Slurm
    array's parallelism). One record already there: that job counts as done."""
    done = f"data.num_labeled={N},data.real_frac=0.1,experiment=gta5_study,method=baseline,seed=0"  # no root in it
    (tmp_path / "study" / "runs").mkdir(parents=True)
    (tmp_path / "study" / "runs" / f"{done}.json").write_text('{"status": "completed", "test": {"mIoU": 0.5}}')
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        config = GlobalHydra.instance().hydra.compose_config("train", study_overrides, run_mode=RunMode.MULTIRUN)
        HydraConfig.instance().set_config(config)
        status = dry_run(config, TABLE, parallel_jobs=config.hydra.launcher.array_parallelism)
    out = capsys.readouterr().out
    assert status == 0, out
    assert f"dry run of {tmp_path / 'sweep'}: 93 jobs (of 108 in the sweep), 1 done already, 92 to run" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split()
            and line.split()[0] in (*TABLE, "total")}
    hours = {m: 100 * N * TABLE[m] / 3600 for m in TABLE}  # one job's GPU-hours
    assert rows["cyclesem"] == ["21", "4,000", "0.053", f"{21 * hours['cyclesem']:.1f}"]
    assert rows["baseline"] == ["26", "4,000", "0.018", f"{26 * hours['baseline']:.1f}"]  # 27 less the done one
    assert rows["target_only"][:3] == ["24", "4,000", "0.009"] and rows["cyclegan"][:3] == ["21", "4,000", "0.049"]
    total = 21 * hours["cyclesem"] + 21 * hours["cyclegan"] + 26 * hours["baseline"] + 24 * hours["target_only"]
    assert rows["total"][:2] == ["92", f"{total:.1f}"] and "with 32 at a time" in out
    assert f"translation reference: not built yet in {tmp_path / 'data' / 'reference'}" in out
    assert "python -m cyclesem.reference data=gta5_cityscapes" in out
    assert "dry run passed" in out
    assert not (tmp_path / "sweep").exists() and not (tmp_path / "data").exists()  # nothing run, nothing written


def test_a_broken_path_in_one_job_is_named_with_the_job_before_anything_runs(study_overrides, tmp_path, gta5_root):
    """The CLI on a slice of the study whose second job names a split file that does not exist: that job stops with
    its key and the path named, the first passes; exit 2, and no sweep directory, Slurm submission or record."""
    missing = tmp_path / "nowhere" / "split_clean.txt"
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "cyclesem.train", "-m", *study_overrides, "method=baseline", "data.real_frac=0.1",
         "seed=0", f"data.source.split_file={gta5_root / 'split_clean.txt'},{missing}"],
        cwd=workdir, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "disabled"})
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "dry run FAILED: 1 of 2 jobs would stop before training" in proc.stdout, proc.stdout
    problems = [line for line in proc.stdout.splitlines() if line.startswith("  job ")]
    assert len(problems) == 1 and "method=baseline" in problems[0], problems
    assert problems[0].startswith(f"  job data.num_labeled={N},data.real_frac=0.1,data.source.split_file=_tmp_")
    assert problems[0].split(": ", 1)[0].endswith("_nowhere_split_clean.txt,experiment=gta5_study,method=baseline,seed=0")
    assert f"data.source.split_file={missing}: GTA5 split file {missing} does not exist" in problems[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "sweep").exists() and not (tmp_path / "study").exists()
    assert list(workdir.iterdir()) == []
