"""Reading a sweep directory: one JobResult per job directory, from its metrics.json and Hydra files.

A job whose metrics.json says "failed", is unreadable, or is absent (crashed hard or still running) is listed
as failed/missing. Scores are the test scores (best checkpoint on the target val split), else the val scores.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from cyclesem.report.tables import HEADLINE, TRANSLATION_KEYS
from cyclesem.report.types import JobResult, ReportError


def _job_number(path: Path) -> tuple[int, str]:
    head = path.name.split("_", 1)[0]
    return (int(head) if head.isdigit() else sys.maxsize, path.name)


def _load_yaml(text_or_path: str | Path, kind: type = object) -> Any:
    """Parsed YAML if it is a ``kind``, else None: .hydra files of a broken job must not stop the report."""
    try:
        value = yaml.safe_load(text_or_path.read_text() if isinstance(text_or_path, Path) else text_or_path)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return value if isinstance(value, kind) else None


def _number(value: Any, kind: type) -> Any:
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


def _label(values: Sequence[Any]) -> str | None:
    """The group name of a job from its ``--group-by`` field values: "cyclesem", "cyclesem/median", …"""
    return None if any(v is None for v in values) else "/".join(str(v) for v in values)


def _hydra_settings(job_dir: Path, group_by: Sequence[str] = ("method",)) -> dict[str, Any]:
    """method / real_frac / seed from the job's .hydra files, for jobs whose metrics.json is absent or broken.
    The "method" is the ``group_by`` fields joined by "/": the field "method" is the model choice, any other
    an override ``[model.]<field>=...``, else ``model.<field>`` in the job's config."""
    hydra_dir = job_dir / ".hydra"
    overrides = {}
    for item in _load_yaml(hydra_dir / "overrides.yaml", list) or []:
        key, sep, value = str(item).lstrip("+~").partition("=")
        if sep:
            overrides[key] = _load_yaml(value)
    config = _load_yaml(hydra_dir / "config.yaml", dict) or {}
    choices = _load_yaml(hydra_dir / "hydra.yaml", dict) or {}
    for key in ("hydra", "runtime", "choices"):
        choices = choices.get(key) if isinstance(choices.get(key), dict) else {}
    model_cfg = config["model"] if isinstance(config.get("model"), dict) else {}
    data_cfg = config["data"] if isinstance(config.get("data"), dict) else {}
    method = choices.get("model") or overrides.get("model")
    if method is None and isinstance(model_cfg.get("style_transfer"), bool):  # run_record.config_summary's rule
        method = "cyclesem" if model_cfg["style_transfer"] else "baseline"
    values = [method if field == "method" else
              next((v for k, v in overrides.items() if k.split(".")[-1] == field), model_cfg.get(field))
              for field in group_by]
    return {
        "method": _label(values),
        "real_frac": _number(overrides.get("data.real_frac", data_cfg.get("real_frac")), float),
        "seed": _number(overrides.get("seed", config.get("seed")), int),
    }


def _read_json(path: Path) -> dict:
    record = json.loads(path.read_text())
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    return record


def _read_job(job_dir: Path, group_by: Sequence[str] = ("method",)) -> JobResult:
    settings = _hydra_settings(job_dir, group_by)
    path = job_dir / "metrics.json"
    if not path.is_file():
        return JobResult(job_dir.name, "missing", **settings, error="no metrics.json (crashed hard or still running)")
    try:
        record = _read_json(path)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return JobResult(job_dir.name, "failed", **settings, error=f"unreadable metrics.json: {err}")
    return _from_record(job_dir.name, record, settings, group_by)


def _read_study_record(path: Path, group_by: Sequence[str]) -> JobResult:
    """A study's job record (cyclesem/study.py): the metrics record of a completed job with its overrides."""
    try:
        record = _read_json(path)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return JobResult(path.stem, "failed", None, None, None, error=f"unreadable record: {err}")
    return _from_record(path.stem, record, {"method": None, "real_frac": None, "seed": None}, group_by)


def _from_record(name: str, record: dict, settings: dict[str, Any], group_by: Sequence[str]) -> JobResult:
    method = _label([record.get(field) for field in group_by]) or settings["method"]
    real_frac = _number(record.get("real_frac"), float)
    seed = _number(record.get("seed"), int)
    job = JobResult(name, "completed", method, settings["real_frac"] if real_frac is None else real_frac,
                    settings["seed"] if seed is None else seed, wall_time_s=_number(record.get("wall_time_s"), float))
    if record.get("status") != "completed":
        job.status = "failed"
        job.error = record.get("error") or f"status {record.get('status')!r} without an error message"
        return job
    for split in ("test", "val"):
        scores = record.get(split)
        if isinstance(scores, dict) and scores:
            job.split = split
            job.scores = {k: v for k, v in ((k, _number(v, float)) for k, v in scores.items()) if v is not None}
            break
    # runs before test-time translation metrics: the last validation epoch's (same generators unless the best
    # checkpoint is an earlier epoch)
    val = record.get("val")
    for key in TRANSLATION_KEYS:
        val_value = _number(val.get(key), float) if isinstance(val, dict) else None
        if val_value is not None:
            job.scores.setdefault(key, val_value)
    if not any(k in job.scores for k in HEADLINE):
        job.status, job.error = "failed", "metrics.json says completed but holds no test or val scores"
    elif job.method is None or job.real_frac is None:
        job.status, job.error = "failed", "cannot tell the job's method or real_frac"
    return job


def collect(sweep_dir: Path | str, group_by: str | Sequence[str] = "method") -> list[JobResult]:
    """One JobResult per job record of a study folder (``runs/*.json``, see cyclesem/study.py), else per job
    directory (a child holding .hydra/ or metrics.json), in job-number order; a job's
    "method" is its metrics.json field(s) ``group_by`` joined by "/" (e.g. "semantic_classifier" to compare the
    variants, "method,class_weights" for cyclesem/median vs baseline/median …)."""
    group_by = tuple(f.strip() for f in group_by.split(",")) if isinstance(group_by, str) else tuple(group_by)
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ReportError(f"sweep directory {sweep_dir} does not exist")
    records = sorted((sweep_dir / "runs").glob("*.json"))
    if records:  # a study folder: its committed job records are the results
        return [_read_study_record(p, group_by) for p in records]
    job_dirs = [p for p in sweep_dir.iterdir() if p.is_dir() and ((p / ".hydra").is_dir() or (p / "metrics.json").exists())]
    if not job_dirs:
        raise ReportError(f"{sweep_dir} holds no job directories (expected <n>_<overrides>/ with .hydra/ or "
                          "metrics.json, as written by `python -m cyclesem.train -m ...`)")
    return [_read_job(p, group_by) for p in sorted(job_dirs, key=_job_number)]
