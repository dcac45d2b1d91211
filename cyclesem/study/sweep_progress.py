"""How far a Hydra multirun has got and when it will end: the plan before the first job, one line after each.

`SweepProgress` (a Hydra callback, ``hydra.callbacks.sweep_progress`` in conf/train.yaml) lists the jobs the
basic sweeper will launch, keeps those ``study.plan`` asks for, counts those a resumed sweep skips (a study
record or a completed job directory: what `cyclesem.train.main` skips) and, before the first job, prints

    sweep: 12 jobs (of 24 in the sweep), 4 done already, 8 to run 2 at a time: ~1h04m left (cost model)

then after each job, in whichever process ran it (the joblib launcher's workers too),

    job 5/12 baseline real_frac=0.1 seed=1: test mIoU=0.3312 in 14m01s; 30m12s elapsed, ~52m left

The state all processes share is ``<hydra.sweep.dir>/progress.json``, rewritten under a file lock. Time left =
the jobs still to finish × their batches (trainer.max_epochs × ceil(num_labeled / batch_size)) × seconds per
batch, over the jobs that run at once. Seconds per batch come from the configured table until a job of that
method has finished, then from that method's measured wall time per batch; a method not measured yet gets its
table value scaled by measured / table over the finished jobs. With the W&B logger, each job's run summary gets
the same numbers (``sweep/job_index``, ``sweep/jobs_total``, ``sweep/elapsed_s``, ``sweep/eta_s``); its group
is the sweep.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import OverrideType
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from cyclesem.runtime.config import ConfigError, validate
from cyclesem.study.records import completed_record, in_plan, job_key, read_record, record_path
from cyclesem.study.run_record import method_of

PROGRESS_FILE = "progress.json"
BASIC_SWEEPER = f"{BasicSweeper.__module__}.{BasicSweeper.__name__}"
_PER_JOB = ("seed", "data.real_frac")  # set on a composed config rather than composed again: a sweep's long axes


@dataclass(frozen=True)
class PlannedJob:
    key: str  # study.job_key of its overrides: the name of its study record
    method: str
    real_frac: float
    seed: int
    batches: int  # trainer.max_epochs × ceil(num_labeled / batch_size)
    done: bool = False  # resume_sweep=true skips it: its record exists
    invalid: str | None = None  # the ConfigError it will stop with (it costs no time)


@dataclass(frozen=True)
class JobProgress:
    """Where the sweep stands after one job: that job's line and its W&B summary."""

    index: int  # jobs done (resumed, finished or failed) counting this one
    total: int
    method: str
    real_frac: float
    seed: int
    outcome: str  # "test mIoU=0.4512", "val mIoU=…" or "failed (ConfigError)"
    wall_time_s: float | None
    elapsed_s: float  # since the sweep started
    eta_s: float  # estimated time until the last job ends

    def line(self) -> str:
        took = f" in {duration(self.wall_time_s)}" if self.wall_time_s is not None else ""
        left = f"~{duration(self.eta_s)} left" if self.index < self.total else "sweep done"
        return (f"job {self.index}/{self.total} {self.method} real_frac={self.real_frac} seed={self.seed}: "
                f"{self.outcome}{took}; {duration(self.elapsed_s)} elapsed, {left}")

    def summary(self) -> dict[str, float]:
        return {"sweep/job_index": self.index, "sweep/jobs_total": self.total,
                "sweep/elapsed_s": round(self.elapsed_s, 1), "sweep/eta_s": round(self.eta_s, 1)}


