"""cyclesem.report on hand-written sweep directories: statistics, data efficiency, failed/missing jobs, files."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import types
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from cyclesem.data.labels import CLASS_NAMES
from cyclesem.report.__main__ import main
from cyclesem.report.efficiency import data_efficiency, efficiency_readout, summarize
from cyclesem.report.jobs import collect
from cyclesem.report.tables import render_summary, write_results_csv
from cyclesem.report.write import write_report


def scores(fw: float, miou: float, acc: float, road: float = 0.9) -> dict[str, float]:
    per_class = {f"iou_{name}": 0.5 for name in CLASS_NAMES} | {"iou_road": road}
    return {"fwIoU": fw, "mIoU": miou, "pixel_acc": acc, **per_class}


def completed(method: str, frac: float, seed: int, fw: float, miou: float = 0.4, acc: float = 0.9,
              road: float = 0.9, split: str = "test") -> dict:
    test = scores(fw, miou, acc, road) if split == "test" else {}
    return {"status": "completed", "method": method, "real_frac": frac, "seed": seed, "val": scores(0.1, 0.1, 0.1),
            "test": test, "wall_time_s": 12.5}


def make_job(sweep: Path, num: int, method: str, frac: float, seed: int, record: dict | None = None,
             text: str | None = None) -> Path:
    """A job dir as Hydra's multirun writes it, with metrics.json from ``record`` / raw ``text`` / absent."""
    job = sweep / f"{num}_data.real_frac={frac},model={method},seed={seed}"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(
        yaml.safe_dump([f"data.real_frac={frac}", f"model={method}", f"seed={seed}"]))
    (job / ".hydra" / "config.yaml").write_text(
        yaml.safe_dump({"seed": seed, "data": {"real_frac": frac}, "model": {"style_transfer": method == "cyclesem"}}))
    (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"choices": {"model": method}}}}))
    if record is not None:
        (job / "metrics.json").write_text(json.dumps(record))
    if text is not None:
        (job / "metrics.json").write_text(text)
    return job


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """cyclesem at 10 % (2 seeds); baseline at 0/50/100 %, the 100 % job val-only; a failed, a missing, a corrupt job."""
    sweep = tmp_path / "12-00-00-000000"
    make_job(sweep, 0, "cyclesem", 0.1, 0, completed("cyclesem", 0.1, 0, fw=0.68, miou=0.40, road=0.9))
    make_job(sweep, 1, "cyclesem", 0.1, 1, completed("cyclesem", 0.1, 1, fw=0.72, miou=0.44, road=0.8))
    make_job(sweep, 2, "baseline", 0.0, 0, completed("baseline", 0.0, 0, fw=0.2))
    make_job(sweep, 3, "baseline", 0.5, 0, completed("baseline", 0.5, 0, fw=0.6))
    make_job(sweep, 4, "baseline", 1.0, 0, completed("baseline", 1.0, 0, fw=0.8, split="val") | {"val": scores(0.8, 0.5, 0.95)})
    make_job(sweep, 5, "cyclesem", 0.5, 0, {"status": "failed", "error": "RuntimeError: CUDA out of memory",
                                            "method": "cyclesem", "real_frac": 0.5, "seed": 0})
    make_job(sweep, 6, "baseline", 0.9, 0)  # crashed hard: no metrics.json
    make_job(sweep, 7, "cyclesem", 1.0, 2, text='{"status": "completed", "test": {"fwIoU": 0.')
    (sweep / "wandb").mkdir()  # not a job: no .hydra, no metrics.json
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    return sweep


def test_collect_reads_scores_and_lists_every_job(sweep: Path) -> None:
    jobs = {job.job.split("_")[0]: job for job in collect(sweep)}
    assert sorted(jobs, key=int) == [str(n) for n in range(8)]
    assert jobs["0"].status == "completed" and jobs["0"].split == "test" and jobs["0"].scores["fwIoU"] == 0.68
    assert jobs["4"].split == "val" and jobs["4"].scores["fwIoU"] == 0.8  # empty test → val scores
    assert jobs["5"].status == "failed" and jobs["5"].error == "RuntimeError: CUDA out of memory"
    missing = jobs["6"]
    assert (missing.status, missing.method, missing.real_frac, missing.seed) == ("missing", "baseline", 0.9, 0)
    corrupt = jobs["7"]
    assert corrupt.status == "failed" and corrupt.error.startswith("unreadable metrics.json")
    assert (corrupt.method, corrupt.real_frac, corrupt.seed) == ("cyclesem", 1.0, 2)  # from .hydra


