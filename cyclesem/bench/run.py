"""The training-step benchmark's measurements (``python -m cyclesem.bench``, cyclesem/gpu_check): the machine's matmul
rate, each variant in its own spawned process, the data loader, and the JSON record with the issue's targets."""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from cyclesem.bench.loader import loader_throughput
from cyclesem.bench.steps import BenchSettings, measure_variant, variant_named
from cyclesem.bench.table import print_report
from cyclesem.method.cache_files import cpu_model
from cyclesem.runtime.device import resolve_device
from cyclesem.study.run_record import environment_record

# what the issue checks (reported, not enforced)
JOINT_OVER_NAIVE_MAX = 0.9  # joint step seconds ≤ 0.9 × naive step seconds
JOINT_MATMUL_FRACTION_MIN = 0.75  # joint step GFLOP/s ≥ 75 % of the measured matmul GFLOP/s


def matmul_gflops(size: int, dtype: torch.dtype, device: torch.device, repeats: int = 5, warmup: int = 2) -> float:
    """GFLOP/s of a square (size × size) @ (size × size) torch.mm (2·size³ FLOPs), median of ``repeats``."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    seconds = []
    for i in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            seconds.append(time.perf_counter() - start)
    return 2 * size**3 / float(np.median(seconds)) / 1e9


def run_variant(settings: BenchSettings, name: str, isolate: bool) -> dict[str, Any]:
    """measure_variant in a fresh spawned process (its own peak RSS, no state from other variants) or here."""
    if not isolate:
        return measure_variant(settings, name)
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure_variant, settings, name).result()


def settings_from_config(cfg: DictConfig, device: torch.device) -> BenchSettings:
    keys = ("height", "width", "batch_size", "ngf", "n_blocks", "ndf", "seg_base_channels", "seg_depth", "warmup",
            "steps", "channels_last", "compile", "compile_mode", "precision", "seed", "threads")
    optimizers = {k: OmegaConf.to_container(cfg.model[k], resolve=True) for k in ("optimizer_g", "optimizer_seg")}
    return BenchSettings(device=device.type, **{k: cfg[k] for k in keys}, **optimizers)


def targets(variants: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The issue's two checks, where the variants they need were run."""
    out: dict[str, Any] = {}
    joint, naive = variants.get("joint"), variants.get("naive")
    if joint is not None and naive is not None:
        ratio = joint["seconds_per_step_median"] / naive["seconds_per_step_median"]
        out.update(joint_over_naive=ratio, joint_over_naive_max=JOINT_OVER_NAIVE_MAX,
                   joint_over_naive_met=ratio <= JOINT_OVER_NAIVE_MAX)
    if joint is not None:
        out.update(joint_matmul_fraction=joint["matmul_fraction"],
                   joint_matmul_fraction_min=JOINT_MATMUL_FRACTION_MIN,
                   joint_matmul_fraction_met=joint["matmul_fraction"] >= JOINT_MATMUL_FRACTION_MIN)
    return out


def benchmark(cfg: DictConfig, output: Path) -> dict[str, Any]:
    """Run every configured variant and the loader; write the JSON record to ``output`` and return it."""
    device = resolve_device(cfg.device)
    settings = settings_from_config(cfg, device)
    names = [variant_named(name).name for name in cfg.variants]  # fail on a typo before any work
    if not names:
        raise ValueError("variants is empty; give some of [joint, cyclegan, naive]")
    threads_before = torch.get_num_threads()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    try:
        record = _measure(cfg, settings, names, device)
    finally:  # in-process callers (tests) keep their own thread count
        torch.set_num_threads(threads_before)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(record, indent=2, allow_nan=False))
    print_report(record)
    print(f"benchmark: {output}")
    return record


def _measure(cfg: DictConfig, settings: BenchSettings, names: list[str], device: torch.device) -> dict[str, Any]:
    matmul_dtype = torch.bfloat16 if settings.precision == "bf16" else torch.float32
    machine = {
        "device": str(torch.cuda.get_device_name(device)) if device.type == "cuda" else "cpu",
        "cpu_model": cpu_model(),
        "num_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        # other processes on the machine skew every timing here: a load near the core count means contention
        "load_average_before": list(os.getloadavg()),
        "matmul_size": int(cfg.matmul_size),
        "matmul_gflops_fp32": matmul_gflops(cfg.matmul_size, torch.float32, device),
    }
    # the reference rate is the step's own compute dtype: bf16 steps are compared with a bf16 matmul
    machine["matmul_dtype"] = str(matmul_dtype).removeprefix("torch.")
    machine["matmul_gflops"] = (machine["matmul_gflops_fp32"] if matmul_dtype == torch.float32
                                else matmul_gflops(cfg.matmul_size, matmul_dtype, device))
    variants = {}
    for name in names:
        result = run_variant(settings, name, cfg.isolate)
        result["matmul_fraction"] = result["achieved_gflops"] / machine["matmul_gflops"]
        variants[name] = result
    loader = None
    if cfg.loader_images > 0:
        loader = loader_throughput(cfg.loader_images, tuple(cfg.loader_size), instantiate(cfg.loader_transform),
                                   cfg.seed)
    return {
        # the composed data and model groups only lend the loader transform and the optimizers (in settings)
        "config": {**{k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
                      for k, v in cfg.items() if k not in ("data", "model")},
                   "optimizer_g": settings.optimizer_g, "optimizer_seg": settings.optimizer_seg},
        "machine": machine,
        "peak_rss_isolated": bool(cfg.isolate),  # false: peak_rss_mb is this process's high-water mark
        "variants": variants,
        "targets": targets(variants),
        "loader": loader,
        "environment": environment_record(cfg.seed),
    }
