"""The GPU check's five checks and the training-run plumbing they share: each check gets a Context, fills
its Result as it goes, and raises where what a run produced is wrong."""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from cyclesem.bench.loader import write_cityscapes_frames, write_gta5_frames
from cyclesem.bench.run import benchmark
from cyclesem.method.options import MethodOptions
from cyclesem.runtime.config import validate
from cyclesem.runtime.preflight import preflight
from cyclesem.train import train

CHECKS = ("fast_run", "ddp", "full_scale", "bench", "bench_compile")


class CheckFailed(AssertionError):
    """A run finished but what it produced is wrong (a missing metric, a non-finite loss, a wrong epoch)."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class Context:
    """What every check gets: its profile (conf/gpu_check.yaml's profiles.<mode>) and where to work."""

    mode: str
    profile: DictConfig
    work_dir: Path
    seed: int

    @property
    def device_type(self) -> str:
        return "cuda" if self.mode == "gpu" else "cpu"

    @property
    def data_dir(self) -> Path:  # the synthetic pair and the reference's cache: never the user's ./data
        return self.work_dir / "data"


@dataclass
class Result:
    """One check's entry in the JSON; a check fills ``figures`` and ``commands`` as it goes, so a failure
    keeps what was measured before it."""

    what: str
    status: str = "failed"
    error: str | None = None
    error_at: str | None = None
    wall_time_s: float | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)


# ----------------------------------------------------------------- training runs
@contextlib.contextmanager
def isolated_run() -> Iterator[None]:
    """Leave no process-wide state behind a training run: Lightning's DDP launcher sets MASTER_PORT, WORLD_SIZE
    and friends in os.environ (a later Trainer would read them), torch's thread count, and keeps the process
    group; the CUDA cache would count in the next check's memory."""
    environ, threads = dict(os.environ), torch.get_num_threads()
    try:
        yield
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        os.environ.clear()
        os.environ.update(environ)
        torch.set_num_threads(threads)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def compose_train(overrides: list[str], run_dir: Path) -> DictConfig:
    """The training config as `python -m cyclesem.train <overrides> hydra.run.dir=<run_dir>` composes it."""
    cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
    HydraConfig.instance().set_config(cfg)  # ${hydra:runtime.output_dir} resolves to run_dir
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def train_overrides(ctx: Context, overrides: list[str], probe_out: Path) -> list[str]:
    """A check's overrides plus what every run here needs: an offline logger, the work dir's data, the seed,
    and the probe."""
    return [*overrides, "logger=csv", f"paths.data_dir={ctx.data_dir}", f"seed={ctx.seed}",
            "+callbacks.probe._target_=cyclesem.bench.probe.TrainingProbe", f"+callbacks.probe.out={probe_out}",
            f"+callbacks.probe.warmup_batches={ctx.profile.probe_warmup_batches}"]


def run_train(ctx: Context, result: Result, overrides: list[str], run_dir: Path,
              name: str = "probe") -> tuple[DictConfig, dict[str, Any], dict[str, Any]]:
    """Compose, check (as the command does before it starts) and train; returns (config, metrics record, probe)."""
    probe_out = run_dir / f"{name}.json"
    overrides = train_overrides(ctx, overrides, probe_out)
    result.commands.append(" ".join(["python -m cyclesem.train", *overrides, f"hydra.run.dir={run_dir}"]))
    with isolated_run():
        cfg = compose_train(overrides, run_dir)
        if cfg.threads is not None:  # else Lightning's DDP launcher sets torch's threads to cores / processes
            os.environ["OMP_NUM_THREADS"] = str(cfg.threads)
        validate(cfg)
        preflight(cfg, "train", run_dir=run_dir)
        record = train(cfg)
    expect(probe_out.is_file(), f"the run wrote no probe record ({probe_out}): fit did not reach its end")
    return cfg, record, json.loads(probe_out.read_text())


