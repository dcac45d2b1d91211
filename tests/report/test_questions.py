"""cyclesem.report for the study's open questions: question folders joined to the main study (--include), group
names from a record's fields, overrides or the defaults, and the --method − --baseline paired difference."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
from rich.console import Console

from cyclesem.data.labels import CLASS_NAMES
from cyclesem.report.__main__ import main
from cyclesem.report.efficiency import summarize
from cyclesem.report.jobs import collect
from cyclesem.report.types import ReportError
from cyclesem.report.write import write_report
from cyclesem.study.run_record import config_summary
from tests.conftest import compose_config

T2 = 4.302652729911275  # t quantile 0.975, 2 degrees of freedom


def record(method: str, frac: float, seed: int, miou: float, *extra: str, **fields) -> dict:
    """A study job record as cyclesem/study/records.py writes it (before the options dict: class_weights only)."""
    overrides = ["+experiment=real_frac_study", f"method={method}", f"data.real_frac={frac}", f"seed={seed}", *extra]
    per_class = {f"iou_{name}": 0.5 for name in CLASS_NAMES}
    return {"job": ",".join(sorted(o.lstrip("+") for o in overrides)), "overrides": overrides,
            "status": "completed", "method": method, "real_frac": frac, "seed": seed, "data": "synthetic",
            "class_weights": "median", "semantic_classifier": "joint",
            "test": {"fwIoU": 0.7, "mIoU": miou, "pixel_acc": 0.9, **per_class}, **fields}


def write(study: Path, rec: dict) -> Path:
    path = study / "runs" / f"{rec['job']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec))
    return path


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """The main study: cyclesem at 10 % (the control arm, seg_source_rule not in its overrides: the default
    constant) and the baseline; the question folder: cyclesem with seg_source_rule=anneal at 10 %.
    mIoU per seed 0, 1, 2: constant 0.40 0.42 0.44, anneal 0.45 0.46 0.50, baseline 0.30 0.30 0.30."""
    main_study, question = tmp_path / "real_frac_study", tmp_path / "real_frac_study" / "questions" / "seg_source_rule"
    for seed, (constant, anneal) in enumerate([(0.40, 0.45), (0.42, 0.46), (0.44, 0.50)]):
        write(main_study, record("cyclesem", 0.1, seed, constant))
        write(main_study, record("baseline", 0.1, seed, 0.30))
        write(question, record("cyclesem", 0.1, seed, anneal, "model.loss.seg_source_rule=anneal"))
    return main_study, question


def test_include_merges_records_and_writes_only_into_the_report_folder(folders: tuple[Path, Path]) -> None:
    main_study, question = folders
    before = sorted(p.name for p in main_study.iterdir())
    out = io.StringIO()
    paths = write_report(question, group_by="method,seg_source_rule", method="cyclesem/anneal",
                         baseline="cyclesem/constant", include=[main_study], use_wandb=False,
                         console=Console(file=out, width=240))
    assert all(p.parent == question for p in paths.values())
    assert sorted(p.name for p in main_study.iterdir()) == before  # the included folder is only read

    groups = {(g.method, g.real_frac): g for g in summarize(collect(question, "method,seg_source_rule", [main_study]))}
    assert set(groups) == {("cyclesem/anneal", 0.1), ("cyclesem/constant", 0.1), ("baseline/constant", 0.1)}
    assert [groups[k].n for k in sorted(groups)] == [3, 3, 3]
    assert groups[("cyclesem/anneal", 0.1)].mean["mIoU"] == pytest.approx(0.47)
    assert groups[("cyclesem/constant", 0.1)].mean["mIoU"] == pytest.approx(0.42)
    assert groups[("baseline/constant", 0.1)].mean["mIoU"] == pytest.approx(0.30)

    # anneal − constant per seed: +0.05, +0.04, +0.06 → mean 0.05, sample std 0.01
    half = T2 * 0.01 / math.sqrt(3)
    efficiency = json.loads(paths["efficiency"].read_text())
    assert efficiency["included"] == [str(main_study)]
    (diff,) = efficiency["paired_differences"]  # "baseline/constant" is not a fixed comparator's name
    assert (diff["method"], diff["versus"], diff["real_frac"], diff["n"]) == ("cyclesem/anneal", "cyclesem/constant",
                                                                              0.1, 3)
    assert diff["mean"] == pytest.approx(0.05) and diff["std"] == pytest.approx(0.01)
    assert (diff["low"], diff["high"]) == pytest.approx((0.05 - half, 0.05 + half))
    text = f"+5.0 [{100 * (0.05 - half):+.1f}, {100 * (0.05 + half):+.1f}]"
    assert text == "+5.0 [+2.5, +7.5]"
    summary = paths["summary"].read_text()
    assert f"| cyclesem/constant | 10.0 | 3 | {text} |" in summary
    assert f"and the job records of `{main_study}`: 9 jobs — 9 completed" in summary
    assert f"cyclesem/anneal − cyclesem/constant at 10.0 % real (n=3): {text}" in out.getvalue()


def test_method_minus_baseline_comes_first_beside_the_fixed_comparators(tmp_path: Path) -> None:
    """--baseline oracle (not a fixed comparator): cyclesem − oracle is reported first, then cyclesem − baseline;
    mIoU per seed: cyclesem 0.50 0.52 0.54, baseline 0.40, oracle 0.60 → −0.08 and +0.12."""
    study = tmp_path / "study"
    for seed, (ours, base, oracle) in enumerate([(0.50, 0.40, 0.60), (0.52, 0.40, 0.60), (0.54, 0.40, 0.60)]):
        write(study, record("cyclesem", 0.1, seed, ours))
        write(study, record("baseline", 0.1, seed, base))
        write(study, record("oracle", 0.1, seed, oracle))
    paths = write_report(study, baseline="oracle", use_wandb=False, console=Console(file=io.StringIO()))
    diffs = json.loads(paths["efficiency"].read_text())["paired_differences"]
    assert [(d["versus"], round(d["mean"], 6)) for d in diffs] == [("oracle", -0.08), ("baseline", 0.12)]


def test_compare_adds_a_second_arms_paired_difference(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """--compare baseline/none:baseline/median beside --method cyclesem/none --baseline cyclesem/median (question 3's
    two arms); mIoU per seed 0, 1, 2: cyclesem none 0.40 0.41 0.45 / median 0.42 0.42 0.44 → −0.02 −0.01 +0.01,
    baseline none 0.30 0.30 0.33 / median 0.33 0.32 0.34 → −0.03 −0.02 −0.01 (mean −0.02, std 0.01)."""
    main_study, question = tmp_path / "real_frac_study", tmp_path / "real_frac_study" / "questions" / "class_weights"
    scores = [(0.40, 0.42, 0.30, 0.33), (0.41, 0.42, 0.30, 0.32), (0.45, 0.44, 0.33, 0.34)]
    for seed, (cyc_none, cyc_median, base_none, base_median) in enumerate(scores):
        write(main_study, record("cyclesem", 0.1, seed, cyc_median))
        write(main_study, record("baseline", 0.1, seed, base_median))
        write(question, record("cyclesem", 0.1, seed, cyc_none, "model.class_weights=none", class_weights="none"))
        write(question, record("baseline", 0.1, seed, base_none, "model.class_weights=none", class_weights="none"))
    args = [str(question), "--include", str(main_study), "--group-by", "method,class_weights", "--method",
            "cyclesem/none", "--baseline", "cyclesem/median", "--no-wandb"]
    assert main([*args, "--compare", "baseline/none:baseline/median"]) == 0
    efficiency = json.loads((question / "efficiency.json").read_text())
    # --baseline first, then the fixed comparators of the method's own setting (baseline/none, not baseline/median)
    first, same_setting = efficiency["paired_differences"]
    assert (first["method"], first["versus"]) == ("cyclesem/none", "cyclesem/median")
    assert first["mean"] == pytest.approx(-0.02 / 3)
    assert (same_setting["method"], same_setting["versus"]) == ("cyclesem/none", "baseline/none")
    assert same_setting["mean"] == pytest.approx(0.11)  # 0.40 − 0.30, 0.41 − 0.30, 0.45 − 0.33
    (further,) = efficiency["further_paired_differences"]
    assert (further["method"], further["versus"], further["real_frac"], further["n"]) == (
        "baseline/none", "baseline/median", 0.1, 3)
    assert further["mean"] == pytest.approx(-0.02) and further["std"] == pytest.approx(0.01)
    half = T2 * 0.01 / math.sqrt(3)
    text = f"{100 * -0.02:+.1f} [{100 * (-0.02 - half):+.1f}, {100 * (-0.02 + half):+.1f}]"
    assert text == "-2.0 [-4.5, +0.5]"
    assert f"| baseline/none | baseline/median | 10.0 | 3 | {text} not resolved |" in (
        question / "summary.md").read_text()
    assert f"baseline/none − baseline/median at 10.0 % real (n=3): {text} not resolved" in capsys.readouterr().out

    # a group name nobody has, or a malformed pair: one clear error, exit 2, the written report left as it was
    before = (question / "summary.md").read_text()
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--compare", "baseline/none:oracle/median"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "no group is named 'oracle/median'" in err and "baseline/median, baseline/none, cyclesem/median" in err
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--compare", "baseline/none"])
    assert exit_.value.code == 2 and "is not METHOD:OTHER" in capsys.readouterr().err
    assert (question / "summary.md").read_text() == before


def test_efficiency_against_target_only_reads_the_real_images_alone_as_the_yardstick(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """--efficiency-against target_only: where target_only's curve (0.30 at 5 %, 0.40 at 10 %, 0.50 at 30 %, every
    seed) reaches cyclesem's 0.35 at 10 % → 7.5 % real; the baseline's (0.20 at 10 %, 0.40 at 30 %) → 25 %."""
    study = tmp_path / "study"
    for seed in (0, 1, 2):
        write(study, record("cyclesem", 0.1, seed, 0.35))
        for frac, miou in ((0.1, 0.20), (0.3, 0.40)):
            write(study, record("baseline", frac, seed, miou))
        for frac, miou in ((0.05, 0.30), (0.1, 0.40), (0.3, 0.50)):
            write(study, record("target_only", frac, seed, miou))
    assert main([str(study), "--efficiency-against", "target_only", "--no-wandb"]) == 0
    efficiency = json.loads((study / "efficiency.json").read_text())
    (against_baseline,) = efficiency["estimates"]
    assert against_baseline["needed"] == pytest.approx(0.25)
    (further,) = efficiency["further_estimates"]
    (estimate,) = further["estimates"]
    assert further["baseline"] == "target_only" and estimate["frac"] == 0.1 and estimate["n_seeds"] == 3
    assert estimate["needed"] == pytest.approx(0.075) and estimate["verdict"] == "resolved"
    summary = (study / "summary.md").read_text()
    assert "## Data efficiency (mIoU, cyclesem vs target_only)" in summary
    assert "- at 10.0 % real (3 seeds, 35.0): target_only needs 7.5 % real, 95 % CI [7.5, 7.5] — resolved" in summary
    assert "- at 10.0 % real (3 seeds, 35.0): the baseline needs 25.0 % real" in summary
    out = capsys.readouterr().out
    assert "cyclesem at 10.0 % real: mIoU 35.0 % → target_only needs 7.5 % real (interpolated) → no saving" in out

    # without the option the file has no further estimates; a method nobody ran: one error, exit 2
    assert main([str(study), "--no-wandb"]) == 0
    assert "further_estimates" not in json.loads((study / "efficiency.json").read_text())
    with pytest.raises(SystemExit) as exit_:
        main([str(study), "--efficiency-against", "oracle", "--no-wandb"])
    assert exit_.value.code == 2 and "no group is named 'oracle'" in capsys.readouterr().err


def test_duplicate_record_key_in_two_folders_is_an_error(folders: tuple[Path, Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    main_study, question = folders
    copy = write(question, record("cyclesem", 0.1, 0, 0.99))  # the main study's control job again
    with pytest.raises(ReportError) as err:
        collect(question, "method", [main_study])
    assert str(copy) in str(err.value) and str(main_study / "runs" / copy.name) in str(err.value)
    with pytest.raises(SystemExit) as exit_:
        main([str(question), "--include", str(main_study), "--no-wandb"])
    assert exit_.value.code == 2
    assert "is in two folders" in capsys.readouterr().err
    assert not (question / "summary.md").exists()  # nothing written
    with pytest.raises(ReportError, match="holds no job records"):
        collect(question, "method", [tmp_path])
    with pytest.raises(ReportError, match="included twice"):
        collect(main_study, "method", [main_study])


def test_group_by_reads_overrides_as_yaml_scalars(tmp_path: Path) -> None:
    """pavement_share and source_filter are in no old record: the override data.prepare.pavement_share=0.3 gives
    0.3, data.source_filter=pavement gives pavement; records without them get conf/data/synthetic.yaml's
    defaults (0.0, none); an ``options`` dict (records from now on) is read before the overrides."""
    study = tmp_path / "pavement"
    write(study, record("cyclesem", 0.1, 0, 0.40))
    write(study, record("cyclesem", 0.1, 0, 0.41, "data.prepare.pavement_share=0.3", "data.source_filter=none"))
    write(study, record("cyclesem", 0.1, 0, 0.42, "data.prepare.pavement_share=0.3", "data.source_filter=pavement"))
    write(study, record("cyclesem", 0.1, 1, 0.43, "data.prepare.pavement_share=0",
                        options={"source_filter": "pavement"}))
    jobs = collect(study, "method,pavement_share,source_filter")
    assert sorted((j.method, j.scores["mIoU"]) for j in jobs) == [
        ("cyclesem/0.0/none", 0.40), ("cyclesem/0.0/pavement", 0.43), ("cyclesem/0.3/none", 0.41),
        ("cyclesem/0.3/pavement", 0.42)]
    groups = {g.method: g.n for g in summarize(jobs)}
    assert groups == {"cyclesem/0.0/none": 1, "cyclesem/0.0/pavement": 1, "cyclesem/0.3/none": 1,
                      "cyclesem/0.3/pavement": 1}


def test_group_by_defaults_come_from_method_options(folders: tuple[Path, Path]) -> None:
    """The control arm's records say nothing about seg_source_rule / seg_source: MethodOptions' defaults
    (constant, 1.0); class_weights is the record's own field (median, not the dataclass default none)."""
    main_study, _ = folders
    jobs = collect(main_study, "method,seg_source_rule,seg_source,class_weights")
    assert {j.method for j in jobs} == {"cyclesem/constant/1.0/median", "baseline/constant/1.0/median"}
    assert all(j.status == "completed" for j in jobs)


