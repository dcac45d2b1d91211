"""The gap study's report command, as conf/experiment/gap_study.yaml's header gives it, on records of both its pairs:
the calibrated pair's groups and the appearance end's stay apart, and every comparison the issue asks for is there."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from cyclesem.report.__main__ import main
from tests.conftest import REPO
from tests.report.record_helpers import write_record

STUDY = "experiments/domain_gap/gap_study"


def documented_command() -> list[str]:
    """The `python -m cyclesem.report` line of the preset's header (with its continuation lines), as arguments."""
    header = [line[1:].strip() for line in (REPO / "conf/experiment/gap_study.yaml").read_text().splitlines()
              if line.startswith("#")]
    start = next(i for i, line in enumerate(header) if line.startswith(f"python -m cyclesem.report {STUDY}"))
    text = ""
    for line in header[start:]:
        text += " " + line.rstrip("\\").strip()
        if not line.endswith("\\"):
            break
    args = shlex.split(text)
    assert args[:4] == ["python", "-m", "cyclesem.report", STUDY]
    return args[4:]


def test_the_documented_gap_study_report_separates_the_pairs_and_compares_every_arm(tmp_path: Path) -> None:
    study = tmp_path / "gap_study"
    # mIoU by (method, shift, fraction), the same for every seed but for a seed offset (a seed is a labelled subset)
    cells = {("baseline", 0.25, 0.0): 0.13, ("oracle", 0.25, 0.0): 0.40, ("cyclesem_warm_unlabeled", 0.25, 0.0): 0.20,
             ("baseline", 0.25, 0.1): 0.30, ("target_only", 0.25, 0.1): 0.40, ("oracle", 0.25, 0.1): 0.50,
             ("target_only", 0.25, 0.05): 0.32, ("target_only", 0.25, 0.3): 0.50,
             ("baseline", 0.25, 0.3): 0.45,
             ("cyclesem_warm", 0.25, 0.1): 0.36, ("cyclesem", 0.25, 0.1): 0.33, ("cyclegan_warm", 0.25, 0.1): 0.35,
             ("baseline", 0.0, 0.1): 0.38, ("target_only", 0.0, 0.1): 0.41, ("oracle", 0.0, 0.1): 0.49}
    for (method, shift, frac), miou in cells.items():
        for seed in (0, 1, 2):
            write_record(study, method, frac, seed, miou + 0.01 * seed * (method == "cyclesem_warm"), shift,
                         experiment="gap_study")
    assert main([str(study), *documented_command(), "--no-wandb"]) == 0

    efficiency = json.loads((study / "efficiency.json").read_text())
    pairs = {(d["versus"], d["real_frac"]): d["mean"] for d in efficiency["paired_differences"]}
    assert pairs == {("baseline/0.25", 0.1): pytest.approx(0.07), ("target_only/0.25", 0.1): pytest.approx(-0.03)}
    further = {(d["method"], d["versus"], d["real_frac"]): d["mean"] for d in efficiency["further_paired_differences"]}
    assert further == {
        ("cyclesem_warm/0.25", "cyclegan_warm/0.25", 0.1): pytest.approx(0.02),
        ("cyclesem_warm/0.25", "cyclesem/0.25", 0.1): pytest.approx(0.04),
        ("oracle/0.25", "baseline/0.25", 0.0): pytest.approx(0.27), ("oracle/0.25", "baseline/0.25", 0.1): pytest.approx(0.20),
        ("cyclesem_warm_unlabeled/0.25", "baseline/0.25", 0.0): pytest.approx(0.07),
        ("oracle/0.0", "baseline/0.0", 0.1): pytest.approx(0.11), ("target_only/0.0", "baseline/0.0", 0.1): pytest.approx(0.03)}
    # data efficiency of cyclesem_warm's mean 0.37 against the baseline (0.30 at 10 %, 0.45 at 30 %: 10 + 20 · 7 / 15
    # = 19.3 %) and target_only (0.32 at 5 %, 0.40 at 10 %: 5 + 5 · 5 / 8 = 8.1 %) of the calibrated pair, never
    # the appearance end's
    (estimate,) = efficiency["estimates"]
    assert estimate["needed"] == pytest.approx(0.1 + 0.2 * 7 / 15)
    (against,) = efficiency["further_estimates"]
    assert against["baseline"] == "target_only/0.25" and against["estimates"][0]["needed"] == pytest.approx(0.05 + 0.05 * 5 / 8)
    summary = (study / "summary.md").read_text()
    rows = re.findall(r"^\| (baseline/[\d.]+) \| 10\.0 \| 3 \|", summary, flags=re.MULTILINE)
    assert rows[:2] == ["baseline/0.25", "baseline/0.0"]  # two groups: the compared one first, then the others