def test_group_by_another_field_compares_semantic_variants(tmp_path: Path) -> None:
    """--group-by semantic_classifier: the variants become the methods; a job without metrics.json is named from
    its ``model.semantic_classifier=...`` override."""
    sweep = tmp_path / "variants"
    for num, (variant, fw) in enumerate([("joint", 0.7), ("none", 0.6)]):
        make_job(sweep, num, "cyclesem", 0.1, 0, completed("cyclesem", 0.1, 0, fw=fw) | {"semantic_classifier": variant})
    missing = make_job(sweep, 2, "cyclesem", 0.3, 0)
    (missing / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["model.semantic_classifier=ema"]))
    jobs = collect(sweep, group_by="semantic_classifier")
    assert [(j.method, j.status) for j in jobs] == [("joint", "completed"), ("none", "completed"), ("ema", "missing")]
    groups = summarize(jobs)
    assert {g.method: g.mean["fwIoU"] for g in groups} == {"joint": 0.7, "none": 0.6}
    assert [j.method for j in collect(sweep)][:2] == ["cyclesem", "cyclesem"]  # default: the method field
    combined = collect(sweep, group_by="method,semantic_classifier")
    assert [j.method for j in combined] == ["cyclesem/joint", "cyclesem/none", "cyclesem/ema"]


def test_translation_error_column_takes_test_then_last_validation_value(tmp_path: Path) -> None:
    """Test-time translation error where the job has it; older jobs (val only) fall back to the last val epoch."""
    sweep = tmp_path / "variants"
    with_test = completed("cyclesem", 0.1, 0, fw=0.7)
    with_test["test"]["translation_l1"], with_test["val"]["translation_l1"] = 0.30, 0.99
    val_only = completed("cyclesem", 0.1, 1, fw=0.6)
    val_only["val"]["translation_l1"] = 0.40
    make_job(sweep, 0, "cyclesem", 0.1, 0, with_test)
    make_job(sweep, 1, "cyclesem", 0.1, 1, val_only)
    make_job(sweep, 2, "baseline", 0.1, 0, completed("baseline", 0.1, 0, fw=0.5))
    jobs = collect(sweep)
    assert [j.scores.get("translation_l1") for j in jobs] == [0.30, 0.40, None]
    groups = summarize(jobs)
    summary = render_summary(sweep, jobs, groups, [], "fwIoU")
    assert "| fwIoU | mIoU | pixel acc | translation L1 |" in summary
    assert "translation gain" not in summary  # no job measured one
    # mean [95 % t-interval]: 65 ± t(0.975, 1) · 0.0707 / √2 = 65 ± 63.5 (two seeds say little)
    assert ("| cyclesem | 10.0 | 2 | 0, 1 | 65.0 [1.5, 128.5] | 40.0 [40.0, 40.0] | 90.0 [90.0, 90.0] | "
            "0.350 ± 0.071 |") in summary
    assert "| baseline | 10.0 | 1 | 0 | 50.0 (1 seed) | 40.0 (1 seed) | 90.0 (1 seed) | — |" in summary


def test_translation_score_and_gain_columns(tmp_path: Path) -> None:
    """The FCN-score and its gain go to results.csv, the gain to the summary table beside the L1 error; a job
    with val scores only falls back to its last validation's values. Without anchors in the records (older runs)
    there is no floor → ceiling to show."""
    sweep = tmp_path / "fcn"
    with_test = completed("cyclesem", 0.1, 0, fw=0.7)
    with_test["test"].update(translation_l1=0.30, translation_score=0.40, translation_gain=0.50)
    with_test["val"].update(translation_score=0.99, translation_gain=0.99)
    val_only = completed("cyclesem", 0.1, 1, fw=0.6)
    val_only["val"].update(translation_l1=0.40, translation_score=0.30, translation_gain=0.30)
    make_job(sweep, 0, "cyclesem", 0.1, 0, with_test)
    make_job(sweep, 1, "cyclesem", 0.1, 1, val_only)
    jobs = collect(sweep)
    assert [(j.scores["translation_score"], j.scores["translation_gain"]) for j in jobs] == [(0.40, 0.50), (0.30, 0.30)]
    summary = render_summary(sweep, jobs, summarize(jobs), [], "fwIoU")
    assert "| pixel acc | translation L1 | translation score | translation gain |" in summary
    assert "| 0.350 ± 0.071 | 0.350 ± 0.071 | 0.400 ± 0.141 |" in summary
    rows = list(csv.DictReader(write_results_csv(jobs, tmp_path / "results.csv").open()))
    assert [(r["translation_score"], r["translation_gain"]) for r in rows] == [("0.4", "0.5"), ("0.3", "0.3")]


