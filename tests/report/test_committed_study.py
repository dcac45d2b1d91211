"""The committed study's tables are what `cyclesem.report` makes of its committed job records, and the results
the docs quote — the grid in docs/results.md, the README's headline table, every "mean [95 % CI]" on those
pages — are the ones in the committed summary.md files: no number in them can be edited by hand or go stale."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from cyclesem.report.__main__ import main

REPO = Path(__file__).resolve().parents[2]
STUDY = Path("experiments/real_frac_study")
TABLES = ("summary.md", "groups.csv", "efficiency.json", "results.csv")

# Each committed report folder and the command (docs/study.md, experiments/real_frac_study/README.md) that made it.
REPORTS = {
    STUDY: ["--method", "cyclesem", "--compare", "oracle:cyclesem", "--compare", "cyclesem_unlabeled:baseline",
            "--efficiency-against", "target_only"],
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
    Path("experiments/domain_gap/gap_study/interim"): ["--group-by", "method,palette_shift",
                                                       "--method", "oracle/0.25", "--baseline", "baseline/0.25",
                                                       "--compare", "target_only/0.25:baseline/0.25",
                                                       "--compare", "cyclesem/0.25:baseline/0.25",
                                                       "--compare", "cyclesem/0.25:target_only/0.25"],
    Path("experiments/domain_gap/compile"): ["--group-by", "method,compile", "--method", "cyclesem/True",
                                             "--baseline", "cyclesem/False"],
}


def copy_records(tmp: Path) -> None:
    """The study's and its questions' runs/*.json, and every other report folder's, under ``tmp`` at the same
    relative paths (reports name them)."""
    for runs in {*(REPO / STUDY).glob("**/runs"), *(REPO / folder / "runs" for folder in REPORTS)}:
        if runs.is_dir():
            shutil.copytree(runs, tmp / runs.relative_to(REPO), dirs_exist_ok=True)


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


def test_results_page_grid_is_the_study_summary_grid() -> None:
    """Cell by cell; the page may only add how many seeds a cell has ("(2 seeds)") and "= target_only" where
    the job is the same (at 100 % real no source image is left)."""
    page = grid((REPO / "docs" / "results.md").read_text(), "method (mIoU / fwIoU)")
    summary = grid((REPO / STUDY / "summary.md").read_text(), "method (mIoU / fwIoU)")
    assert set(page) == set(summary)
    for method, cells in page.items():
        assert len(cells) == len(summary[method]), method
        for ours, theirs in zip(cells, summary[method], strict=True):
            if ours == "= target_only":
                continue
            assert re.sub(r" \(\d+ seeds\)", "", ours) == theirs, f"docs/results.md grid, {method}: {ours!r} vs {theirs!r}"


def scores(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """summary.md's "Scores per method" table: (method, % real) → column → cell."""
    lines = text[text.index("| method | % real |"):].splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        cells = dict(zip(header, [c.strip() for c in line.strip("|").split("|")], strict=True))
        rows[(cells["method"], cells["% real"])] = cells
    return rows


def test_readme_headline_table_is_the_study_summary() -> None:
    """Each row of the README's table at 10 % real: mIoU, fwIoU and the seed count of that method's cell."""
    rows = grid((REPO / "README.md").read_text(), "at 10 % real")
    summary = scores((REPO / STUDY / "summary.md").read_text())
    assert set(rows) == {"cyclesem", "baseline", "target_only", "oracle"}
    for method, (miou, fwiou, seeds) in rows.items():
        cell = summary[(method, "10.0")]
        assert (miou, fwiou, seeds) == (cell["mIoU"], cell["fwIoU"], cell["n"]), method


# "37.9 [36.4, 39.4]", "−6.7 [−8.0, −5.5]", "+2.1 [−0.8, +5.0]": a mean and its 95 % CI as the reports write it
CONFIDENCE_INTERVAL = re.compile(r"[+−-]?\d+\.\d(?: % real)? \[[+−-]?\d+\.\d, [+−-]?\d+\.\d\]")


def test_every_confidence_interval_in_the_docs_is_in_a_committed_report() -> None:
    """The prose quotes the reports: every "x [lo, hi]" on the results page and in the README appears, with its
    sign, in one of the committed summary.md files (the efficiency estimates' "needs X % real [lo, hi]" too)."""
    reports = "\n".join(p.read_text() for p in (REPO / "experiments").rglob("summary.md"))
    reports = reports.replace("95 % CI [", "[").replace("% real, [", "[")
    quoted = {m.replace("−", "-").replace(" % real", "") for page in ("README.md", "docs/results.md")
              for m in CONFIDENCE_INTERVAL.findall((REPO / page).read_text())}
    assert len(quoted) > 80
    missing = sorted(q for q in quoted if q not in reports and q.lstrip("+") not in reports)
    assert not missing, f"not in any committed summary.md: {missing}"
