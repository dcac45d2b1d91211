"""Reading a sweep directory: one JobResult per job directory, from its metrics.json and Hydra files.

A job whose metrics.json says "failed", is unreadable, or is absent (crashed hard or still running) is listed
as failed/missing. Scores are the test scores (best checkpoint on the target val split), else the val scores.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from enum import Enum
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


def _flatten(mapping: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping's leaves under dotted keys: {"data": {"prepare": {"pavement_share": 0}}} →
    {"data.prepare.pavement_share": 0}."""
    flat: dict[str, Any] = {}
    for key, value in (mapping.items() if isinstance(mapping, dict) else ()):
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _lookup(flat: dict[str, Any], field: str) -> Any:
    """``field`` in a mapping of dotted keys: the key itself, else the first key ending in ".<field>"; None if
    absent (or null)."""
    if flat.get(field) is not None:
        return flat[field]
    return next((v for k, v in flat.items() if k.endswith(f".{field}") and v is not None), None)


def _parse_overrides(items: Any) -> dict[str, Any]:
    """Hydra command-line overrides ("+experiment=x", "data.real_frac=0.1", …) as {dotted key: YAML scalar};
    the leading +/~ are dropped, an override without "=" (a deletion) is left out."""
    overrides = {}
    for item in items if isinstance(items, list) else ():
        key, sep, value = str(item).lstrip("+~").partition("=")
        if sep:
            overrides[key] = _load_yaml(value)
    return overrides


@functools.cache
def _defaults(data: str | None) -> dict[str, Any]:
    """The default of every method option (``model.*``: the MethodOptions / LossWeights dataclass defaults, enums
    as their values) and every data setting (``data.*``: conf/data/<data>.yaml as written; <data> is the run's
    data choice, else conf/train.yaml's), under dotted keys."""
    from cyclesem.method.options import MethodOptions
    from cyclesem.runtime.config import CONF_DIR

    options = _flatten(asdict(MethodOptions()), "model.")
    defaults = {k: v.value if isinstance(v, Enum) else v for k, v in options.items()}
    if not data:
        entries = (_load_yaml(Path(CONF_DIR) / "train.yaml", dict) or {}).get("defaults") or []
        data = next((e["data"] for e in entries if isinstance(e, dict) and "data" in e), None)
    path = Path(CONF_DIR) / "data" / f"{data}.yaml"
    data_cfg = _load_yaml(path, dict) if data and path.is_file() else None
    return defaults | _flatten(data_cfg or {}, "data.")


# Settings whose config default changed after records that do not name them were written: such a record ran at
# the old value. palette_shift: every record from before the pair family (issue 34) ran on the first pair (1.0);
# every record since names it (options.palette_shift), and the default became the calibrated pair's 0.25.
LEGACY_DEFAULTS: dict[str, Any] = {"palette_shift": 1.0}


def _field_values(group_by: Sequence[str], record: dict, fallback: dict[str, Any] | None = None
                  ) -> tuple[list[Any], str | None]:
    """Each ``group_by`` field of a job: the record's own field, else its ``options`` entry (records since the
    open questions), else its override ``<...>.<field>=value``, else ``fallback`` (what a job directory's .hydra
    files say), else the field's default (`_defaults`). Returns the values and an error naming the first field
    none of these determines."""
    options = record.get("options") if isinstance(record.get("options"), dict) else {}
    overrides = _parse_overrides(record.get("overrides"))
    values, error = [], None
    for field in group_by:
        default = _lookup(_defaults(record.get("data") if isinstance(record.get("data"), str) else None), field)
        if default is not None and field in LEGACY_DEFAULTS:
            default = LEGACY_DEFAULTS[field]  # a record that names no value: written before the default changed
        value = next((v for v in (record.get(field), options.get(field), _lookup(overrides, field),
                                  (fallback or {}).get(field), default) if v is not None), None)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # pavement_share=0 and the default 0.0 are one group
        if value is None and error is None:
            error = (f"cannot tell the job's {field!r}: not in its record, its overrides or the defaults "
                     "(MethodOptions, conf/data/)")
        values.append(value)
    return values, error


def _hydra_settings(job_dir: Path, group_by: Sequence[str] = ("method",)) -> tuple[dict[str, Any], dict[str, Any]]:
    """method / real_frac / seed from the job's .hydra files, for jobs whose metrics.json is absent or broken,
    and the ``group_by`` fields these files name: the field "method" is the model choice, any other an override
    ``[model.]<field>=...``, else ``model.<field>`` in the job's config. The "method" is the ``group_by`` fields
    joined by "/" (defaults where the files say nothing)."""
    hydra_dir = job_dir / ".hydra"
    overrides = _parse_overrides(_load_yaml(hydra_dir / "overrides.yaml", list))
    config = _load_yaml(hydra_dir / "config.yaml", dict) or {}
    choices = _load_yaml(hydra_dir / "hydra.yaml", dict) or {}
    for key in ("hydra", "runtime", "choices"):
        choices = choices.get(key) if isinstance(choices.get(key), dict) else {}
    model_cfg = config["model"] if isinstance(config.get("model"), dict) else {}
    data_cfg = config["data"] if isinstance(config.get("data"), dict) else {}
    method = choices.get("model") or overrides.get("model")
    if method is None and isinstance(model_cfg.get("style_transfer"), bool):  # run_record.config_summary's rule
        method = "cyclesem" if model_cfg["style_transfer"] else "baseline"
    fields = {field: method if field == "method" else
              next((v for k, v in overrides.items() if k.split(".")[-1] == field),
                   model_cfg.get(field, _lookup(_flatten(data_cfg, "data."), field)))
              for field in group_by}
    data = choices.get("data") if isinstance(choices.get("data"), str) else None
    values, _ = _field_values(group_by, {"data": data}, fields)
    settings = {
        "method": _label(values),
        "real_frac": _number(overrides.get("data.real_frac", data_cfg.get("real_frac")), float),
        "seed": _number(overrides.get("seed", config.get("seed")), int),
    }
    return settings, fields


