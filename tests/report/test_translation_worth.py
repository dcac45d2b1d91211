"""python -m cyclesem.translation_worth: what translation is worth per pair (issue 34, item 5)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cyclesem.report.ratio import RATIO_COLUMNS
from cyclesem.report.stats import paired_difference, ratio_interval
from cyclesem.report.translation_worth import PILOT, PairSpec, translation_worth
from cyclesem.translation_worth import main
from tests.report.record_helpers import write_record

# seed → test mIoU per (method, real fraction) of a swap pair (palette_shift 1.0)
SCORES = {
    ("baseline", 0.0): {0: 0.03, 1: 0.04, 2: 0.05},
    ("target_only", 1.0): {0: 0.50, 1: 0.55, 2: 0.60},
    ("baseline", 0.05): {0: 0.20, 1: 0.25, 2: 0.21},
    ("target_only", 0.05): {0: 0.30, 1: 0.28, 2: 0.33},
    ("oracle", 0.05): {0: 0.50, 1: 0.52, 2: 0.47},
    ("cyclesem", 0.05): {0: 0.26, 1: 0.27, 2: 0.30},
    ("baseline", 0.1): {0: 0.30, 1: 0.33, 2: 0.31, 3: 0.29},
    ("target_only", 0.1): {0: 0.40, 1: 0.42, 2: 0.38, 3: 0.41},
    ("oracle", 0.1): {0: 0.55, 1: 0.56, 2: 0.53},
    ("cyclesem", 0.1): {1: 0.35, 2: 0.36, 3: 0.33, 4: 0.50},  # seed 4: no comparator has it
}


def write_pair(study: Path, shift: float, scores: dict = SCORES) -> None:
    for (method, frac), by_seed in scores.items():
        for seed, miou in by_seed.items():
            write_record(study, method, frac, seed, miou, shift)


def write_calibration(folder: Path, rows: dict[str, tuple[float, float | None, float | None]]) -> Path:
    """A ratio.csv as `cyclesem.report --ratio` writes it: setting → (value, low, high)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "ratio.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RATIO_COLUMNS)
        writer.writeheader()
        for setting, (value, low, high) in rows.items():
            writer.writerow({"ratio": "baseline@0:target_only@1", "setting": setting, "metric": "mIoU",
                             "numerator_mean": 0.1, "numerator_n": 3, "denominator_mean": 0.5, "denominator_n": 3,
                             "value": value, "low": "" if low is None else low, "high": "" if high is None else high})
        # another metric and another ratio at the same setting: never read
        writer.writerow({"ratio": "baseline@0:target_only@1", "setting": "1.0", "metric": "fwIoU", "value": 0.9,
                         "numerator_n": 1, "denominator_n": 1})
        writer.writerow({"ratio": "baseline@0.1:target_only@1", "setting": "1.0", "metric": "mIoU", "value": 0.8,
                         "numerator_n": 1, "denominator_n": 1})
    return folder


def by_comparison(rows, frac: float) -> dict[str, object]:
    return {r.comparison: r for r in rows if r.real_frac == frac}


def test_paired_differences_over_the_shared_seeds(tmp_path: Path) -> None:
    study = tmp_path / "study"
    write_pair(study, 1.0)
    write_record(study, "baseline", 0.1, 0, 0.99, 0.0)  # another pair in the same folder: never read at 1.0
    rows = translation_worth([PairSpec(study, 1.0)])
    assert [(r.real_frac, r.minuend, r.subtrahend) for r in rows] == [
        (f, m, s) for f in (0.05, 0.1) for m, s in (("oracle", "baseline"), ("cyclesem", "baseline"),
                                                      ("cyclesem", "target_only"))]
    at_5, at_10 = by_comparison(rows, 0.05), by_comparison(rows, 0.1)
    for rows_at, frac in ((at_5, 0.05), (at_10, 0.1)):
        for comparison, (ours, theirs) in {"oracle − baseline": ("oracle", "baseline"),
                                           "method − baseline": ("cyclesem", "baseline"),
                                           "method − target_only": ("cyclesem", "target_only")}.items():
            want = paired_difference(SCORES[ours, frac], SCORES[theirs, frac])
            got = rows_at[comparison].difference
            assert (got.n, got.mean, got.low, got.high) == pytest.approx((want.n, want.mean, want.low, want.high))
    # by hand: at 5 %, cyclesem − baseline = 0.06, 0.02, 0.09 over seeds 0-2
    assert at_5["method − baseline"].difference.mean == pytest.approx(0.17 / 3)
    # at 10 %, cyclesem has seeds 1-4, baseline 0-3: seeds 1, 2, 3 only (seed 4's 0.50 would pull the mean up)
    assert at_10["method − baseline"].seeds == (1, 2, 3)
    assert at_10["method − baseline"].difference.mean == pytest.approx((0.02 + 0.05 + 0.04) / 3)
    assert at_10["oracle − baseline"].seeds == (0, 1, 2) and not any(r.note for r in rows)
    # no --calibration: the ratio from the pair's own baseline at 0 % and target_only at 100 %
    want = ratio_interval([0.03, 0.04, 0.05], [0.50, 0.55, 0.60])
    assert rows[0].ratio.ratio == want and rows[0].ratio.source == f"{study} (its records)"