def duration(seconds: float) -> str:
    """12s, 3m05s, 1h02m."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


# ----------------------------------------------------------------- the plan (main process, before any job)
def sweep_overrides(config: DictConfig) -> list[list[str]]:
    """Each job's overrides, as the basic sweeper lists them: the product of ``hydra.sweeper.params`` and the
    command line's overrides, in the sweeper's order (its own static method makes the product)."""
    params = [f"{k}={v}" for k, v in (OmegaConf.select(config, "hydra.sweeper.params") or {}).items()]
    arguments = [*params, *OmegaConf.to_container(config.hydra.overrides.task)]
    parsed = OverridesParser.create().parse_overrides(arguments)
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def batch_budget(cfg: DictConfig) -> int:
    """The batches a job trains for: trainer.max_epochs epochs of ceil(num_labeled / batch_size)."""
    return int(cfg.trainer.max_epochs) * math.ceil(cfg.data.num_labeled / cfg.data.batch_size)


def completed_job_keys(sweep_dir: Path) -> set[str]:
    """Job keys of the sweep directory's completed jobs (a resumed sweep skips them)."""
    keys = set()
    for overrides in sweep_dir.glob("*/.hydra/overrides.yaml"):
        job_dir = overrides.parent.parent
        if completed_record(job_dir) is not None:
            keys.add(job_key(yaml.safe_load(overrides.read_text()) or []))
    return keys


def sweep_job_configs(config: DictConfig) -> Iterator[tuple[list[str], DictConfig]]:
    """Each job of a multirun, before the plan filter: its overrides and its config composed as the job will be
    (``paths.output_dir`` a stand-in inside the sweep dir). Jobs that differ only in their seed and real fraction
    share one composition (a study's 270 jobs are 6 compositions, not 270 of ~0.1 s each), so a yielded config is
    valid until the next one is asked for."""
    loader = GlobalHydra.instance().hydra.config_loader
    parser = OverridesParser.create()
    sweep_dir = Path(config.hydra.sweep.dir)
    composed: dict[tuple[str, ...], DictConfig] = {}
    for overrides in sweep_overrides(config):
        per_job, rest = {}, []
        for text in overrides:
            override = parser.parse_override(text)
            if override.key_or_group in _PER_JOB and override.type == OverrideType.CHANGE and not override.package:
                per_job[override.key_or_group] = override.value()
            else:
                rest.append(text)
        if tuple(rest) not in composed:
            composed[tuple(rest)] = loader.load_sweep_config(config, rest)
        cfg = composed[tuple(rest)]
        with open_dict(cfg):
            cfg.paths.output_dir = str(sweep_dir / "job")  # what ${paths.output_dir}/.. means in a job
            for key, value in per_job.items():
                OmegaConf.update(cfg, key, value)
        yield overrides, cfg


def plan_sweep(config: DictConfig,
               check: Callable[[DictConfig], str | None] | None = None) -> tuple[list[PlannedJob], int]:
    """The jobs of a multirun that ``study.plan`` keeps, each composed as its job will be, and the number of
    jobs in the sweep before the plan filter. ``check`` (the dry run's): a further check of each job still to run
    after `validate`, returning its problem or None; with it, a job whose config does not even resolve is a
    problem of that job rather than an error of the plan."""
    sweep_dir = Path(config.hydra.sweep.dir)
    in_sweep_dir = completed_job_keys(sweep_dir) if sweep_dir.is_dir() else set()
    jobs, swept = [], 0
    for overrides, cfg in sweep_job_configs(config):
        swept += 1
        key = job_key(overrides)
        try:
            method, real_frac, seed = method_of(cfg), float(cfg.data.real_frac), int(cfg.seed)
        except Exception as err:  # e.g. an interpolation to a key this data config lacks
            if check is None:
                raise
            jobs.append(PlannedJob(key, "?", math.nan, -1, 0, invalid=f"{type(err).__name__}: {err}"))
            continue
        if not in_plan(cfg.study.plan, method, real_frac, seed):
            continue
        done = bool(cfg.resume_sweep) and (
            key in in_sweep_dir
            or (cfg.study.dir is not None and read_record(record_path(cfg.study.dir, key)) is not None))
        try:
            validate(cfg)
            invalid = check(cfg) if check is not None and not done else None
        except ConfigError as err:
            invalid = str(err)
        jobs.append(PlannedJob(key, method, real_frac, seed, batch_budget(cfg), done, invalid))
    return jobs, swept


