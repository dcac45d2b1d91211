"""A study's dry run: every job composed and checked, the plan and its cost printed, nothing run or submitted.

    python -m cyclesem.train -m +experiment=gta5_study study.dry_run=true

`DryRun` (a Hydra callback, ``hydra.callbacks.dry_run`` in conf/train.yaml) acts only with ``study.dry_run=true``,
before the launcher starts: it lists the jobs of the sweep that ``study.plan`` keeps (`plan_sweep`, as
`SweepProgress` does), and for each job still to run resolves every key of its config, range-checks it
(`validate`) and runs the pre-flight checks a job runs first (`preflight`: dataset folders and their image counts,
the GTA5 split file, the translation score's image set, checkpoint files). Then it prints the jobs per method with
their batches, seconds per batch (``hydra.callbacks.sweep_progress.seconds_per_batch``, the cost model) and
GPU-hours, whether the translation score's reference segmenter is built, and each problem with a job that has it,
and exits: 0 when every job passes, 2 otherwise. A wrong path or key shows before the first of 100 jobs is queued.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from cyclesem.method.options import MethodOptions
from cyclesem.method.reference_segmenter import ensure_reference
from cyclesem.runtime.config import ConfigError
from cyclesem.runtime.preflight import preflight
from cyclesem.study.sweep_progress import (
    BASIC_SWEEPER,
    PlannedJob,
    duration,
    estimate_seconds,
    launcher_parallelism,
    plan_sweep,
    seconds_per_batch,
)

EXIT_PROBLEMS = 2  # as a single run's pre-flight error (cyclesem.runtime.preflight.ValidateConfig)


class JobChecker:
    """What a job checks before it trains, for one job's config: every key resolves (none left ``???``), then the
    pre-flight checks; returns the first problem or None. Jobs whose data, reference and checkpoint are the same
    (the seeds of one fraction) share one pre-flight. ``reference``: the translation reference's status
    (`reference_status`) of the first job that scores translations."""

    def __init__(self) -> None:
        self.checked: dict[str, str | None] = {}
        self.reference: str | None = None

    def __call__(self, cfg: DictConfig) -> str | None:
        HydraConfig.instance().set_config(cfg)  # as the launcher sets it for each job: ${hydra:runtime.choices...}
        try:
            job = {k: OmegaConf.to_container(cfg[k], resolve=True, throw_on_missing=True) if OmegaConf.is_config(
                cfg[k]) else cfg[k] for k in cfg if k != "hydra"}
        except Exception as err:  # an interpolation to a missing key, a required value not set
            return f"{type(err).__name__}: {err}".replace("\n", " ")
        data = {k: v for k, v in job["data"].items() if k != "seed"}
        inputs = json.dumps([data, job.get("reference"), job.get("ckpt_path")], sort_keys=True, default=str)
        if inputs not in self.checked:
            try:
                preflight(cfg, "train")
                self.checked[inputs] = None
            except ConfigError as err:
                self.checked[inputs] = str(err)
        if self.checked[inputs] is None and self.reference is None:
            self.reference = reference_status(cfg)
        return self.checked[inputs]


def reference_status(cfg: DictConfig) -> str | None:
    """Whether the translation score's reference segmenter of a job (one with style transfer, a paired image set
    and a reference to train) is built; None when the job scores no translation or loads given weights."""
    reference = cfg.get("reference")
    if (reference is None or cfg.data.get("paired") is None or reference.get("checkpoint") is not None
            or reference.get("train_set") is None or not MethodOptions.from_mapping(cfg.model).style_transfer):
        return None
    spec = OmegaConf.to_container(reference, resolve=True, enum_to_str=True)
    try:
        entry = ensure_reference(spec, torch.device("cpu"), train=False)  # reads the cache, trains nothing
    except Exception as err:  # its images are missing: the job's pre-flight says so
        return f"translation reference: cannot be looked up ({type(err).__name__}: {err})"
    if entry is not None:
        return f"translation reference {entry.key}: built, {entry.directory}"
    data = OmegaConf.select(cfg, "hydra.runtime.choices.data", default=None) or "<data>"
    then = ("the first job trains it while the others that start with it wait" if reference.get("train_if_missing")
            else "the jobs run without a translation score")
    return (f"translation reference: not built yet in {reference.cache_dir}: build it first with "
            f"`python -m cyclesem.reference data={data}` (the same data overrides), else {then}")


def plan_table(jobs: Sequence[PlannedJob], table: Mapping[str, float], parallel_jobs: int,
               devices_per_job: int) -> list[str]:
    """Per method: the jobs still to run (those with a problem too: the plan once it is fixed), their batches,
    seconds per batch and device-hours; then the total."""
    pending = [j for j in jobs if not j.done]
    unit = "GPU-hours" if devices_per_job else "job-hours"
    lines = [f"{'method':<20} {'jobs':>5} {'batches/job':>12} {'s/batch':>8} {unit:>10}"]
    total = 0.0
    for method in dict.fromkeys(j.method for j in pending):  # in the sweep's order
        own = [j for j in pending if j.method == method]
        rate = seconds_per_batch(method, table)
        hours = sum(j.batches for j in own) * rate / 3600 * max(1, devices_per_job)
        total += hours
        batches = sorted({j.batches for j in own})
        shown = f"{batches[0]:,}" if len(batches) == 1 else f"{batches[0]:,}–{batches[-1]:,}"
        lines.append(f"{method:<20} {len(own):>5} {shown:>12} {rate:>8.3f} {hours:>10.1f}")
    wall = estimate_seconds([(j.method, j.batches) for j in pending], table, parallel_jobs)
    lines.append(f"{'total':<20} {len(pending):>5} {'':>12} {'':>8} {total:>10.1f}   ~{duration(wall)} wall with "
                 f"{min(parallel_jobs, max(1, len(pending)))} at a time")
    return lines


def problem_lines(jobs: Sequence[PlannedJob], limit: int = 10) -> list[str]:
    """Each distinct problem once, with how many jobs have it and the first of them by its job key."""
    invalid = [j for j in jobs if j.invalid and not j.done]
    counts = Counter(j.invalid for j in invalid)
    first = {}
    for job in invalid:
        first.setdefault(job.invalid, job)
    lines = []
    for problem, count in list(counts.items())[:limit]:
        others = f" (and {count - 1} more job{'s' * (count > 2)} with the same problem)" if count > 1 else ""
        lines.append(f"  job {first[problem].key}: {problem}{others}")
    if len(counts) > limit:
        lines.append(f"  … and {len(counts) - limit} other problems")
    return lines


def dry_run(config: DictConfig, table: Mapping[str, float], parallel_jobs: int) -> int:
    """Check every job of the multirun ``config`` and print the plan; returns the exit status (0: all pass)."""
    sweeper = OmegaConf.select(config, "hydra.sweeper._target_")
    if sweeper != BASIC_SWEEPER:
        print(f"dry run: sweeper {sweeper} lists its jobs itself; only Hydra's basic sweeper is supported")
        return EXIT_PROBLEMS
    checker = JobChecker()
    jobs, swept = plan_sweep(config, check=checker)
    done = sum(j.done for j in jobs)
    invalid = [j for j in jobs if j.invalid and not j.done]
    launcher = OmegaConf.select(config, "hydra.launcher", default=None) or {}
    devices = int(launcher.get("gpus_per_node") or 0) * int(launcher.get("nodes") or 1)
    print(f"dry run of {config.hydra.sweep.dir}: {len(jobs)} jobs (of {swept} in the sweep), {done} done already, "
          f"{len(jobs) - done} to run", flush=True)
    print("\n".join(plan_table(jobs, table, parallel_jobs, devices)))
    print("seconds per batch: hydra.callbacks.sweep_progress.seconds_per_batch (the cost model; the sweep's own "
          "finished jobs replace it as they finish)")
    if checker.reference:
        print(checker.reference)
    if invalid:
        print(f"dry run FAILED: {len(invalid)} of {len(jobs) - done} jobs would stop before training; nothing was "
              "run or submitted:", flush=True)
        print("\n".join(problem_lines(jobs)), flush=True)
        return EXIT_PROBLEMS
    print("dry run passed: every job's config composes, resolves and passes its pre-flight checks; nothing was run "
          "or submitted", flush=True)
    return 0


class DryRun(Callback):
    """Hydra callback: with ``study.dry_run=true``, the multirun's dry run instead of the multirun (exit status 0
    when every job passes its checks, 2 otherwise). ``seconds_per_batch`` and ``parallel_jobs`` are
    `SweepProgress`'s (conf/train.yaml interpolates them from it)."""

    def __init__(self, seconds_per_batch: Mapping[str, float], parallel_jobs: int = 1) -> None:
        self.seconds_per_batch = dict(seconds_per_batch)
        self.parallel_jobs = launcher_parallelism(parallel_jobs)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if OmegaConf.select(config, "study.dry_run", default=False):
            raise SystemExit(dry_run(config, self.seconds_per_batch, self.parallel_jobs))