def test_gain_is_reported_with_score_floor_and_ceiling_and_flagged_on_a_small_span(tmp_path: Path) -> None:
    """Each job's anchors come from its record's translation_reference (a range where a group's jobs differ); a
    group whose ceiling − floor is below MIN_GAIN_SPAN (0.10) has its gain flagged "(not meaningful)" in
    summary.md and false in groups.csv."""
    from cyclesem.method.translation_score import MIN_GAIN_SPAN
    from cyclesem.report.tables import write_groups_csv

    sweep = tmp_path / "gap"
    wide, narrow = {"key": "a", "floor": 0.10, "ceiling": 0.50}, {"key": "b", "floor": 0.50, "ceiling": 0.55}
    wide_elsewhere = {"key": "a", "floor": 0.12, "ceiling": 0.50}  # the same reference trained on another machine
    assert narrow["ceiling"] - narrow["floor"] < MIN_GAIN_SPAN <= wide["ceiling"] - wide["floor"]
    for num, (frac, seed, reference, score) in enumerate([(0.1, 0, wide, 0.30), (0.1, 1, wide_elsewhere, 0.40),
                                                          (0.3, 0, narrow, 0.52)]):
        record = completed("cyclesem", frac, seed, fw=0.7) | {"translation_reference": reference}
        gain = (score - reference["floor"]) / (reference["ceiling"] - reference["floor"])
        record["test"].update(translation_l1=0.3, translation_score=score, translation_gain=gain)
        make_job(sweep, num, "cyclesem", frac, seed, record)
    make_job(sweep, 3, "baseline", 0.1, 0, completed("baseline", 0.1, 0, fw=0.5)
             | {"translation_reference": None})
    jobs = collect(sweep)
    assert [(j.scores.get("translation_floor"), j.scores.get("translation_ceiling")) for j in jobs] == \
        [(0.10, 0.50), (0.12, 0.50), (0.50, 0.55), (None, None)]
    groups = summarize(jobs)
    summary = render_summary(sweep, jobs, groups, [], "mIoU")
    assert "| translation L1 | translation score | floor → ceiling | translation gain |" in summary
    # wide span: score 0.350 ± 0.071, gains 0.2 / 0.4 = 0.5 and 0.28 / 0.38 = 0.737: 0.618 ± 0.167, meaningful
    assert "| 0.350 ± 0.071 | 0.100–0.120 → 0.500 | 0.618 ± 0.167 |" in summary
    assert "| 0.520 ± — | 0.500 → 0.550 | 0.400 ± — (not meaningful) |" in summary
    assert "| baseline | 10.0 | 1 | 0 | 50.0 (1 seed) | 40.0 (1 seed) | 90.0 (1 seed) | — | — | — | — |" in summary
    assert "ceiling − floor < 0.10" in summary
    rows = {(r["method"], r["real_frac"]): r for r in csv.DictReader(write_groups_csv(groups, tmp_path / "g.csv").open())}
    assert {k: rows["cyclesem", "0.1"][k] for k in ("translation_floor", "translation_ceiling",
                                                   "translation_gain_meaningful")} == \
        {"translation_floor": "0.11", "translation_ceiling": "0.5", "translation_gain_meaningful": "True"}
    assert float(rows["cyclesem", "0.1"]["translation_score_mean"]) == pytest.approx(0.35)
    assert rows["cyclesem", "0.3"]["translation_gain_meaningful"] == "False"
    assert rows["baseline", "0.1"]["translation_gain_meaningful"] == ""
    results = list(csv.DictReader(write_results_csv(jobs, tmp_path / "results.csv").open()))
    assert [(r["translation_floor"], r["translation_ceiling"]) for r in results] == \
        [("0.1", "0.5"), ("0.12", "0.5"), ("0.5", "0.55"), ("", "")]