# ----------------------------------------------------------------- the cost model
def seconds_per_batch(method: str, table: Mapping[str, float],
                      finished: Sequence[tuple[str, int, float]] = ()) -> float:
    """One batch of ``method``: measured over its finished jobs (method, batches, wall seconds), else the table's
    value (its largest for a method it lacks) scaled by measured / table over all finished jobs."""
    own = [(b, w) for m, b, w in finished if m == method]
    if own:
        return sum(w for _, w in own) / sum(b for b, _ in own)
    fallback = max(table.values())
    guess = table.get(method, fallback)
    if finished:
        guess *= sum(w for _, _, w in finished) / sum(b * table.get(m, fallback) for m, b, _ in finished)
    return guess


def estimate_seconds(pending: Sequence[tuple[str, int]], table: Mapping[str, float], parallel_jobs: int,
                     finished: Sequence[tuple[str, int, float]] = ()) -> float:
    """Wall time for the ``pending`` (method, batches) jobs, ``parallel_jobs`` at a time."""
    total = sum(b * seconds_per_batch(m, table, finished) for m, b in pending)
    return total / max(1, min(parallel_jobs, len(pending)))


# ----------------------------------------------------------------- the shared state
def _lock(sweep_dir: Path) -> FileLock:
    return FileLock(str(sweep_dir / f"{PROGRESS_FILE}.lock"))


def _save(sweep_dir: Path, state: dict[str, Any]) -> None:
    tmp = sweep_dir / f"{PROGRESS_FILE}.tmp{os.getpid()}"
    tmp.write_text(json.dumps(state, indent=1) + "\n")
    os.replace(tmp, sweep_dir / PROGRESS_FILE)


def _pending_and_finished(state: Mapping[str, Any]) -> tuple[list[tuple[str, int]], list[tuple[str, int, float]]]:
    jobs = state["jobs"].values()
    pending = [(j["method"], j["batches"]) for j in jobs if j["state"] == "pending" and not j["invalid"]]
    finished = [(j["method"], j["batches"], j["wall_time_s"]) for j in jobs
                if j["state"] == "finished" and j["wall_time_s"] and j["batches"]]
    return pending, finished