def _read_json(path: Path) -> dict:
    record = json.loads(path.read_text())
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    return record


def _read_job(job_dir: Path, group_by: Sequence[str] = ("method",)) -> JobResult:
    settings, fields = _hydra_settings(job_dir, group_by)
    path = job_dir / "metrics.json"
    if not path.is_file():
        return JobResult(job_dir.name, "missing", **settings, error="no metrics.json (crashed hard or still running)")
    try:
        record = _read_json(path)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return JobResult(job_dir.name, "failed", **settings, error=f"unreadable metrics.json: {err}")
    return _from_record(job_dir.name, record, settings, group_by, fields)


def _read_study_record(path: Path, group_by: Sequence[str]) -> JobResult:
    """A study's job record (cyclesem/study/records.py): the metrics record of a completed job with its overrides."""
    try:
        record = _read_json(path)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return JobResult(path.stem, "failed", None, None, None, error=f"unreadable record: {err}")
    return _from_record(path.stem, record, {"method": None, "real_frac": None, "seed": None}, group_by)


def _from_record(name: str, record: dict, settings: dict[str, Any], group_by: Sequence[str],
                 fallback: dict[str, Any] | None = None) -> JobResult:
    values, unknown = _field_values(group_by, record, fallback)
    method = _label(values)
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
    # the anchors the gain divides by, reported beside it (records since the translation score name them)
    reference = record.get("translation_reference")
    if isinstance(reference, dict) and "translation_score" in job.scores:
        for anchor in ("floor", "ceiling"):
            value = _number(reference.get(anchor), float)
            if value is not None:
                job.scores[f"translation_{anchor}"] = value
    if not any(k in job.scores for k in HEADLINE):
        job.status, job.error = "failed", "metrics.json says completed but holds no test or val scores"
    elif unknown is not None:
        job.status, job.error = "failed", unknown
    elif job.real_frac is None:
        job.status, job.error = "failed", "cannot tell the job's real_frac"
    return job


def _study_records(folder: Path) -> list[Path]:
    return sorted((folder / "runs").glob("*.json"))


def _included_records(sweep_dir: Path, records: list[Path], include: Sequence[Path | str]) -> list[Path]:
    """The records of the ``include`` study folders, after the main folder's; a job key (record file name) in two
    folders is an error naming both files: one job must not count twice."""
    seen = {p.name: p for p in records}
    folders = {sweep_dir.resolve(): sweep_dir}
    extra = []
    for folder in map(Path, include):
        if not folder.is_dir():
            raise ReportError(f"included study folder {folder} does not exist")
        if folder.resolve() in folders:
            raise ReportError(f"{folder} is included twice (as {folders[folder.resolve()]} too)")
        folders[folder.resolve()] = folder
        found = _study_records(folder)
        if not found:
            raise ReportError(f"included study folder {folder} holds no job records (runs/*.json)")
        for path in found:
            if path.name in seen:
                raise ReportError(f"job record {path.stem!r} is in two folders: {seen[path.name]} and {path}")
            seen[path.name] = path
        extra += found
    return extra


def collect(sweep_dir: Path | str, group_by: str | Sequence[str] = "method",
            include: Sequence[Path | str] = ()) -> list[JobResult]:
    """One JobResult per job record of a study folder (``runs/*.json``, see cyclesem/study/records.py), else per job
    directory (a child holding .hydra/ or metrics.json), in job-number order; then one per job record of each
    ``include`` study folder (read only). A job's "method" is its field(s) ``group_by`` joined by "/" (e.g.
    "semantic_classifier" to compare the variants, "method,class_weights" for cyclesem/median vs baseline/median
    …), each from the record, else its overrides, else the option's default (see `_field_values`)."""
    group_by = tuple(f.strip() for f in group_by.split(",")) if isinstance(group_by, str) else tuple(group_by)
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ReportError(f"sweep directory {sweep_dir} does not exist")
    records = _study_records(sweep_dir)
    included = [_read_study_record(p, group_by) for p in _included_records(sweep_dir, records, include)]
    if records:  # a study folder: its committed job records are the results
        return [_read_study_record(p, group_by) for p in records] + included
    job_dirs = [p for p in sweep_dir.iterdir() if p.is_dir() and ((p / ".hydra").is_dir() or (p / "metrics.json").exists())]
    if not job_dirs and not included:
        raise ReportError(f"{sweep_dir} holds no job directories (expected <n>_<overrides>/ with .hydra/ or "
                          "metrics.json, as written by `python -m cyclesem.train -m ...`)")
    return [_read_job(p, group_by) for p in sorted(job_dirs, key=_job_number)] + included
