"""Errors before anything starts: one line naming the key, the path and the expectation, exit code 2, and
nothing written in the working directory (no run directory, W&B run or metrics.json)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.data.conftest import write_gta5_pair


def run_entry_point(name: str, args: list[str], cwd, env_drop: tuple[str, ...] = ("GTA5_ROOT", "CITYSCAPES_ROOT")):
    env = {k: v for k, v in os.environ.items() if k not in env_drop}
    env["PYTHONPATH"] = str(REPO)  # this checkout's package, run from another directory
    return subprocess.run([sys.executable, "-m", f"cyclesem.{name}", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def gta5_roots(tmp_path):
    """{tmp}/gta5_empty (images/ and labels/ without files) and {tmp}/gta5 (one pair)."""
    (tmp_path / "gta5_empty" / "images").mkdir(parents=True)
    (tmp_path / "gta5_empty" / "labels").mkdir()
    write_gta5_pair(tmp_path / "gta5", "00001")


CASES = {
    "gta5 root unset": ("train", ["data=gta5_cityscapes"], "data.source.root is not set"),
    "gta5 root missing": ("train", ["data=gta5_cityscapes", "data.source.root={tmp}/missing"],
                          "data.source.root={tmp}/missing: GTA5 root {tmp}/missing does not exist; expected ROOT/images"),
    "gta5 root empty": ("train", ["data=gta5_cityscapes", "data.source.root={tmp}/gta5_empty"],
                        "data.source.root={tmp}/gta5_empty: GTA5: no *.png images in {tmp}/gta5_empty/images"),
    "cityscapes root missing": ("train", ["data=gta5_cityscapes", "data.source.root={tmp}/gta5",
                                          "data.target_train.root={tmp}/missing"],
                                "data.target_train.root={tmp}/missing: Cityscapes root {tmp}/missing does not exist"),
    "labelled set too large": ("train", ["+experiment=smoke", "paths.data_dir={data}", "data.num_labeled=40",
                                         "data.real_frac=0.8"],
                               "data.num_labeled=40 at data.real_frac=0.8 needs 32 labelled target_train images but "
                               "data.target_train.root={data}/synthetic_palette0.25/cityscapes holds 12"),
    "train checkpoint missing": ("train", ["ckpt_path={tmp}/missing.ckpt"],
                                 "ckpt_path={tmp}/missing.ckpt does not exist: expected a checkpoint file"),
    "reference checkpoint missing": ("train", ["+experiment=smoke", "paths.data_dir={data}",
                                              "reference.checkpoint={tmp}/missing.ckpt"],
                                     "reference.checkpoint={tmp}/missing.ckpt does not exist: expected the weights"),
    "resume without its run": ("train", ["ckpt_path=last"], "ckpt_path=last: outputs/"),
    "sweep preset without -m": ("train", ["+experiment=real_frac_sweep"],
                                "+experiment=real_frac_sweep is a sweep (model, data.real_frac, seed) but this is a "
                                "single run, which would train one default job: expected -m"),
    "dry run without -m": ("train", ["study.dry_run=true"],
                           "study.dry_run=true checks the jobs of a sweep but this is a single run: expected -m"),
    "evaluate checkpoint missing": ("evaluate", ["ckpt_path={tmp}/missing.ckpt"], "ckpt_path={tmp}/missing.ckpt does not exist"),
    "evaluate data root unset": ("evaluate", ["ckpt_path={tmp}/fake.ckpt", "data=gta5_cityscapes"],
                                 "data.target_val.root is not set"),
    "predict empty folder": ("predict", ["ckpt_path={tmp}/fake.ckpt", "input_dir={tmp}/gta5_empty",
                                         "output_dir=predictions"], "input_dir={tmp}/gta5_empty holds no .png/.jpg images"),
    "export checkpoint missing": ("export", ["ckpt_path={tmp}/missing.ckpt"], "ckpt_path={tmp}/missing.ckpt does not exist"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_preflight_error_is_one_line_exit_2_and_writes_nothing(case, tmp_path, data_dir, gta5_roots):
    name, args, message = CASES[case]
    (tmp_path / "fake.ckpt").write_bytes(b"exists; never read before the error")
    fill = {"tmp": tmp_path, "data": data_dir}
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    before = sorted(workdir.rglob("*"))
    proc = run_entry_point(name, [a.format(**fill) for a in args] + ["logger=none"] * (name == "train"), workdir)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("Config error: ") and message.format(**fill) in lines[0], lines[0]
    assert sorted(workdir.rglob("*")) == before == []  # no outputs/, wandb/, metrics.json, predictions/