def expect_trained(ctx: Context, cfg: DictConfig, record: dict[str, Any], probe: dict[str, Any]) -> None:
    """What every finished training run must show: completed, on this mode's device, with the configured
    precision and memory format, finite losses, test scores in [0, 1], a last.ckpt, measured step times."""
    expect(record["status"] == "completed", f"status {record['status']!r}")
    expect(probe["device"].startswith(ctx.device_type), f"trained on {probe['device']}, not {ctx.device_type}")
    expect(probe["precision"] == str(cfg.trainer.precision),
           f"precision {probe['precision']} where the config says {cfg.trainer.precision}")
    if cfg.model.get("channels_last"):
        expect(probe["channels_last_weights"] == 1.0,
               f"only {probe['channels_last_weights']:.0%} of the conv weights are channels_last")
    expect(bool(probe["losses"]), "no train/*_step losses were logged")
    bad = {k: v for k, v in probe["losses"].items() if not finite(v)}
    expect(not bad, f"non-finite losses at the last batch: {bad}")
    if cfg.run_test:
        for key in ("mIoU", "fwIoU"):
            value = record["test"].get(key)
            expect(finite(value) and 0.0 <= value <= 1.0, f"test/{key} = {value!r}, expected a number in [0, 1]")
    expect(Path(record["last_checkpoint"]).is_file(), f"no {record['last_checkpoint']}")
    if probe["batches_timed"] > 0:
        expect(finite(probe["step_seconds_median"]) and probe["step_seconds_median"] > 0,
               f"step time {probe['step_seconds_median']!r}")
    if ctx.device_type == "cuda":
        expect(finite(probe["peak_memory_mb"]) and probe["peak_memory_mb"] > 0,
               f"peak GPU memory {probe['peak_memory_mb']!r}")


def run_figures(record: dict[str, Any], probe: dict[str, Any]) -> dict[str, Any]:
    """The figures a training run contributes to its check's entry."""
    last = Path(record["last_checkpoint"])
    return {
        "epochs": record["epochs"],
        "train_batches": record["train_batches"],
        "fit_batches": probe["batches"],  # this fit's own (a resumed fit: the batches after the checkpoint)
        "val": record["val"],
        "test": record["test"],
        "test_checkpoint": record["test_checkpoint"],
        "seconds_per_batch_median": probe["seconds_per_batch_median"],
        "step_seconds_median": probe["step_seconds_median"],
        "batches_timed": probe["batches_timed"],
        "peak_memory_mb": probe["peak_memory_mb"],
        "last_checkpoint_mb": last.stat().st_size / 2**20 if last.is_file() else None,
        "wall_time_s": record["wall_time_s"],
        **{k: probe[k] for k in ("device", "precision", "channels_last_weights", "strategy", "distributed_backend",
                                 "world_size", "sync_batchnorm_layers", "semantic_classifier", "fused_source_term",
                                 "parameters", "losses")},
    }


# ----------------------------------------------------------------- the checks
def fast_run(ctx: Context, result: Result) -> None:
    spec, run_dir = ctx.profile.fast_run, ctx.work_dir / "fast_run"
    overrides = [*ctx.profile.synthetic, *spec.train]
    epochs = int(spec.epochs)
    cfg, first, probe = run_train(ctx, result, [*overrides, f"trainer.max_epochs={epochs}"], run_dir, "probe_first")
    result.figures["first"] = run_figures(first, probe)
    expect_trained(ctx, cfg, first, probe)
    expect(first["epochs"] == epochs, f"the first fit ended at epoch {first['epochs']}, not {epochs}")
    expect(first["val"] and all(finite(v) for k, v in first["val"].items() if k in ("mIoU", "fwIoU")),
           f"no finite val scores: {first['val']}")
    # one more epoch from the first fit's last.ckpt, in its run directory (what `ckpt_path=last` resumes)
    cfg, resumed, probe = run_train(ctx, result, [*overrides, f"trainer.max_epochs={epochs + 1}", "ckpt_path=last"],
                                    run_dir, "probe_resumed")
    result.figures["resumed"] = run_figures(resumed, probe)
    expect_trained(ctx, cfg, resumed, probe)
    per_epoch = first["train_batches"] // epochs
    expect(resumed["epochs"] == epochs + 1, f"the resumed fit ended at epoch {resumed['epochs']}, not {epochs + 1}")
    expect(probe["batches"] == per_epoch,
           f"the resumed fit trained {probe['batches']} batches, not the one epoch of {per_epoch} after the checkpoint")
    expect(resumed["train_batches"] == first["train_batches"] + per_epoch,
           f"train_batches {resumed['train_batches']} after the resume, expected {first['train_batches'] + per_epoch}")