def test_broken_hydra_files_still_list_the_job(tmp_path: Path) -> None:
    job = make_job(tmp_path, 0, "baseline", 0.2, 3)
    (job / ".hydra" / "overrides.yaml").write_text("[unclosed")
    (job / ".hydra" / "hydra.yaml").write_text("- a list, not a mapping\n")
    (result,) = collect(tmp_path)
    # method from config.yaml's style_transfer, fraction and seed from config.yaml
    assert (result.status, result.method, result.real_frac, result.seed) == ("missing", "baseline", 0.2, 3)


def test_summarize_mean_and_sample_std_over_seeds(sweep: Path) -> None:
    groups = {(g.method, g.real_frac): g for g in summarize(collect(sweep))}
    assert set(groups) == {("cyclesem", 0.1), ("baseline", 0.0), ("baseline", 0.5), ("baseline", 1.0)}
    ours = groups[("cyclesem", 0.1)]
    assert ours.n == 2 and ours.seeds == [0, 1]
    assert ours.mean["fwIoU"] == pytest.approx(0.70) and ours.mean["mIoU"] == pytest.approx(0.42)
    assert ours.std["fwIoU"] == pytest.approx(math.sqrt(2 * 0.02**2 / 1))  # ddof=1
    assert ours.mean["iou_road"] == pytest.approx(0.85)
    assert (ours.low["fwIoU"], ours.high["fwIoU"]) == (0.68, 0.72)
    assert groups[("baseline", 0.5)].n == 1 and groups[("baseline", 0.5)].std["fwIoU"] is None


def test_summarize_groups_float_noise_fractions_together() -> None:
    from cyclesem.report.types import JobResult

    jobs = [JobResult("0_a", "completed", "baseline", 0.7, 0, "test", {"fwIoU": 0.5}),
            JobResult("1_b", "completed", "baseline", 0.7000000000000001, 1, "test", {"fwIoU": 0.7})]
    (group,) = summarize(jobs)
    assert group.n == 2 and group.mean["fwIoU"] == pytest.approx(0.6)


BASELINE = {0.0: 0.2, 0.5: 0.6, 1.0: 0.8}


def test_data_efficiency_interpolates_between_measured_baseline_fractions() -> None:
    assert data_efficiency({0.1: 0.7}, BASELINE)[0.1] == pytest.approx(0.75)
    assert data_efficiency({0.1: 0.4}, BASELINE)[0.1] == pytest.approx(0.25)
    # order of the dict does not matter: the baseline is sorted by fraction
    assert data_efficiency({0.1: 0.7}, dict(reversed(BASELINE.items())))[0.1] == pytest.approx(0.75)


def test_data_efficiency_exact_hits_not_reached_and_below_first_point() -> None:
    needed = data_efficiency({0.1: 0.6, 0.2: 0.8, 0.3: 0.81, 0.0: 0.1}, BASELINE)
    assert needed[0.1] == pytest.approx(0.5)
    assert needed[0.2] == pytest.approx(1.0)
    assert needed[0.3] is None  # above the baseline's best: never extrapolated
    assert needed[0.0] == 0.0  # the baseline already beats it at its smallest measured fraction
    assert data_efficiency({0.1: 0.5}, {}) == {0.1: None}


def test_data_efficiency_takes_the_first_upward_crossing() -> None:
    bumpy = {0.0: 0.2, 0.5: 0.7, 0.7: 0.5, 1.0: 0.9}
    assert data_efficiency({0.1: 0.6}, bumpy)[0.1] == pytest.approx(0.4)
    assert data_efficiency({0.1: 0.8}, bumpy)[0.1] == pytest.approx(0.7 + 0.3 * 3 / 4)


def test_efficiency_readout_states_the_saving(sweep: Path) -> None:
    (line,) = efficiency_readout(summarize(collect(sweep)), "cyclesem", "baseline", "fwIoU")
    # cyclesem 70 % at 10 % real; baseline 0.6 @ 50 %, 0.8 @ 100 % → 75 % real
    assert "cyclesem at 10.0 % real: fwIoU 70.0 %" in line
    assert "baseline needs 75.0 % real (interpolated)" in line
    assert "saves 65.0 points of real data, 7.5× less" in line
    (line,) = efficiency_readout(summarize(collect(sweep)), "cyclesem", "other", "fwIoU")
    assert "needs fwIoU scores for both 'cyclesem' and 'other'" in line