def test_a_field_nothing_determines_fails_the_job_naming_it(folders: tuple[Path, Path]) -> None:
    main_study, _ = folders
    jobs = collect(main_study, "method,no_such_option")
    assert {j.status for j in jobs} == {"failed"} and summarize(jobs) == []
    assert all("cannot tell the job's 'no_such_option'" in j.error for j in jobs)


def test_new_records_carry_the_open_questions_options(tmp_path: Path) -> None:
    cfg = compose_config("train", ["+experiment=real_frac_study", "model.loss.seg_source_rule=anneal",
                                   "data.prepare.pavement_share=0.3", "data.source_filter=pavement"], tmp_path)
    options = config_summary(cfg)["options"]
    assert options == {"seg_source_rule": "anneal", "seg_source": 1.0, "seg_source_end": 0.0,
                       "class_weights": "median", "source_filter": "pavement", "pavement_share": 0.3,
                       "palette_shift": 1.0}
    default = config_summary(compose_config("train", [], tmp_path))["options"]
    assert (default["seg_source_rule"], default["class_weights"], default["source_filter"],
            default["pavement_share"], default["palette_shift"]) == ("constant", "none", "none", 0.0, 0.25)
    json.dumps(options)  # plain values: the record is JSON


def test_records_name_their_pair(tmp_path: Path) -> None:
    """The record's ``pair``: folder, VERSION, pavement share, palette shift and rendering digest; none for GTA5."""
    from cyclesem.data.synthetic.pair import FIRST_PAIR_DIGEST, VERSION, rendering_digest

    first = config_summary(compose_config("train", ["+experiment=real_frac_study"], tmp_path))["pair"]
    assert first == {"name": "synthetic", "version": VERSION, "pavement_share": 0.0, "palette_shift": 1.0,
                     "rendering": FIRST_PAIR_DIGEST}
    cfg = compose_config("train", ["+experiment=gap_calibration", "data.prepare.palette_shift=0.25"], tmp_path)
    summary = config_summary(cfg)
    assert summary["pair"] == {"name": "synthetic_palette0.25", "version": VERSION, "pavement_share": 0.0,
                               "palette_shift": 0.25, "rendering": rendering_digest(0.25)}
    assert summary["options"]["palette_shift"] == 0.25 and rendering_digest(0.25) != FIRST_PAIR_DIGEST
    assert config_summary(compose_config("train", ["data=gta5_cityscapes"], tmp_path))["pair"] is None
    json.dumps(summary["pair"])
