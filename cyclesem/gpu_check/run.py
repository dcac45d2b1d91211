"""Running the configured checks, each isolated, and writing the record after each one."""

from __future__ import annotations

import contextlib
import gc
import tempfile
import time
import traceback
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from cyclesem.gpu_check.checks import CHECK_FUNCTIONS, CHECKS, Context, Result
from cyclesem.gpu_check.record import (
    SCHEMA_VERSION,
    error_location,
    json_safe,
    machine,
    one_line,
    output_path,
)
from cyclesem.study.run_record import environment_record, write_metrics

MODES = ("gpu", "cpu")


def run_check(name: str, ctx: Context) -> Result:
    function, what = CHECK_FUNCTIONS[name]
    result = Result(what=what)
    skip = ctx.profile[name].get("skip")
    if skip:
        result.status, result.error = "skipped", str(skip)
        return result
    started = time.perf_counter()
    try:
        function(ctx, result)
        if ctx.device_type == "cuda":
            torch.cuda.synchronize()
        result.status = "passed"
    except Exception as err:  # isolated: record it and go on with the next check
        traceback.print_exc()
        result.error, result.error_at = one_line(err), error_location(err)
    finally:
        result.wall_time_s = round(time.perf_counter() - started, 1)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    print(f"gpu_check {name}: {result.status} in {result.wall_time_s} s" + (f" ({result.error})" if result.error else ""))
    return result


class StartError(ValueError):
    """The command cannot start: no CUDA device in mode=gpu, an unknown mode or check."""


def check_start(cfg: DictConfig) -> None:
    if cfg.mode not in MODES:
        raise StartError(f"mode={cfg.mode!r} is not one of {', '.join(MODES)}")
    unknown = [name for name in cfg.checks if name not in CHECKS]
    if unknown or not cfg.checks:
        raise StartError(f"checks={list(cfg.checks)}: expected a non-empty list of {', '.join(CHECKS)}")
    if cfg.mode == "gpu" and not torch.cuda.is_available():
        built = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "built without CUDA"
        raise StartError(f"mode=gpu needs a CUDA device, and torch {torch.__version__} ({built}) sees none; "
                         "mode=cpu runs the same checks at tiny sizes on the CPU")


def run_checks(cfg: DictConfig, command: str) -> tuple[dict[str, Any], Path]:
    """Run the configured checks, writing the JSON after each one (a killed run keeps what it measured)."""
    check_start(cfg)
    profile = cfg.profiles[cfg.mode]
    info = machine(cfg.mode)
    now = datetime.now().astimezone()
    path = output_path(Path(cfg.output_dir or profile.output_dir), info["device"], now)
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "mode": cfg.mode, "command": command,
        "started_at": now.isoformat(timespec="seconds"), "finished_at": None, "wall_time_s": None,
        "budget_s": profile.budget_s, "passed": None, "machine": info, "environment": environment_record(cfg.seed),
        "checks": {},
    }
    started = time.perf_counter()
    with (tempfile.TemporaryDirectory(prefix="cyclesem-gpu-check-") if cfg.work_dir is None
          else contextlib.nullcontext(cfg.work_dir)) as work_dir:
        ctx = Context(mode=cfg.mode, profile=profile, work_dir=Path(work_dir).absolute(), seed=cfg.seed)
        for name in cfg.checks:
            elapsed = time.perf_counter() - started
            if elapsed > profile.budget_s and not profile[name].get("skip"):  # end near the budget on a slow machine
                result = Result(what=CHECK_FUNCTIONS[name][1],
                                error=f"not run: the {profile.budget_s} s budget was spent ({elapsed:.0f} s)")
            else:
                result = run_check(name, ctx)
            record["checks"][name] = asdict(result)
            write_metrics(path.parent, json_safe(record, ctx.work_dir), path.name)
    record.update(finished_at=datetime.now().astimezone().isoformat(timespec="seconds"),
                  wall_time_s=round(time.perf_counter() - started, 1),
                  passed=all(c["status"] != "failed" for c in record["checks"].values()))
    record = json_safe(record, ctx.work_dir)
    write_metrics(path.parent, record, path.name)
    return record, path