def test_summary_formats_percent_and_dash_for_one_seed(sweep: Path) -> None:
    jobs = collect(sweep)
    text = render_summary(sweep, jobs, summarize(jobs), ["readout line"], "fwIoU")
    assert "| cyclesem | 10.0 | 2 | 0, 1 | 70.0 [44.6, 95.4] | 42.0 [16.6, 67.4] | 90.0 [90.0, 90.0] |" in text
    assert "| baseline | 50.0 | 1 | 0 | 60.0 (1 seed) | 40.0 (1 seed) | 90.0 (1 seed) |" in text
    assert "| road | 90.0 | 90.0 | 90.0 | 85.0 |" in text  # per-class means: baseline 0/50/100 %, cyclesem 10 %


def test_summary_grid_has_one_row_per_method_and_a_dash_where_not_run(sweep: Path) -> None:
    jobs = collect(sweep)
    text = render_summary(sweep, jobs, summarize(jobs), [], "mIoU")
    grid = text.split("## mIoU by method and real share", 1)[1].split("##", 1)[0]
    assert "| method (mIoU / fwIoU) | 0.0 % real | 10.0 % real | 50.0 % real | 100.0 % real |" in grid
    rows = {line.split(" | ")[0]: line for line in grid.splitlines() if line.startswith("| cyclesem") or
            line.startswith("| baseline")}
    assert rows["| cyclesem"] == "| cyclesem | — | 42.0 [16.6, 67.4]<br>70.0 [44.6, 95.4] | — | — |"
    assert rows["| baseline"].startswith("| baseline | 40.0 (1 seed)<br>20.0 (1 seed) | — | 40.0 (1 seed)<br>60.0 (1 seed)")


def test_write_report_writes_all_files_and_lists_failed_jobs(sweep: Path) -> None:
    out = io.StringIO()
    paths = write_report(sweep, metric="fwIoU", use_wandb=False, console=Console(file=out, width=240))
    assert {p.name for p in paths.values()} == {"results.csv", "groups.csv", "efficiency.json", "summary.md",
                                                "curves.png"}

    with (sweep / "results.csv").open(newline="") as f:
        rows = {row["job"].split("_")[0]: row for row in csv.DictReader(f)}
    assert len(rows) == 8
    assert float(rows["1"]["fwIoU"]) == 0.72 and float(rows["1"]["iou_road"]) == 0.8 and rows["1"]["split"] == "test"
    assert rows["1"]["wall_time_s"] == "12.5" and rows["1"]["error"] == ""
    assert rows["4"]["split"] == "val"
    assert (rows["5"]["status"], rows["5"]["error"]) == ("failed", "RuntimeError: CUDA out of memory")
    assert (rows["6"]["status"], rows["6"]["method"], rows["6"]["real_frac"]) == ("missing", "baseline", "0.9")
    assert rows["7"]["status"] == "failed" and rows["7"]["fwIoU"] == ""

    summary = (sweep / "summary.md").read_text()
    failed = summary.split("## Failed or missing jobs", 1)[1].split("##", 1)[0]
    for name, status in (("5_", "failed"), ("6_", "missing"), ("7_", "failed")):
        line = next(line for line in failed.splitlines() if line.startswith(f"| {name}"))
        assert f"| {status} |" in line
    assert "CUDA out of memory" in failed and "unreadable metrics.json" in failed and "no metrics.json" in failed
    assert "saves 65.0 points of real data" in summary
    assert "5 completed, 2 failed, 1 missing" in summary
    assert "| road | 85.0 | 90.0 | 90.0 | 90.0 |" in summary  # the compared method's columns come first

    png = (sweep / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    printed = out.getvalue()
    assert "saves 65.0 points" in printed and "missing" in printed and "6_data.real_frac=0.9" in printed


class FakeWandb(types.ModuleType):
    """Records what the report logs to an 'active run' without a W&B backend."""

    def __init__(self) -> None:
        super().__init__("wandb")
        self.logged: list[dict] = []
        self.run = types.SimpleNamespace(log=self.logged.append)
        self.Table = lambda columns, data: ("table", columns, data)
        self.Image = lambda path: ("image", path)
        self.Html = lambda html: ("html", html)


def test_logs_to_an_active_wandb_run_unless_no_wandb(sweep: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    assert main([str(sweep), "--no-wandb"]) == 0
    assert fake.logged == []
    assert main([str(sweep)]) == 0
    (logged,) = fake.logged
    _, columns, data = logged["report/results"]
    assert columns[:3] == ["job", "status", "method"] and len(data) == 8
    assert logged["report/curves"] == ("image", str(sweep / "curves.png"))
    assert "Failed or missing jobs" in logged["report/summary"][1]


def test_wandb_flag_logs_through_the_real_api(sweep: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import wandb

    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert main([str(sweep), "--wandb"]) == 0
    assert wandb.run is None  # the run the report started is finished again


def test_main_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path / "nope")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope does not exist" in err
    (tmp_path / "empty" / "not_a_job").mkdir(parents=True)
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path / "empty"), "--no-wandb"])
    assert exit_.value.code == 2
    assert "holds no job directories" in capsys.readouterr().err