def ddp(ctx: Context, result: Result) -> None:
    spec = ctx.profile.ddp
    for name, extra in spec.runs.items():
        cfg, record, probe = run_train(ctx, result, [*ctx.profile.synthetic, *spec.train, *extra],
                                       ctx.work_dir / "ddp" / name)
        result.figures[name] = run_figures(record, probe)
        expect_trained(ctx, cfg, record, probe)
        backend = cfg.trainer.strategy.process_group_backend
        expect(probe["strategy"] == "DDPStrategy" and probe["distributed_backend"] == backend,
               f"{name}: strategy {probe['strategy']} with backend {probe['distributed_backend']}, expected "
               f"DDPStrategy with {backend}")
        expect(probe["world_size"] == cfg.trainer.devices, f"{name}: world size {probe['world_size']}")
        if cfg.trainer.get("sync_batchnorm"):  # the synthetic scale's U-Net has BatchNorm layers to convert
            expect(probe["sync_batchnorm_layers"] > 0, f"{name}: no SyncBatchNorm layer after sync_batchnorm=true")
        classifier = MethodOptions.from_mapping(cfg.model).semantic_classifier.value
        expect(probe["semantic_classifier"] == classifier and probe["fused_source_term"] == (classifier == "joint"),
               f"{name}: classifier {probe['semantic_classifier']}, fused {probe['fused_source_term']}")
        expect("train/g_sem_source_step" in probe["losses"], f"{name}: no generator semantic term was logged")


def full_scale(ctx: Context, result: Result) -> None:
    spec, root, run_dir = ctx.profile.full_scale, ctx.work_dir / "full_scale_data", ctx.work_dir / "full_scale"
    overrides = [*spec.train, f"data.source.root={root / 'gta5'}", f"data.target_train.root={root / 'cityscapes'}"]
    with isolated_run():  # the datamodule's own counts (round(real_frac · N) target images), before anything runs
        datamodule = instantiate(compose_train(train_overrides(ctx, overrides, run_dir / "probe.json"), run_dir).data)
        counts = {"source": datamodule.num_source, "target_train": datamodule.num_target}
    started = time.perf_counter()
    distinct = int(spec.distinct_frames)
    source_size, target_size = tuple(spec.source_size), tuple(spec.target_size)
    if counts["source"]:
        write_gta5_frames(root / "gta5", counts["source"], source_size, ctx.seed, distinct=distinct)
    write_cityscapes_frames(root / "cityscapes", max(counts["target_train"], 1), target_size, ctx.seed + 1,
                            distinct=distinct)
    write_cityscapes_frames(root / "cityscapes", int(spec.val_frames), target_size, ctx.seed + 2, split="val")
    result.figures.update(frames={**counts, "val": int(spec.val_frames), "distinct": distinct,
                                  "source_size": list(source_size), "target_size": list(target_size),
                                  "seconds_to_write": round(time.perf_counter() - started, 1)})
    cfg, record, probe = run_train(ctx, result, overrides, run_dir)
    figures = run_figures(record, probe)
    crop = list(cfg.data.target_train.transform.crop)
    seconds = figures["seconds_per_batch_median"]
    result.figures.update(figures, crop=crop, batch_size=int(cfg.data.batch_size),
                          images_per_second=2 * cfg.data.batch_size / seconds if finite(seconds) else None)
    expect_trained(ctx, cfg, record, probe)
    expected = math.ceil(cfg.data.num_labeled / cfg.data.batch_size) * cfg.trainer.max_epochs
    expect(record["train_batches"] == expected, f"{record['train_batches']} batches, expected {expected}")


