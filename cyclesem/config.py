"""Structured configs: the schema Hydra merges every YAML file and override into, plus range checks.

OmegaConf checks keys and types (an unknown key or ``data.real_frac=abc`` fails while composing);
:func:`validate` checks the ranges OmegaConf cannot express. Both run before any output is written.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from hydra.experimental.callback import Callback
from omegaconf import MISSING, DictConfig, OmegaConf


class ConfigError(ValueError):
    """A config value outside what the code accepts; the message names the key and the allowed range."""


class GanMode(str, Enum):
    lsgan = "lsgan"
    vanilla = "vanilla"


class SemanticClassifier(str, Enum):
    joint = "joint"  # F_T itself (the source report)
    ema = "ema"  # moving-average copy of F_T
    frozen = "frozen"  # copy of F_T pre-trained on the run's labelled images, then frozen (CyCADA)
    none = "none"  # no semantic terms: the generators are a plain CycleGAN (loss.sem_* are not used)


class PretrainOn(str, Enum):
    source = "source"
    target = "target"
    both = "both"


class ClassWeighting(str, Enum):
    none = "none"
    inverse = "inverse"
    median = "median"


class SourceImages(str, Enum):
    raw = "raw"  # the labelled source images as they are (GTA5)
    none = "none"  # no source images: only round(real_frac·N) real images (the target_only control)


class TestCheckpoint(str, Enum):
    best = "best"  # the best val/mIoU checkpoint (selection on val; the test split is held out)
    last = "last"  # the final weights, no selection (Cityscapes: val is the test set)


class SourceWeightRule(str, Enum):
    constant = "constant"  # seg_source as given
    source_share = "source_share"  # seg_source · (1 − real_frac) / max(real_frac, 1 − real_frac)


@dataclass
class LossWeights:
    gan: float = 1.0
    cycle: float = 10.0
    identity: float = 0.5  # multiplies `cycle`, as in CycleGAN; 0 switches identity off
    sem_source: float = 1.0  # generators: CE(F(G_S→T(x_s)), y_s)
    sem_target: float = 1.0  # generators: CE(F(G_S→T(G_T→S(x_t))), y_t)
    seg_source: float = 1.0  # segmenter: CE(F_T(x_SasT detached), y_s)
    seg_target: float = 1.0  # segmenter: CE(F_T(x_t), y_t)
    seg_source_rule: SourceWeightRule = SourceWeightRule.constant


@dataclass
class ModelConfig:
    _target_: str = "cyclesem.module.CycleSemModule"
    style_transfer: bool = True  # false: the baseline (no generators or discriminators are built)
    segmenter: Any = MISSING
    optimizer_seg: Any = MISSING
    scheduler_seg: Any = None
    gen_s2t: Any = None
    gen_t2s: Any = None
    disc_s: Any = None
    disc_t: Any = None
    optimizer_g: Any = None
    optimizer_d: Any = None
    loss: LossWeights = field(default_factory=LossWeights)
    gan_mode: GanMode = GanMode.lsgan
    semantic_classifier: SemanticClassifier = SemanticClassifier.joint
    ema_decay: float = 0.99
    segmenter_pretrain_epochs: int = 2
    pretrain_on: PretrainOn = PretrainOn.source
    semantic_warmup_epochs: int = 0
    pool_size: int = 50
    class_weights: ClassWeighting = ClassWeighting.none
    max_nonfinite_steps: int = 10
    gradient_clip_val: Optional[float] = None
    decay_start_frac: float = 0.5  # G/D learning rates decay linearly to 0 after this share of epochs
    log_images_every_n_steps: int = 200
    channels_last: bool = False
    compile: bool = False


@dataclass
class DataConfig:
    _target_: str = "cyclesem.data.datamodule.DomainMixDataModule"
    real_frac: float = 0.1
    num_labeled: int = 200
    unlabeled_target: bool = False
    source_images: SourceImages = SourceImages.raw  # none: the real images alone (target_only)
    batch_size: int = 4
    val_batch_size: int = 16
    num_workers: int = 0
    pin_memory: bool = False
    seed: int = 0
    source: Any = MISSING
    target_train: Any = MISSING
    target_val: Any = MISSING  # checkpoint selection
    target_test: Any = None  # scored by the test stage; None: the val split (then use test_checkpoint=last)
    paired: Any = None  # synthetic pair only: (source, same scene in target style) for the translation error
    prepare: Any = None  # called once in prepare_data (renders the synthetic pair)


@dataclass
class PathsConfig:
    data_dir: str = "${oc.env:CYCLESEM_DATA_DIR,data}"
    output_dir: str = "${hydra:runtime.output_dir}"


@dataclass
class StudyConfig:
    """A study's records and plan (cyclesem/study.py); all None outside a study preset."""

    name: Optional[str] = None
    dir: Optional[str] = None  # each completed job writes <dir>/runs/<job key>.json
    plan: Any = None  # [{methods: [...], fractions: [...], seeds: [...]}, ...]: the jobs of the sweep's product to run


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    trainer: Any = MISSING
    logger: Any = None
    callbacks: Any = None
    paths: PathsConfig = field(default_factory=PathsConfig)
    seed: int = 0
    ckpt_path: Optional[str] = None
    run_test: bool = True
    test_checkpoint: TestCheckpoint = TestCheckpoint.best
    resume_sweep: bool = False  # rerun a sweep into its dir: skip completed jobs, resume others from last.ckpt
    task_name: str = "train"
    sweep_name: Optional[str] = None  # W&B group; a sweep sets it so its jobs share one
    tags: list[str] = field(default_factory=list)
    study: StudyConfig = field(default_factory=StudyConfig)
    # torch threads for this job (intra- and inter-op); null: torch's default (every core). On a CPU float
    # results depend on it (reduction order), so it is part of a job's config and of its record.
    threads: Optional[int] = None


