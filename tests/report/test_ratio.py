"""cyclesem.report --ratio: source-only / target-only per palette shift (the gap calibration, issue 34)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from cyclesem.report.__main__ import main
from cyclesem.report.ratio import RatioSpec
from cyclesem.report.stats import ratio_interval, t_interval
from tests.report.record_helpers import write_record

RATIO = ["--group-by", "method,palette_shift", "--ratio", "baseline@0:target_only@1", "--no-wandb"]


def test_ratio_interval_is_the_delta_method() -> None:
    # no spread in the denominator: the numerator's t-interval divided by the denominator
    ratio = ratio_interval([0.10, 0.12, 0.14], [0.5, 0.5, 0.5])
    t = t_interval([0.10, 0.12, 0.14])
    assert ratio.value == pytest.approx(0.24)
    assert (ratio.low, ratio.high) == (pytest.approx(t.low / 0.5), pytest.approx(t.high / 0.5))
    # both sides spread: se² = (s_a²/n_a)/b² + a²(s_b²/n_b)/b⁴ = 0.0004/3/0.25 + 0.0144·0.0004/3/0.0625, and the
    # Welch–Satterthwaite degrees of freedom (u_a + u_b)² / (u_a²/2 + u_b²/2) = 2.2296 → t quantile 3.9047
    ratio = ratio_interval([0.10, 0.12, 0.14], [0.48, 0.50, 0.52])
    se = math.sqrt(0.0004 / 3 / 0.25 + 0.0144 * 0.0004 / 3 / 0.0625)
    assert ratio.high - ratio.value == pytest.approx(3.9047 * se, rel=1e-4)
    assert ratio.value - ratio.low == pytest.approx(ratio.high - ratio.value)
    one = ratio_interval([0.1], [0.5, 0.6])
    assert (one.value, one.low, one.high, one.n_numerator) == (pytest.approx(0.1 / 0.55), None, None, 1)
    with pytest.raises(ValueError, match="denominator's mean is 0"):
        ratio_interval([0.1], [0.0])


def test_ratio_per_palette_shift_from_study_records(tmp_path: Path) -> None:
    study = tmp_path / "calibration"
    for seed, (low, high) in enumerate([(0.10, 0.50), (0.12, 0.55), (0.14, 0.60)]):
        write_record(study, "baseline", 0.0, seed, low, 0.0)
        write_record(study, "target_only", 1.0, seed, high, 0.0)
        write_record(study, "baseline", 0.0, seed, low / 4, None)  # no override: the default pair, palette_shift 1
        write_record(study, "target_only", 1.0, seed, high, 1.0)
    write_record(study, "baseline", 0.0, 0, 0.2, 0.5)  # a search point: one seed
    write_record(study, "target_only", 1.0, 0, 0.5, 0.5)
    write_record(study, "target_only", 1.0, 0, 0.5, 0.75)  # no source-only job at 0.75: no row

    assert main([str(study), *RATIO]) == 0
    rows = list(csv.DictReader((study / "ratio.csv").open()))
    assert [r["setting"] for r in rows] == ["0.0", "0.5", "1.0"]
    assert {r["ratio"] for r in rows} == {"baseline@0:target_only@1"}
    expected = {"0.0": ratio_interval([0.10, 0.12, 0.14], [0.50, 0.55, 0.60]),
                "0.5": ratio_interval([0.2], [0.5]), "1.0": ratio_interval([0.025, 0.03, 0.035], [0.50, 0.55, 0.60])}
    for row in rows:
        want = expected[row["setting"]]
        assert float(row["value"]) == pytest.approx(want.value)
        assert row["low"] == ("" if want.low is None else str(want.low))
    assert float(rows[0]["value"]) == pytest.approx(0.12 / 0.55) and rows[1]["low"] == ""
    summary = (study / "summary.md").read_text()
    assert "## Ratio baseline 0 % / target_only 100 % (mIoU)" in summary
    assert "| palette_shift | baseline 0 % | target_only 100 % | ratio [95 % CI] | seeds |" in summary
    zero = expected["0.0"]
    assert "| 0.0 | 12.0 [" in summary and f"{zero.value:.3f} [{zero.low:.3f}, {zero.high:.3f}] | 3 / 3 |" in summary
    assert "| 0.5 | 20.0 (1 seed) | 50.0 (1 seed) | 0.400 (1 seed on a side) | 1 / 1 |" in summary
    ratios = json.loads((study / "efficiency.json").read_text())["ratios"]
    assert [(r["setting"], r["value"]) for r in ratios] == [(r["setting"], float(r["value"])) for r in rows]


def test_a_record_naming_its_shift_only_in_options_is_read_at_that_shift(tmp_path: Path) -> None:
    """Records since the pair family write options.palette_shift; without an override they ran at the config default
    of their day (0.25 since the calibration), so the record's own value decides, not today's default or the
    legacy 1.0 of records that name none."""
    study = tmp_path / "calibration"
    for seed, shift in enumerate((0.25, 0.25, None)):
        write_record(study, "baseline", 0.0, seed, 0.1, None)
        write_record(study, "target_only", 1.0, seed, 0.5, None)
        if shift is not None:
            for method, _frac in (("baseline", 0.0), ("target_only", 1.0)):
                path = next((study / "runs").glob(f"*method={method},seed={seed}.json"))
                record = json.loads(path.read_text())
                path.write_text(json.dumps(record | {"options": {"palette_shift": shift}}))
    assert main([str(study), *RATIO]) == 0
    rows = {r["setting"]: r for r in csv.DictReader((study / "ratio.csv").open())}
    assert set(rows) == {"0.25", "1.0"}  # seeds 0, 1 name 0.25; seed 2 names nothing: the first pair
    assert rows["0.25"]["numerator_n"] == "2" and rows["1.0"]["numerator_n"] == "1"


def test_a_report_without_ratio_writes_no_ratio(tmp_path: Path) -> None:
    study = tmp_path / "calibration"
    write_record(study, "baseline", 0.0, 0, 0.1, 0.0)
    assert main([str(study), "--no-wandb"]) == 0
    assert not (study / "ratio.csv").exists() and "ratios" not in json.loads((study / "efficiency.json").read_text())


@pytest.mark.parametrize("text", ["baseline:target_only", "baseline@0", "baseline@x:target_only@1",
                                  "baseline@0:target_only@2", "@0:target_only@1"])
def test_a_malformed_ratio_is_refused(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match=r"NUM@FRACTION:DEN@FRACTION|must lie in \[0, 1\]"):
        RatioSpec.parse(text)
    with pytest.raises(SystemExit) as exit_info:
        main(["somewhere", "--ratio", text])
    assert exit_info.value.code == 2 and "--ratio" in capsys.readouterr().err


def test_a_ratio_no_setting_has_names_the_groups(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = tmp_path / "calibration"
    write_record(study, "baseline", 0.0, 0, 0.1, 0.0)
    with pytest.raises(SystemExit) as exit_info:  # the commands' entry wrapper: one line, exit 2
        main([str(study), *RATIO])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--ratio baseline@0:target_only@1: no setting has mIoU scores for both" in err
    assert "the groups are baseline/0.0@0" in err and not (study / "ratio.csv").exists()
