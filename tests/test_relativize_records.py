"""Committed records name no machine's folders: the one-off rewrite changes no score and no job key, and new
records are written with portable paths."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from cyclesem.study.records import job_key, read_record, record_path
from cyclesem.study.relativize_records import main
from cyclesem.study.run_record import REPOSITORY, portable_override, portable_path
from tests.conftest import REPO

EXPERIMENTS = REPO / "experiments"
MACHINE_PATH = re.compile(r'"[^"]*(?<![\w.])/(work|tmp|home|root|Users|scratch)/')
# what the committed records held before the rewrite, one of each kind: a study job record, a pilot record with
# a paths.data_dir override and absolute splits, a translation script's record, a copied metrics.json
BEFORE = {
    "real_frac_study/runs/job.json": {
        "job": "data.real_frac=0.1,experiment=real_frac_study,method=cyclesem,seed=0", "status": "completed",
        "overrides": ["+experiment=real_frac_study", "method=cyclesem", "data.real_frac=0.1", "seed=0"],
        "test": {"mIoU": 0.38911, "fwIoU": 0.7012345678901234}, "val": {"mIoU": 0.4},
        "test_checkpoint": "best val/mIoU (/work/wt-study/multirun/2026-12-02/10-45-55-159365/"
                           "0_data.real_frac=0.1,method=cyclesem,seed=0/checkpoints/best-epoch047.ckpt)",
        "selection_split": "data/synthetic/cityscapes/val", "test_split": "data/synthetic/cityscapes/test",
        "wall_time_s": 1234.5, "seed": 0, "real_frac": 0.1},
    "budget_pilot/runs/pilot.json": {
        "job": "data.real_frac=0.1,experiment=budget_pilot,method=baseline,seed=0", "status": "completed",
        "overrides": ["+experiment=budget_pilot", "paths.data_dir=/work/main/data", "method=baseline",
                      "data.real_frac=0.1", "seed=0"],
        "test": {"mIoU": 0.335, "iou_motorcycle": float("nan")}, "selection_split": "/work/main/data/synthetic/cityscapes/val",
        "test_checkpoint": "best val/mIoU (/work/pilot/sweep/2_data.real_frac=0.1,method=baseline,seed=0/"
                           "checkpoints/best-epoch015.ckpt)", "test_split": "/work/main/data/synthetic/cityscapes/test"},
    "translation/runs/plain.json": {"args": {"name": "plain", "out": "/work/main/experiments/translation/runs",
                                             "data": "data/synthetic", "lr": 0.0002},
                                    "history": [{"step": 250, "translation_gain": 0.06546752622756233}]},
    "default_run/metrics.json": {"status": "completed", "val": {"mIoU": 0.26200446486473083},
                                 "best_checkpoint": "/tmp/e_cyclesem/checkpoints/best-epoch005.ckpt",
                                 "last_checkpoint": "/tmp/e_cyclesem/checkpoints/last.ckpt",
                                 "test_checkpoint": "last (no selection)"},
}
CHECKOUTS = ["--checkout", "/work/main", "--checkout", "/work/wt-study"]


def leaves(value: Any, where: str = "") -> dict[str, Any]:
    """Every leaf of a JSON value by its path: what the rewrite may change is the strings, nothing else."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in leaves(item, f"{where}.{key}").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in leaves(item, f"{where}[{i}]").items()}
    return {where: value}


def write_samples(tmp_path: Path) -> dict[Path, dict]:
    written = {}
    for name, record in BEFORE.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1, sort_keys=name.startswith(("real", "budget"))) + "\n")
        written[path] = record
    return written


def test_rewrite_makes_paths_relative_and_changes_no_score(tmp_path: Path) -> None:
    samples = write_samples(tmp_path)
    assert main([str(tmp_path), *CHECKOUTS]) == 0
    for path, before in samples.items():
        after = json.loads(path.read_text())
        old, new = leaves(before), leaves(after)
        assert old.keys() == new.keys()
        # every score, bit for bit (repr: a record's NaN IoU of an absent class equals itself)
        assert {k: repr(v) for k, v in old.items() if not isinstance(v, str)} == \
            {k: repr(v) for k, v in new.items() if not isinstance(v, str)}, path
        assert not MACHINE_PATH.search(path.read_text()), path.read_text()
        if "overrides" in after:  # resume_sweep finds the job by this key: it must not move
            assert job_key(after["overrides"]) == job_key(before["overrides"]) == after["job"]
    study, pilot, script, metrics = (json.loads((tmp_path / name).read_text()) for name in BEFORE)
    assert study["test_checkpoint"] == "best val/mIoU (checkpoints/best-epoch047.ckpt)"
    assert pilot["selection_split"] == "data/synthetic/cityscapes/val"
    assert pilot["test_split"] == "data/synthetic/cityscapes/test" and "paths.data_dir=data" in pilot["overrides"]
    assert script["args"]["out"] == "experiments/translation/runs"
    assert (metrics["best_checkpoint"], metrics["last_checkpoint"]) == ("checkpoints/best-epoch005.ckpt",
                                                                        "checkpoints/last.ckpt")
    texts = {path: path.read_text() for path in samples}
    assert main([str(tmp_path), *CHECKOUTS]) == 0  # idempotent
    assert {path: path.read_text() for path in samples} == texts


def test_a_path_it_cannot_place_leaves_the_file_as_it_was(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    samples = write_samples(tmp_path)
    before = {path: path.read_text() for path in samples}
    assert main([str(tmp_path), "--checkout", "/work/wt-study"]) == 1  # /work/main is not given
    assert "cannot place /work/main/data" in capsys.readouterr().err
    pilot = tmp_path / "budget_pilot/runs/pilot.json"
    assert pilot.read_text() == before[pilot]


def test_no_committed_record_holds_a_machine_path() -> None:
    files = sorted(EXPERIMENTS.rglob("*.json"))
    assert len(files) > 150
    assert not [str(p.relative_to(REPO)) for p in files if MACHINE_PATH.search(p.read_text())]


@pytest.mark.parametrize("study", sorted({p.parent.parent for p in EXPERIMENTS.glob("**/runs/*.json")
                                          if p.name.startswith("data.")}), ids=lambda p: str(p.relative_to(REPO)))
def test_resume_sweep_still_finds_every_committed_study_job_done(study: Path) -> None:
    for path in sorted((study / "runs").glob("*.json")):
        record = json.loads(path.read_text())
        assert record_path(study, job_key(record["overrides"])) == path  # the key a rerun of the job computes
        assert read_record(path) is not None


def test_new_records_store_portable_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "multirun" / "0_seed=0"
    assert portable_path(run / "checkpoints" / "best-epoch047.ckpt", run) == "checkpoints/best-epoch047.ckpt"
    assert portable_path(REPOSITORY / "data" / "synthetic" / "cityscapes" / "val") == "data/synthetic/cityscapes/val"
    assert portable_path("data/synthetic/cityscapes/test") == "data/synthetic/cityscapes/test"
    monkeypatch.setenv("CITYSCAPES_ROOT", str(tmp_path / "datasets" / "cityscapes"))
    assert portable_path(tmp_path / "datasets" / "cityscapes" / "val") == "$CITYSCAPES_ROOT/val"
    assert portable_path("/mnt/a/b/synthetic_pavement0.3/cityscapes/val") == ".../synthetic_pavement0.3/cityscapes/val"
    assert portable_override(f"paths.data_dir={REPOSITORY / 'data'}") == "paths.data_dir=data"
    assert portable_override("model.loss.seg_source_rule=anneal") == "model.loss.seg_source_rule=anneal"