def _bench(ctx: Context, result: Result, overrides: list[str], name: str) -> None:
    overrides = [*overrides, f"seed={ctx.seed}"]
    result.commands.append(" ".join(["python -m cyclesem.bench", *overrides]))
    cfg = compose("bench", overrides=overrides)
    benchmark_before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = ctx.device_type == "cuda"  # as trainer=gpu trains (benchmark: true)
    try:
        record = benchmark(cfg, ctx.work_dir / f"{name}.json")
    finally:
        torch.backends.cudnn.benchmark = benchmark_before
    machine = record["machine"]
    result.figures.update(
        size=[cfg.height, cfg.width], batch_size=cfg.batch_size, networks={k: cfg[k] for k in (
            "ngf", "n_blocks", "ndf", "seg_base_channels", "seg_depth")},
        precision=cfg.precision, channels_last=cfg.channels_last, compile=cfg.compile,
        cudnn_benchmark=ctx.device_type == "cuda", device=machine["device"],
        matmul_size=machine["matmul_size"], matmul_dtype=machine["matmul_dtype"],
        matmul_tflops=machine["matmul_gflops"] / 1e3, matmul_tflops_fp32=machine["matmul_gflops_fp32"] / 1e3)
    for variant_name, variant in record["variants"].items():
        result.figures[variant_name] = {
            "step_seconds_median": variant["seconds_per_step_median"],
            "step_seconds_iqr": variant["seconds_per_step_iqr"],
            "images_per_second": variant["images_per_second"],
            "tflop_per_step": variant["flops_per_step"] / 1e12,
            "segmenter_flop_share": variant["segmenter_flop_share"],
            "achieved_tflops": variant["achieved_gflops"] / 1e3,
            "matmul_fraction": variant["matmul_fraction"],  # of the matmul rate measured above, same dtype
            "peak_memory_mb": variant.get("peak_cuda_memory_mb"),  # torch.cuda.max_memory_allocated
            "warmup_seconds_total": variant["warmup_seconds_total"],  # compilation included with compile=true
        }
        figures = result.figures[variant_name]
        expect(variant["compiled"] == bool(cfg.compile), f"{variant_name}: compiled={variant['compiled']}")
        for key in ("step_seconds_median", "tflop_per_step", "matmul_fraction"):
            expect(finite(figures[key]) and figures[key] > 0, f"{variant_name}: {key} = {figures[key]!r}")
        if ctx.device_type == "cuda":
            expect(finite(figures["peak_memory_mb"]) and figures["peak_memory_mb"] > 0,
                   f"{variant_name}: peak GPU memory {figures['peak_memory_mb']!r}")


def bench(ctx: Context, result: Result) -> None:
    _bench(ctx, result, list(ctx.profile.bench.overrides), "bench")


def bench_compile(ctx: Context, result: Result) -> None:
    torch._dynamo.reset()  # compile from scratch: no graphs or recompile counts from earlier checks
    try:
        _bench(ctx, result, [*ctx.profile.bench.overrides, *ctx.profile.bench_compile.overrides], "bench_compile")
    finally:
        torch._dynamo.reset()


CHECK_FUNCTIONS: dict[str, tuple[Callable[[Context, Result], None], str]] = {
    "fast_run": (fast_run, "trainer=gpu fast run on the synthetic pair (bf16-mixed, channels_last): val, test, "
                           "checkpoint, then one more epoch resumed from last.ckpt"),
    "ddp": (ddp, "trainer=ddp trainer.devices=1 (NCCL, SyncBatchNorm), the fused and the frozen classifier paths"),
    "full_scale": (full_scale, "+experiment=full_scale for ~300 batches on GTA5- and Cityscapes-size frames"),
    "bench": (bench, "training-step benchmark at full scale, eager, against the measured bf16 matmul rate"),
    "bench_compile": (bench_compile, "training-step benchmark at full scale with compile=true"),
}
