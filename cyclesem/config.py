"""Structured configs: the schema Hydra merges every YAML file and override into, plus range checks.

OmegaConf checks keys and types (an unknown key or ``data.real_frac=abc`` fails while composing);
:func:`validate` checks the ranges OmegaConf cannot express. Both run before any output is written.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from hydra.experimental.callback import Callback
from omegaconf import MISSING, DictConfig, OmegaConf

from cyclesem.method.options import LossWeights, MethodOptions, SemanticClassifier

# the YAML configs, by absolute path: `python -m cyclesem.<name>` and the `cyclesem-<name>` console scripts (whose
# Hydra would otherwise look for a `conf` Python package) find the same files
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


class ConfigError(ValueError):
    """A config value outside what the code accepts; the message names the key and the allowed range."""


@dataclass
class ModelConfig(MethodOptions):
    """``model.*``: the networks and optimizer factories (objects via ``_target_``) plus `MethodOptions`."""

    _target_: str = "cyclesem.method.module.CycleSemModule"
    segmenter: Any = MISSING
    optimizer_seg: Any = MISSING
    scheduler_seg: Any = None
    gen_s2t: Any = None
    gen_t2s: Any = None
    disc_s: Any = None
    disc_t: Any = None
    optimizer_g: Any = None
    optimizer_d: Any = None


@dataclass
class DataConfig:
    """``data.*``: types only; every value is the dataset's own, in conf/data/<name>.yaml."""

    _target_: str = "cyclesem.data.datamodule.DomainMixDataModule"
    real_frac: float = MISSING
    num_labeled: int = MISSING
    unlabeled_target: bool = MISSING
    batch_size: int = MISSING
    val_batch_size: int = MISSING
    num_workers: int = MISSING
    pin_memory: bool = MISSING
    seed: int = MISSING
    source: Any = MISSING
    target_train: Any = MISSING
    target_val: Any = MISSING
    paired: Any = None  # synthetic pair only: (source, same scene in target style) for the translation error
    prepare: Any = None  # called once in prepare_data (renders the synthetic pair)


@dataclass
class PathsConfig:
    data_dir: str = "${oc.env:CYCLESEM_DATA_DIR,data}"
    output_dir: str = "${hydra:runtime.output_dir}"


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
    resume_sweep: bool = False  # rerun a sweep into its dir: skip completed jobs, resume others from last.ckpt
    task_name: str = "train"
    sweep_name: Optional[str] = None  # W&B group; a sweep sets it so its jobs share one
    tags: list[str] = field(default_factory=list)


def register_configs() -> None:
    ConfigStore.instance().store(name="train_schema", node=TrainConfig)


register_configs()


class ValidateConfig(Callback):
    """Hydra callback: range-check a single run, then the files it names (`cyclesem.preflight`), before Hydra
    creates its output directory. ``task`` names the entry point (train, evaluate, predict, …)."""

    def __init__(self, task: str = "train") -> None:
        self.task = task

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from cyclesem.preflight import check_sweep_needs_multirun, preflight  # imports the dataset readers

        try:
            if self.task == "train":
                validate(config)
                check_sweep_needs_multirun(config)
            preflight(config, self.task, run_dir=OmegaConf.select(config, "hydra.run.dir", default=None))
        except ConfigError as err:
            print(f"Config error: {err}", file=sys.stderr)
            raise SystemExit(2) from None


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
    max_epochs = OmegaConf.select(cfg, "trainer.max_epochs", default=None)
    _check(max_epochs is None or max_epochs >= 1, "trainer.max_epochs", max_epochs, "an integer >= 1")
    if model.semantic_classifier == SemanticClassifier.frozen:
        _check(model.segmenter_pretrain_epochs >= 1, "model.segmenter_pretrain_epochs",
               model.segmenter_pretrain_epochs, "an integer >= 1 when model.semantic_classifier=frozen")