def jobs_per_machine(threads: int | None) -> int:
    """How many jobs of ``threads`` threads fit this machine's cores side by side (at least 1)."""
    return max(1, (os.cpu_count() or 1) // threads) if threads else 1


def register_configs() -> None:
    ConfigStore.instance().store(name="train_schema", node=TrainConfig)
    OmegaConf.register_new_resolver("jobs_per_machine", jobs_per_machine, replace=True)


register_configs()


class ValidateConfig(Callback):
    """Hydra callback: range-check a single run before Hydra creates its output directory."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            validate(config)
        except ConfigError as err:
            print(f"Config error: {err}", file=sys.stderr)
            raise SystemExit(2) from None


# fp16 mixed precision scales each backward by a GradScaler: the fused generator/segmenter backward and the
# segmenter's own backward would need one scale and unscaling before clipping. bf16 needs no scaler.
FP16_PRECISIONS = ("16", "16-mixed", "16-true")


def _check(ok: bool, key: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is out of range: expected {expected}")


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def validate(cfg: DictConfig) -> None:
    """Range checks for the train config; raises :class:`ConfigError` naming the first bad key."""
    data, model = cfg.data, cfg.model
    _check(_finite(data.real_frac) and 0.0 <= data.real_frac <= 1.0, "data.real_frac", data.real_frac,
           "a float in [0, 1]")
    _check(data.num_labeled >= 1, "data.num_labeled", data.num_labeled, "an integer >= 1")
    _check(data.batch_size >= 1, "data.batch_size", data.batch_size, "an integer >= 1")
    _check(data.val_batch_size >= 1, "data.val_batch_size", data.val_batch_size, "an integer >= 1")
    _check(data.num_workers >= 0, "data.num_workers", data.num_workers, "an integer >= 0")
    for f in fields(LossWeights):
        if f.name == "seg_source_rule":
            continue
        value = model.loss[f.name]
        _check(_finite(value) and value >= 0, f"model.loss.{f.name}", value, "a finite float >= 0")
    _check(_finite(model.ema_decay) and 0.0 <= model.ema_decay < 1.0, "model.ema_decay", model.ema_decay,
           "a float in [0, 1)")
    _check(model.segmenter_pretrain_epochs >= 0, "model.segmenter_pretrain_epochs",
           model.segmenter_pretrain_epochs, "an integer >= 0")
    _check(model.semantic_warmup_epochs >= 0, "model.semantic_warmup_epochs", model.semantic_warmup_epochs,
           "an integer >= 0")
    _check(model.pool_size >= 0, "model.pool_size", model.pool_size, "an integer >= 0")
    _check(model.max_nonfinite_steps >= 1, "model.max_nonfinite_steps", model.max_nonfinite_steps,
           "an integer >= 1")
    _check(_finite(model.decay_start_frac) and 0.0 <= model.decay_start_frac <= 1.0, "model.decay_start_frac",
           model.decay_start_frac, "a float in [0, 1]")
    _check(model.gradient_clip_val is None or (_finite(model.gradient_clip_val) and model.gradient_clip_val > 0),
           "model.gradient_clip_val", model.gradient_clip_val, "null or a float > 0")
    _check(model.log_images_every_n_steps >= 0, "model.log_images_every_n_steps", model.log_images_every_n_steps,
           "an integer >= 0 (0 = never)")
    precision = str(OmegaConf.select(cfg, "trainer.precision", default="32-true"))
    _check(precision not in FP16_PRECISIONS, "trainer.precision", precision,
           "32-true or bf16-mixed (fp16 needs a gradient scaler shared by three optimizers and the fused "
           "backward, which manual optimization does not give)")
    if str(getattr(data.source_images, "value", data.source_images)) == "none":
        _check(data.real_frac > 0, "data.real_frac", data.real_frac,
               "a float in (0, 1] with data.source_images=none (target_only trains on the real images alone)")
    threads = cfg.get("threads")
    _check(threads is None or threads >= 1, "threads", threads, "null or an integer >= 1")
    max_epochs = OmegaConf.select(cfg, "trainer.max_epochs", default=None)
    _check(max_epochs is None or max_epochs >= 1, "trainer.max_epochs", max_epochs, "an integer >= 1")
    if model.semantic_classifier == SemanticClassifier.frozen:
        _check(model.segmenter_pretrain_epochs >= 1, "model.segmenter_pretrain_epochs",
               model.segmenter_pretrain_epochs, "an integer >= 1 when model.semantic_classifier=frozen")
