"""One sweep job around ``train``: the study's plan, ``resume_sweep`` (a committed record or a completed run
directory skips the job; a ``last.ckpt`` resumes it), pre-flight checks inside a sweep, the job record, the W&B
note of the sweep's progress, a failure record, and ``wandb.finish()`` after every job of a multirun."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, open_dict

from cyclesem.runtime.config import ConfigError, validate
from cyclesem.runtime.preflight import preflight
from cyclesem.study.records import completed_record, in_plan, job_key, read_record, record_path, write_record
from cyclesem.study.run_record import config_summary, environment_record, method_of, write_metrics
from cyclesem.study.sweep_progress import note_job_in_wandb


def _fresh_run_dir(output_dir: Path) -> bool:
    """True when the directory holds only what Hydra wrote before the job started."""
    return output_dir.is_dir() and all(p.name in (".hydra", "train.log") for p in output_dir.iterdir())


def run_job(cfg: DictConfig, train: Callable[[DictConfig], dict[str, Any]]) -> dict[str, Any] | None:
    """Run ``train(cfg)`` as one job of a run or a sweep; returns its record, or None for a job outside the plan."""
    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    if not in_plan(cfg.study.plan, method_of(cfg), cfg.data.real_frac, cfg.seed):  # a study's non-rectangular grid
        if _fresh_run_dir(output_dir):
            shutil.rmtree(output_dir)
        return None
    overrides = list(hydra_cfg.overrides.task)
    record_key = job_key(overrides)
    if cfg.resume_sweep and cfg.study.dir is not None:
        done = read_record(record_path(cfg.study.dir, record_key))
        if done is not None:  # finished earlier, maybe on another machine: its committed record is the result
            print(f"resume_sweep: {record_path(cfg.study.dir, record_key)} exists, skipping")
            if _fresh_run_dir(output_dir):
                shutil.rmtree(output_dir)
            return done
    try:
        validate(cfg)
        if multirun:  # a single run was checked by the ValidateConfig callback, before its directory existed
            preflight(cfg, "train", run_dir=output_dir)
    except ConfigError as err:  # a single run is checked before Hydra creates its directory; a sweep job here
        if _fresh_run_dir(output_dir):
            shutil.rmtree(output_dir)
        raise ConfigError(f"Config error: {err}") from None
    if multirun and cfg.sweep_name is None:
        with open_dict(cfg):
            cfg.sweep_name = output_dir.parent.name
    if cfg.resume_sweep:
        done = completed_record(output_dir)
        if done is not None:
            print(f"resume_sweep: {output_dir} already completed, skipping")
            return done
        if (output_dir / "checkpoints" / "last.ckpt").is_file() and cfg.ckpt_path is None:
            with open_dict(cfg):
                cfg.ckpt_path = "last"
    try:
        record = train(cfg)
        if cfg.study.dir is not None and rank_zero_only.rank == 0:
            write_record(cfg.study.dir, record_key, record, overrides)
        if multirun and "wandb" in (cfg.logger or {}):  # the run's summary carries the sweep's progress
            note_job_in_wandb(hydra_cfg.sweep.dir, record_key, record)
        return record
    except Exception as err:
        if rank_zero_only.rank == 0:
            write_metrics(output_dir, {"status": "failed", "error": f"{type(err).__name__}: {err}",
                                       **config_summary(cfg), **environment_record(cfg.seed)})
        raise
    finally:
        if "wandb" in (cfg.logger or {}):
            import wandb

            wandb.finish()