def study_record(method: str, frac: float, seed: int, miou: float, fw: float = 0.5) -> dict:
    return {"job": f"method={method},data.real_frac={frac},seed={seed}", "overrides": [],
            **completed(method, frac, seed, fw=fw, miou=miou)}


def test_study_folder_report_has_intervals_paired_differences_and_efficiency(tmp_path: Path) -> None:
    """A study folder holds only job records (runs/*.json). Hand-made mIoU values, 3 seeds:
    cyclesem@10 % 0.50 0.52 0.54; target_only@10 % 0.45 0.49 0.47; baseline 0/10/50/100 % as below."""
    study = tmp_path / "real_frac_study"
    (study / "runs").mkdir(parents=True)
    values = {("cyclesem", 0.1): (0.50, 0.52, 0.54), ("target_only", 0.1): (0.45, 0.49, 0.47),
              ("baseline", 0.0): (0.20, 0.20, 0.20), ("baseline", 0.1): (0.40, 0.42, 0.44),
              ("baseline", 0.5): (0.50, 0.50, 0.50), ("baseline", 1.0): (0.60, 0.60, 0.60)}
    for (method, frac), mious in values.items():
        for seed, miou in enumerate(mious):
            record = study_record(method, frac, seed, miou)
            (study / "runs" / f"{method}_{frac}_{seed}.json").write_text(json.dumps(record))
    paths = write_report(study, use_wandb=False, console=Console(file=io.StringIO()))

    t = 4.302652729911275  # t quantile 0.975, 2 degrees of freedom
    with paths["groups"].open(newline="") as f:
        groups = {(r["method"], float(r["real_frac"])): r for r in csv.DictReader(f)}
    row = groups[("cyclesem", 0.1)]
    half = t * 0.02 / math.sqrt(3)  # sample std of 0.50, 0.52, 0.54 is 0.02
    assert (row["n"], row["seeds"]) == ("3", "0 1 2")
    assert float(row["mIoU_mean"]) == pytest.approx(0.52)
    assert (float(row["mIoU_ci_low"]), float(row["mIoU_ci_high"])) == pytest.approx((0.52 - half, 0.52 + half))

    estimates = json.loads(paths["efficiency"].read_text())
    assert estimates["metric"] == "mIoU"
    diffs = {(d["versus"], d["real_frac"]): d for d in estimates["paired_differences"]}
    # cyclesem − target_only per seed: +0.05, +0.03, +0.07 → mean 0.05, std 0.02
    versus_target = diffs[("target_only", 0.1)]
    assert versus_target["mean"] == pytest.approx(0.05) and versus_target["n"] == 3
    assert (versus_target["low"], versus_target["high"]) == pytest.approx((0.05 - half, 0.05 + half))
    # cyclesem − baseline: +0.10 every seed → no spread
    assert diffs[("baseline", 0.1)]["mean"] == pytest.approx(0.10) and diffs[("baseline", 0.1)]["std"] == pytest.approx(0)
    # the baseline's mean curve 0.2, 0.42, 0.5, 0.6 reaches cyclesem's 0.52 at 0.5 + 0.02 / 0.1 · 0.5 = 0.6
    (estimate,) = estimates["estimates"]
    assert estimate["frac"] == 0.1 and estimate["needed"] == pytest.approx(0.6) and estimate["n_seeds"] == 3
    summary = paths["summary"].read_text()
    assert "| target_only | 10.0 | 3 | +5.0 [" in summary and "the baseline needs 60.0 % real" in summary
