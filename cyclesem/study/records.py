"""Studies that outlive a machine: a plan of (method, real_frac, seed) jobs and one small record per finished job.

A study preset (``conf/experiment/real_frac_study.yaml``) sweeps the cartesian product of its methods,
fractions and seeds with Hydra ``-m`` and lists the jobs it wants in ``study.plan``; a job outside the plan
returns at once. Each completed job writes ``<study.dir>/runs/<job key>.json`` (its metrics record, resolved
overrides, seed, wall time and commit; no checkpoints), so the records can be committed, ``resume_sweep=true``
skips every job whose record exists — on any machine, in any session — and ``python -m cyclesem.report
<study.dir>`` rebuilds the tables from the records alone.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cyclesem.study.run_record import portable_override

# overrides that say where or how a job runs, not what it computes: not part of a job's identity (a dataset's folder
# too, data.<side>.root=...: the same study resumes on a machine that keeps GTA5 or Cityscapes elsewhere)
_NOT_IDENTITY = re.compile(
    r"^[+~]*(hydra[./]|paths\.|logger|resume_sweep|study\.|ckpt_path|callbacks\.|sweep_name|data\.\w+\.root=)")


def job_key(overrides: Iterable[str]) -> str:
    """A file name for a job from its command-line overrides, in a fixed order: the same job gets the same key
    whatever order the sweep listed its parameters in."""
    kept = sorted(o.lstrip("+") for o in overrides if not _NOT_IDENTITY.match(o))
    key = ",".join(kept) or "defaults"
    return re.sub(r"[^A-Za-z0-9_.,=@+-]", "_", key)


def in_plan(plan: Sequence[Mapping[str, Any]] | None, method: str, real_frac: float, seed: int) -> bool:
    """Whether a study plan (entries of ``methods``, ``fractions``, ``seeds``) asks for this job; no plan: all."""
    if not plan:
        return True
    return any(method in entry["methods"] and any(abs(real_frac - f) < 1e-9 for f in entry["fractions"])
               and seed in entry["seeds"] for entry in plan)


def planned_jobs(plan: Sequence[Mapping[str, Any]]) -> set[tuple[str, float, int]]:
    """Every (method, real_frac, seed) the plan asks for, each once."""
    return {(m, round(float(f), 6), int(s)) for e in plan for m in e["methods"] for f in e["fractions"]
            for s in e["seeds"]}


def record_path(study_dir: str | os.PathLike, key: str) -> Path:
    return Path(study_dir) / "runs" / f"{key}.json"


def read_record(path: Path) -> dict[str, Any] | None:
    """A completed job's record, or None (absent, unreadable, or not completed)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("status") == "completed" else None


def completed_record(output_dir: Path) -> dict[str, Any] | None:
    """A job directory's metrics.json when it finished with status completed, else None."""
    record = read_record(output_dir / "metrics.json")
    return record if record is not None and record.get("test") is not None else None


def write_record(study_dir: str | os.PathLike, key: str, record: Mapping[str, Any],
                 overrides: Sequence[str]) -> Path:
    """Write the job's record atomically (a killed job leaves no half file for the next resume to trust)."""
    path = record_path(study_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    small = {k: v for k, v in record.items() if k not in ("config", "best_checkpoint", "last_checkpoint", "wandb_dir")}
    tmp = path.with_suffix(f".json.tmp{os.getpid()}")
    overrides = [portable_override(o) for o in overrides]  # paths.data_dir=/home/… names only this machine
    tmp.write_text(json.dumps({"job": key, "overrides": overrides, **small}, indent=1, sort_keys=True,
                              default=str) + "\n")
    os.replace(tmp, path)
    return path