def start(sweep_dir: Path, jobs: Sequence[PlannedJob], swept: int, table: Mapping[str, float],
          parallel_jobs: int) -> str:
    """Write the sweep's progress file; returns the plan line."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    state = {
        "started": time.time(), "parallel_jobs": parallel_jobs, "seconds_per_batch": dict(table),
        "jobs": {j.key: {**asdict(j), "state": "done" if j.done else "pending", "wall_time_s": None} for j in jobs},
    }
    with _lock(sweep_dir):
        _save(sweep_dir, state)
    pending, _ = _pending_and_finished(state)  # the jobs that will train
    done = sum(j.done for j in jobs)
    invalid = [j for j in jobs if j.invalid and not j.done]
    line = (f"sweep: {len(jobs)} jobs (of {swept} in the sweep), {done} done already, {len(jobs) - done} to run "
            f"{min(parallel_jobs, max(1, len(pending)))} at a time: "
            f"~{duration(estimate_seconds(pending, table, parallel_jobs))} left (cost model)")
    if invalid:
        line += (f"; {len(invalid)} will stop at config validation, e.g. {invalid[0].method} "
                 f"real_frac={invalid[0].real_frac}: {invalid[0].invalid}")
    return line


def job_finished(sweep_dir: Path, key: str, record: Mapping[str, Any] | None,
                 error: BaseException | None = None) -> JobProgress | None:
    """Count a job that ran (``record``) or failed (``error``) as done, once: a second call for the same job
    returns the same progress. None for a job the plan does not count as to run (outside the plan, resumed)."""
    if not (sweep_dir / PROGRESS_FILE).is_file():
        return None
    with _lock(sweep_dir):
        state = json.loads((sweep_dir / PROGRESS_FILE).read_text())
        job = state["jobs"].get(key)
        if job is None or job["state"] == "done":
            return None
        if "progress" not in job:
            job["state"] = "failed" if error is not None or record is None else "finished"
            job["wall_time_s"] = (record or {}).get("wall_time_s")
            pending, finished = _pending_and_finished(state)
            scores = (record or {}).get("test") or (record or {}).get("val") or {}
            split = "test" if (record or {}).get("test") else "val"
            outcome = ("no record" if job["state"] == "failed" and error is None
                       else f"failed ({type(error).__name__})" if job["state"] == "failed"
                       else f"{split} mIoU={scores['mIoU']:.4f}" if "mIoU" in scores else "no scores")
            index = sum(j["state"] != "pending" for j in state["jobs"].values())
            job["progress"] = asdict(JobProgress(
                index, len(state["jobs"]), job["method"], job["real_frac"], job["seed"], outcome,
                job["wall_time_s"], time.time() - state["started"],
                estimate_seconds(pending, state["seconds_per_batch"], state["parallel_jobs"], finished)))
            _save(sweep_dir, state)
        return JobProgress(**job["progress"])


def log_to_wandb(progress: JobProgress | None, run: Any) -> None:
    """Put the sweep's progress in a W&B run's summary (the runs of one sweep share its group)."""
    if progress is not None and run is not None:
        run.summary.update(progress.summary())


def launcher_parallelism(parallel_jobs: int) -> int:
    """Jobs a launcher runs at once from its setting: joblib's n_jobs counts from the core count when negative."""
    return parallel_jobs if parallel_jobs >= 1 else (os.cpu_count() or 1) + 1 + parallel_jobs


class SweepProgress(Callback):
    """Hydra callback: a multirun's plan and estimated wall time before the first job, one line after each.

    ``seconds_per_batch``: method → seconds per batch of one job (the cost model until jobs finish);
    ``parallel_jobs``: how many jobs the launcher runs at once."""

    def __init__(self, seconds_per_batch: Mapping[str, float], parallel_jobs: int = 1) -> None:
        self.seconds_per_batch = dict(seconds_per_batch)
        self.parallel_jobs = launcher_parallelism(parallel_jobs)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if OmegaConf.select(config, "study.dry_run", default=False):  # cyclesem.study.dry_run's: no job runs
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        (sweep_dir / PROGRESS_FILE).unlink(missing_ok=True)  # a resumed sweep's old state
        sweeper = OmegaConf.select(config, "hydra.sweeper._target_")
        if sweeper != BASIC_SWEEPER:
            print(f"sweep: no progress report for sweeper {sweeper} (it lists its jobs itself)", flush=True)
            return
        try:
            jobs, swept = plan_sweep(config)
        except Exception as err:  # a report, never the reason a sweep does not start (the sweeper says why)
            print(f"sweep: no progress report ({type(err).__name__}: {err})", flush=True)
            return
        print(start(sweep_dir, jobs, swept, self.seconds_per_batch, self.parallel_jobs), flush=True)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        if job_return.status == JobStatus.COMPLETED:
            record, error = job_return.return_value, None
        else:  # return_value would raise the job's error here
            record, error = None, job_return._return_value
        progress = job_finished(Path(config.hydra.sweep.dir), job_key(job_return.overrides or []), record, error)
        if progress is not None:
            print(progress.line(), flush=True)


def note_job_in_wandb(sweep_dir: str | os.PathLike, key: str, record: Mapping[str, Any]) -> None:
    """From inside a finished job, before its W&B run closes: count it and put the progress in the run's summary."""
    import wandb

    log_to_wandb(job_finished(Path(sweep_dir), key, record), wandb.run)