def test_a_missing_method_or_no_shared_seed_is_a_row_marked_missing(tmp_path: Path) -> None:
    study = tmp_path / "study"
    scores = {k: v for k, v in SCORES.items() if k != ("cyclesem", 0.05)}
    scores["oracle", 0.1] = {7: 0.5, 8: 0.5}  # seeds the baseline never ran
    write_pair(study, 1.0, scores)
    rows = translation_worth([PairSpec(study, 1.0, "cyclesem")])
    at_5, at_10 = by_comparison(rows, 0.05), by_comparison(rows, 0.1)
    assert at_5["oracle − baseline"].difference is not None
    for comparison in ("method − baseline", "method − target_only"):
        assert at_5[comparison].difference is None and at_5[comparison].seeds == ()
        assert at_5[comparison].note == "missing: no cyclesem at 5 % real"
    assert at_10["oracle − baseline"].difference is None
    assert at_10["oracle − baseline"].note == "missing: no shared seed (oracle: seeds 7 8; baseline: seeds 0 1 2 3)"
    # a method the study never ran: every row of it missing, none of the oracle's
    rows = translation_worth([PairSpec(study, 1.0, "cyclesem_warm")])
    assert {r.note for r in rows if r.minuend == "cyclesem_warm"} == {"missing: no cyclesem_warm at 5 % real",
                                                                      "missing: no cyclesem_warm at 10 % real"}


def test_one_shared_seed_is_a_pilot_without_an_interval(tmp_path: Path) -> None:
    study = tmp_path / "study"
    write_pair(study, 0.25, {("baseline", 0.0): {0: 0.1}, ("target_only", 1.0): {0: 0.5},
                             ("baseline", 0.1): {0: 0.30, 1: 0.31}, ("cyclesem_warm", 0.1): {1: 0.36, 2: 0.4}})
    rows = translation_worth([PairSpec(study, 0.25, "cyclesem_warm")], fractions=(0.1,))
    row = by_comparison(rows, 0.1)["method − baseline"]
    assert row.seeds == (1,) and row.note == PILOT == "1 seed (pilot)"
    assert (row.difference.n, row.difference.low, row.difference.high) == (1, None, None)
    assert row.difference.mean == pytest.approx(0.05)
    assert (row.ratio.ratio.value, row.ratio.ratio.low) == (pytest.approx(0.2), None)  # one seed a side


def test_the_ratio_comes_from_the_calibration_table_else_the_records(tmp_path: Path) -> None:
    swap, calibrated = tmp_path / "swap", tmp_path / "calibrated"
    write_pair(swap, 1.0)
    write_pair(calibrated, 0.25)
    calibration = write_calibration(tmp_path / "calibration", {"0.0": (0.36, 0.31, 0.41), "1.0": (0.0625, 0.053, 0.072)})
    rows = translation_worth([PairSpec(swap, 1.0), PairSpec(calibrated, 0.25)], calibration)
    swap_ratio = {r.ratio for r in rows if r.pair.folder == swap}
    assert len(swap_ratio) == 1
    (swap_ratio,) = swap_ratio
    assert (swap_ratio.ratio.value, swap_ratio.ratio.low, swap_ratio.ratio.high) == (0.0625, 0.053, 0.072)
    assert swap_ratio.ratio.n_numerator == 3 and swap_ratio.source == str(calibration / "ratio.csv")
    # 0.25 is not in the table: computed from the pair's own records
    (own,) = {r.ratio for r in rows if r.pair.folder == calibrated}
    assert own.ratio == ratio_interval([0.03, 0.04, 0.05], [0.50, 0.55, 0.60])
    assert own.source == f"{calibrated} (its records)"
    # the file itself works as --calibration too
    rows = translation_worth([PairSpec(swap, 1.0)], calibration / "ratio.csv")
    assert rows[0].ratio.ratio.value == 0.0625


