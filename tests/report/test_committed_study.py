"""The committed study's tables are what `cyclesem.report` makes of its committed job records, and the README's
results grid is the one in the study's summary.md: no number in them can be edited by hand or go stale."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from cyclesem.report.__main__ import main

REPO = Path(__file__).resolve().parents[2]
STUDY = Path("experiments/real_frac_study")
TABLES = ("summary.md", "groups.csv", "efficiency.json", "results.csv")

# Each committed report folder and the command (README "Results", experiments/real_frac_study/README.md) that made it.
REPORTS = {
    STUDY: ["--method", "cyclesem", "--compare", "oracle:cyclesem", "--compare", "cyclesem_unlabeled:baseline"],
    STUDY / "questions/class_weights": ["--include", str(STUDY), "--group-by", "method,class_weights",
                                        "--method", "cyclesem/none", "--baseline", "cyclesem/median",
                                        "--compare", "baseline/none:baseline/median",
                                        "--compare", "cyclesem/inverse:cyclesem/median",
                                        "--compare", "baseline/inverse:baseline/median"],
    STUDY / "questions/seg_source_rule": ["--include", str(STUDY), "--group-by", "method,seg_source_rule",
                                          "--method", "cyclesem/anneal", "--baseline", "cyclesem/constant",
                                          "--compare", "cyclesem/anneal:target_only/constant",
                                          "--compare", "cyclesem/anneal:baseline/constant",
                                          "--compare", "cyclesem/labelled_share:cyclesem/constant"],
    STUDY / "questions/pavement": ["--include", str(STUDY), "--group-by", "method,pavement_share,source_filter",
                                   "--method", "cyclesem/0.3/pavement", "--baseline", "cyclesem/0.3/none",
                                   "--compare", "cyclesem/0.3/none:cyclesem/0.0/none",
                                   "--compare", "baseline/0.3/none:baseline/0.0/none",
                                   "--compare", "baseline/0.3/pavement:baseline/0.3/none",
                                   "--compare", "cyclesem/0.3/pavement:cyclesem/0.0/none"],
}


def copy_records(tmp: Path) -> None:
    """The study's and its questions' runs/*.json under ``tmp`` at the same relative paths (reports name them)."""
    for runs in (REPO / STUDY).glob("**/runs"):
        shutil.copytree(runs, tmp / runs.relative_to(REPO))


@pytest.mark.parametrize("folder", list(REPORTS), ids=str)
def test_committed_report_is_regenerated_exactly_from_the_committed_records(
        folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy_records(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main([str(folder), *REPORTS[folder], "--no-wandb"]) == 0
    for name in TABLES:
        committed, regenerated = REPO / folder / name, tmp_path / folder / name
        assert regenerated.read_text() == committed.read_text(), (
            f"{folder / name} is not what `python -m cyclesem.report {folder} {' '.join(REPORTS[folder])}` "
            "makes of the committed records: regenerate it")


def grid(text: str, first_header: str) -> dict[str, list[str]]:
    """The markdown table whose header starts with ``first_header``: method name → its cells."""
    lines = text[text.index(f"| {first_header}"):].splitlines()
    rows = {}
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        label, *cells = [c.strip() for c in line.strip("|").split("|")]
        rows[re.sub(r"\*\*", "", label).split()[0]] = cells
    return rows


def test_readme_results_grid_is_the_study_summary_grid() -> None:
    """Cell by cell; the README may only add how many seeds a cell has ("(2 seeds)") and "= target_only" where
    the job is the same (at 100 % real no source image is left)."""
    readme = grid((REPO / "README.md").read_text(), "method (mIoU / fwIoU)")
    summary = grid((REPO / STUDY / "summary.md").read_text(), "method (mIoU / fwIoU)")
    assert set(readme) == set(summary)
    for method, cells in readme.items():
        assert len(cells) == len(summary[method]), method
        for ours, theirs in zip(cells, summary[method], strict=True):
            if ours == "= target_only":
                continue
            assert re.sub(r" \(\d+ seeds\)", "", ours) == theirs, f"README grid, {method}: {ours!r} vs {theirs!r}"
