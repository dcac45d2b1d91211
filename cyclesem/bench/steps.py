"""The three training steps `cyclesem.bench` times, and the timing and FLOP counting of one of them.

    joint     CycleSemModule.training_step: fakes computed once and reused, the generators' and the
              segmenter's source CE fused into one segmenter forward
    cyclegan  the same module without a segmenter: semantic weights 0, translate → generator step →
              discriminator step
    naive     the joint step as a straightforward implementation runs it: the generators' source CE
              through a frozen F_T and a second segmenter forward on the detached fake (no fusion), and
              the generators run again for the discriminator step (Lightning's GAN example)

The module is the real one, built from the real networks and the configured optimizers, and driven without a
Trainer through `cyclesem.method.harness` (as the unit tests do). `measure_variant` is what one fresh process
runs per variant. With ``compile`` the module's own ``model.compile`` option wraps every network in
torch.compile; compilation happens in the untimed warm-up steps, and the timed steps fail on a recompile.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from torch.utils.flop_counter import FlopCounterMode

from cyclesem.data.labels import NUM_CLASSES
from cyclesem.method.classifier_copies import frozen
from cyclesem.method.harness import random_batch, without_trainer
from cyclesem.method.module import CycleSemModule, Fakes
from cyclesem.method.options import COMPILE_MODES
from cyclesem.models.discriminator import PatchDiscriminator
from cyclesem.models.generator import ResnetGenerator
from cyclesem.models.segmenter import UNet

PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class BenchSettings:
    """Everything a variant's process needs (plain values: it is pickled to a spawned process)."""

    height: int = 128
    width: int = 128
    batch_size: int = 1  # per domain: a step sees batch_size source + batch_size target images
    ngf: int = 64
    n_blocks: int = 9
    ndf: int = 64
    seg_base_channels: int = 16
    seg_depth: int = 4
    warmup: int = 2
    steps: int = 5
    device: str = "cpu"  # already resolved: cpu | cuda
    channels_last: bool = False
    compile: bool = False  # torch.compile every network (CycleSemModule's compile option)
    compile_mode: str | None = None  # None: torch.compile's default mode
    precision: str = "fp32"
    seed: int = 0
    threads: int | None = None  # torch intra-op threads; None keeps torch's default
    # the optimizers as plain Hydra configs (``_partial_: true``), from conf/model/cyclesem.yaml
    optimizer_g: dict[str, Any] = field(default_factory=dict)
    optimizer_seg: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision={self.precision!r} is not one of {PRECISIONS}")
        if self.steps < 1 or self.warmup < 0:
            raise ValueError(f"need steps >= 1 and warmup >= 0, got steps={self.steps} warmup={self.warmup}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.compile_mode is not None and self.compile_mode not in COMPILE_MODES:
            raise ValueError(f"compile_mode={self.compile_mode!r} is not null or one of {COMPILE_MODES}")
        if self.compile and self.warmup < 1:
            raise ValueError("compile=true needs warmup >= 1: the first step compiles and must not be timed")


# ----------------------------------------------------------------- the three steps
def joint_step(module: CycleSemModule, batch: Mapping) -> None:
    module.training_step(batch, 0)


def cyclegan_step(module: CycleSemModule, batch: Mapping) -> None:
    source_image, target_image = batch["source"]["image"], batch["target"]["image"]
    opt_g, opt_d, _ = module.optimizers()
    logs: dict = {}
    fakes = module.translate(source_image, target_image)
    module.generator_step(opt_g, fakes, batch, logs)  # sem weights are 0: GAN + cycle + identity only
    module.discriminator_step(opt_d, fakes, source_image, target_image, logs)


def naive_step(module: CycleSemModule, batch: Mapping) -> None:
    """The joint step without its two savings; the losses are the module's own, so only the work differs."""
    source_image, source_label = batch["source"]["image"], batch["source"]["label"]
    target_image, target_label = batch["target"]["image"], batch["target"]["label"]
    opt_g, opt_d, opt_seg = module.optimizers()
    logs: dict = {}
    opt_seg.zero_grad(set_to_none=True)
    fakes = module.translate(source_image, target_image)
    # fusion is switched off (see build_module): the source CE goes through F_T under `frozen`
    module.generator_step(opt_g, fakes, batch, logs)
    # run the generators again (in grad mode, then detached by the step) rather than reuse the fakes
    regenerated = Fakes(module.gen_s2t(source_image), module.gen_t2s(target_image), fakes.source_rec,
                        fakes.target_rec)
    module.discriminator_step(opt_d, regenerated, source_image, target_image, logs)
    # fused_source_ce=None: the segmenter runs its own forward on the detached fake
    module.segmenter_step(opt_seg, fakes.source_as_target.detach(), source_label, target_image, target_label,
                          None, logs)


@dataclass(frozen=True)
class Variant:
    name: str
    step: Callable[[CycleSemModule, Mapping], None]
    semantic: bool  # built with the semantic terms (and so with F_T in the step)
    fused: bool  # may fuse the source CE (only the joint step)


VARIANTS: tuple[Variant, ...] = (
    Variant("joint", joint_step, semantic=True, fused=True),
    Variant("cyclegan", cyclegan_step, semantic=False, fused=False),
    Variant("naive", naive_step, semantic=True, fused=False),
)


def variant_named(name: str) -> Variant:
    for variant in VARIANTS:
        if variant.name == name:
            return variant
    raise ValueError(f"unknown benchmark variant {name!r}; expected some of {[v.name for v in VARIANTS]}")


# ----------------------------------------------------------------- module and batch
def build_module(settings: BenchSettings, variant: Variant) -> CycleSemModule:
    """The real CycleSemModule at the configured size, on the device, ready to step without a Trainer."""
    torch.manual_seed(settings.seed)
    optimizer_gan = instantiate(settings.optimizer_g)  # the model config uses one for G and D
    module = CycleSemModule(
        segmenter=UNet(num_classes=NUM_CLASSES, base_channels=settings.seg_base_channels,
                       depth=settings.seg_depth),
        optimizer_seg=instantiate(settings.optimizer_seg),
        gen_s2t=ResnetGenerator(ngf=settings.ngf, n_blocks=settings.n_blocks),
        gen_t2s=ResnetGenerator(ngf=settings.ngf, n_blocks=settings.n_blocks),
        disc_s=PatchDiscriminator(ndf=settings.ndf), disc_t=PatchDiscriminator(ndf=settings.ndf),
        optimizer_g=optimizer_gan, optimizer_d=optimizer_gan,
        loss={} if variant.semantic else {"sem_source": 0.0, "sem_target": 0.0},
        channels_last=settings.channels_last, compile=settings.compile, compile_mode=settings.compile_mode,
    )
    if not variant.fused:
        module.fuses_source_term = lambda: False  # generator_step then takes its frozen(F_T) path
    module.configure_model()  # channels_last conversion and torch.compile, as the Trainer would call it
    module.to(settings.device).train()
    return without_trainer(module)


def make_batch(settings: BenchSettings) -> dict:
    return random_batch(settings.batch_size, settings.height, settings.width, seed=settings.seed,
                        device=settings.device, channels_last=settings.channels_last)


# ----------------------------------------------------------------- measuring
def peak_rss_mb() -> float:
    """This process's resident-memory high-water mark (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def segmenter_flops(segmenter: torch.nn.Module, calls: list[tuple[torch.Size, bool, bool]],
                    autocast: Callable[[], contextlib.AbstractContextManager], channels_last: bool) -> int:
    """FLOPs of F_T's forward + backward in one step, replaying its recorded calls on their own.

    Inside the step F_T's backward interleaves with the generators' (gradients flow through it into the
    fakes), so per-module attribution is unreliable there. Each call is replayed with the same input shape
    and the same gradient needs (input grad? parameter grad?), which fix what its backward computes.
    """
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    device = next(segmenter.parameters()).device
    with FlopCounterMode(display=False) as counter:
        for shape, input_grad, param_grad in calls:
            image = torch.randn(shape, device=device).contiguous(memory_format=memory_format)
            image.requires_grad_(input_grad)
            with frozen(segmenter) if not param_grad else contextlib.nullcontext(), autocast():
                logits = segmenter(image)  # (B, C, H, W)
            if logits.requires_grad:
                logits.float().sum().backward()  # sum's backward is an expand: no counted FLOPs
    segmenter.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def count_step_flops(module: CycleSemModule, run_step: Callable[[], None],
                     autocast: Callable[[], contextlib.AbstractContextManager],
                     channels_last: bool) -> tuple[int, int]:
    """(whole step, segmenter share of it) FLOPs of one step: forward + backward (optimizer FLOPs not counted).

    Counted eagerly even when the networks are compiled (``force_eager`` runs their uncompiled forward: the
    same math). FlopCounterMode only sees the aten ops a compiled graph still dispatches, which depends on
    how inductor lowers it (with torch 2.14 on the CPU it calls the convolutions as aten ops, but other modes
    and backends may not), and the segmenter's replay below would recompile it for every new call signature.
    """
    calls: list[tuple[torch.Size, bool, bool]] = []

    def record(segmenter: torch.nn.Module, args: tuple) -> None:
        calls.append((args[0].shape, args[0].requires_grad, any(p.requires_grad for p in segmenter.parameters())))

    hook = module.segmenter.register_forward_pre_hook(record)
    with torch.compiler.set_stance("force_eager"):
        try:
            with FlopCounterMode(display=False) as counter:
                run_step()
        finally:
            hook.remove()
        return int(counter.get_total_flops()), segmenter_flops(module.segmenter, calls, autocast, channels_last)


def measure_variant(settings: BenchSettings, name: str) -> dict:
    """Build, warm up, time `settings.steps` steps, then count one step's FLOPs. Run it in a fresh process
    for a peak-memory figure of this variant alone (ru_maxrss is a process-wide high-water mark)."""
    if settings.threads:
        torch.set_num_threads(settings.threads)
    rss_before = peak_rss_mb()  # after the imports, before any network exists
    variant = variant_named(name)
    device = torch.device(settings.device)
    module = build_module(settings, variant)
    batch = make_batch(settings)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def autocast() -> contextlib.AbstractContextManager:
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=settings.precision == "bf16")

    def run_step() -> None:
        with autocast():
            variant.step(module, batch)

    def timed_step() -> float:
        _synchronize(device)
        start = time.perf_counter()
        run_step()
        _synchronize(device)
        return time.perf_counter() - start

    warmup_seconds = [timed_step() for _ in range(settings.warmup)]  # with compile: the first one compiles
    # compiled networks must not compile again inside the timed steps (that time would count as step time)
    with torch.compiler.set_stance("fail_on_recompile") if settings.compile else contextlib.nullcontext():
        try:
            seconds = [timed_step() for _ in range(settings.steps)]
        except RuntimeError as err:
            if settings.compile and "fail_on_recompile" in str(err):
                err.add_note(f"a network recompiled after {settings.warmup} warm-up steps: raise warmup")
            raise
    flops, seg_flops = count_step_flops(module, run_step, autocast, settings.channels_last)
    q25, median, q75 = np.percentile(seconds, [25, 50, 75]).tolist()
    result = {
        "seconds_per_step_median": median,
        "seconds_per_step_iqr": q75 - q25,
        "seconds_per_step": seconds,
        "compiled": settings.compile,
        # untimed; with compile the first includes compilation (≈ its excess over the median step)
        "warmup_seconds": warmup_seconds,
        "warmup_seconds_total": sum(warmup_seconds),
        "images_per_second": 2 * settings.batch_size / median,  # source + target images
        "flops_per_step": flops,
        "segmenter_flops_per_step": seg_flops,
        "segmenter_flop_share": seg_flops / flops,
        "achieved_gflops": flops / median / 1e9,
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_increase_mb": peak_rss_mb() - rss_before,
        "num_threads": torch.get_num_threads(),
        "process_id": os.getpid(),
    }
    if device.type == "cuda":
        result["peak_cuda_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return result