def test_the_command_writes_the_csv_and_the_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich folds the table's cells to the terminal's width
    swap, calibrated = tmp_path / "swap", tmp_path / "calibrated"
    write_pair(swap, 1.0)
    write_pair(calibrated, 0.25, {k: v for k, v in SCORES.items() if k != ("oracle", 0.05)})
    calibration = write_calibration(tmp_path / "calibration", {"1.0": (0.0625, 0.053, 0.072), "0.25": (0.26, 0.23, 0.29)})
    output = tmp_path / "out"
    assert main(["--pair", f"{swap}:1.0", "--pair", f"{calibrated}:0.25:cyclesem", "--calibration", str(calibration),
                 "--output", str(output)]) == 0
    rows = list(csv.DictReader((output / "translation_worth.csv").open()))
    assert len(rows) == 12
    first = rows[0]
    want = paired_difference(SCORES["oracle", 0.05], SCORES["baseline", 0.05])
    assert (first["pair"], first["palette_shift"], first["real_frac"], first["comparison"]) == (
        f"{swap}:1:cyclesem", "1.0", "0.05", "oracle − baseline")
    assert (float(first["mean"]), float(first["low"]), first["n"], first["seeds"], first["ratio"]) == (
        pytest.approx(want.mean), pytest.approx(want.low), "3", "0 1 2", "0.0625")
    missing = rows[6]
    assert (missing["ratio"], missing["comparison"], missing["mean"], missing["low"], missing["n"]) == (
        "0.26", "oracle − baseline", "", "", "")
    assert missing["note"] == "missing: no oracle at 5 % real"
    png = (output / "translation_worth.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    out = capsys.readouterr().out
    assert "source-only ratio 0.062 [0.053, 0.072]" in out and "source-only ratio 0.260 [0.230, 0.290]" in out
    assert f"{100 * want.mean:+.1f} [{100 * want.low:+.1f}, {100 * want.high:+.1f}]" in out
    assert "missing: no oracle at 5 % real" in out


def test_bad_input_is_one_message_and_exit_2_with_nothing_written(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    swap, empty = tmp_path / "swap", tmp_path / "empty"
    write_pair(swap, 1.0, {k: v for k, v in SCORES.items() if k != ("target_only", 1.0)})  # no ratio of its own
    empty.mkdir()
    calibration = write_calibration(tmp_path / "calibration", {"0.25": (0.26, 0.23, 0.29)})
    output = tmp_path / "out"
    cases = {
        (f"{empty}:1.0",): f"--pair {empty}:1:cyclesem: {empty} holds no job records (runs/*.json)",
        (f"{tmp_path / 'absent'}:1.0",): f"folder {tmp_path / 'absent'} does not exist",
        (f"{swap}:1.0", "--calibration", str(calibration)): (
            f"--pair {swap}:1:cyclesem: no source-only ratio for palette_shift 1: not in {calibration}, and {swap} "
            "has no completed baseline 0 % and target_only 100 % jobs at that shift"),
        (f"{swap}:1.0",): "no --calibration table given",
        (f"{swap}:0.25", "--calibration", str(calibration)): (
            f"no completed job in {swap} ran at palette_shift 0.25; its palette shifts are 1.0"),
        (f"{swap}:1.0", "--calibration", str(empty)): f"--calibration {empty}: no ratio.csv there",
    }
    for args, message in cases.items():
        with pytest.raises(SystemExit) as exit_info:
            main(["--pair", *args, "--output", str(output)])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and err.startswith("error: ") and message in err, (args, err)
        assert err.count("\n") == 1 and not output.exists()


@pytest.mark.parametrize("text", ["experiments/real_frac_study", "experiments/real_frac_study:x",
                                  "experiments/real_frac_study:1.5", ":1.0", "a:1.0:", "a:1.0:cyclesem:extra"])
def test_a_malformed_pair_is_refused(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match=r"FOLDER:PALETTE_SHIFT\[:METHOD\]|must lie in \[0, 1\]"):
        PairSpec.parse(text)
    with pytest.raises(SystemExit) as exit_info:
        main(["--pair", text, "--output", str(tmp_path / "out")])
    assert exit_info.value.code == 2 and "--pair" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
