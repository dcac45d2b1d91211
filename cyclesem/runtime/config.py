"""Structured configs: the schema Hydra merges every YAML file and override into, plus range checks.

OmegaConf checks keys and types (an unknown key or ``data.real_frac=abc`` fails while composing);
:func:`validate` checks the ranges OmegaConf cannot express. Both run before any output is written.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from lightning.pytorch.accelerators import MPSAccelerator
from omegaconf import MISSING, DictConfig, OmegaConf

from cyclesem.data.datamodule import split_labeled
from cyclesem.data.synthetic.pair import pair_dir_name
from cyclesem.method.options import (
    COMPILE_MODES,
    FP16_PRECISIONS,
    ClassWeighting,
    LossWeights,
    MethodOptions,
    SemanticClassifier,
    warm_start_setting,
)

# the YAML configs, by absolute path: `python -m cyclesem.<name>` and the `cyclesem-<name>` console scripts (whose
# Hydra would otherwise look for a `conf` Python package) find the same files
CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


class ConfigError(ValueError):
    """A config value outside what the code accepts; the message names the key and the allowed range."""


class SourceImages(str, Enum):
    raw = "raw"  # the labelled source images as they are (GTA5)
    none = "none"  # no source images: only round(real_frac·N) real images (the target_only control)


class SourceFilter(str, Enum):
    none = "none"  # every source image
    pavement = "pavement"  # without the scenes shot from the pavement (cyclesem.data.prepare's rule and split file)


class TestCheckpoint(str, Enum):
    best = "best"  # the best val/mIoU checkpoint (selection on val; the test split is held out)
    last = "last"  # the final weights, no selection (Cityscapes: val is the test set)


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
    source_images: SourceImages = MISSING  # none: the real images alone (target_only)
    source_filter: SourceFilter = MISSING  # pavement: drop the source scenes shot from the pavement
    batch_size: int = MISSING
    val_batch_size: int = MISSING
    num_workers: int = MISSING
    pin_memory: bool = MISSING
    seed: int = MISSING
    source: Any = MISSING
    target_train: Any = MISSING
    target_val: Any = MISSING  # checkpoint selection
    target_test: Any = None  # scored by the test stage; None: the val split (then use test_checkpoint=last)
    paired: Any = None  # synthetic pair only: (source, same scene in target style) for the translation error
    prepare: Any = None  # called once in prepare_data (renders the synthetic pair)


@dataclass
class ReferenceConfig:
    """``reference.*``: the translation score's reference segmenter (cyclesem/method/reference_segmenter.py), trained on the
    target train split (``train_set``) or loaded (``checkpoint``); values in conf/reference/<data>.yaml."""

    cache_dir: str = MISSING  # <cache_dir>/<key>/ holds segmenter.pt and reference.json
    checkpoint: str | None = None  # a segmenter trained elsewhere: nothing is trained
    prefix: str = "segmenter."  # with checkpoint: the segmenter's keys in the file ("" for a plain state_dict)
    pair_manifest: str | None = None  # the synthetic pair's manifest.json: its VERSION and params are keyed
    # (null, real data: the names of the train_set images are keyed instead)
    segmenter: Any = MISSING
    optimizer: Any = None
    batches: int | None = None  # training budget (one batch = one optimizer step)
    batch_size: int | None = None
    num_workers: int = 0  # data-loader processes while training (not part of the key: they change no weight)
    class_weights: ClassWeighting = ClassWeighting.none
    seed: int = 0  # the reference's own: the same for every run seed
    # a training run trains a missing reference first (the study presets) or goes without a translation score and
    # says how to build it (the default: the first `make train` would otherwise start with ≈25 min of training)
    train_if_missing: bool = False
    train_set: Any = None  # null (and no checkpoint): no reference, no translation score
    val_set: Any = None  # scored once after training for reference.json; never selected on


@dataclass
class WarmupConfig:
    """``warmup.*``: the warm-up CycleGAN that ``model.warm_start=true`` starts a run's generators and discriminators
    from (cyclesem/method/warmup.py); values in conf/warmup_cyclegan/<data>.yaml. Its networks, optimizers and loss weights
    are the run's ``model.*``."""

    cache_dir: str = MISSING  # <cache_dir>/<key>/ holds cyclegan.pt, warmup.json and curve.csv
    pair_manifest: str | None = None  # the synthetic pair's manifest.json: its VERSION and params are keyed
    seed: int = 0  # the run's seed: one warm-up per pair and seed
    batches: int = MISSING  # training budget in batches (one generator and one discriminator update each)
    batch_size: int = MISSING  # per domain
    eval_every: int = MISSING  # batches between two points of the translation-score curve
    patience: int | None = None  # stop after this many evaluations without a better score; null: never
    num_workers: int = 0
    compile: bool = False  # torch.compile the four networks: how fast (like the thread count), not keyed
    source: Any = MISSING  # every image of these, read without labels
    target_train: Any = MISSING
    paired: Any = None  # where the curve's translation score is measured; null: no score


@dataclass
class PathsConfig:
    data_dir: str = "${oc.env:CYCLESEM_DATA_DIR,data}"
    cache_dir: str = "${paths.data_dir}"  # reference segmenters and warm-ups (<cache_dir>/reference, <cache_dir>/warmup)
    output_dir: str = "${hydra:runtime.output_dir}"


@dataclass
class StudyConfig:
    """A study's records and plan (cyclesem/study/records.py); all None outside a study preset."""

    name: str | None = None
    dir: str | None = None  # each completed job writes <dir>/runs/<job key>.json
    plan: Any = None  # [{methods: [...], fractions: [...], seeds: [...]}, ...]: the jobs of the sweep's product to run
    # -m only: compose every job's config, run its checks (validate, pre-flight), print the plan with its cost
    # (hydra.callbacks.sweep_progress.seconds_per_batch) and exit without running a job: 0 when all pass, else 2
    dry_run: bool = False


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    trainer: Any = MISSING
    logger: Any = None
    callbacks: Any = None
    paths: PathsConfig = field(default_factory=PathsConfig)
    seed: int = 0
    ckpt_path: str | None = None
    run_test: bool = True
    test_checkpoint: TestCheckpoint = TestCheckpoint.best
    resume_sweep: bool = False  # rerun a sweep into its dir: skip completed jobs, resume others from last.ckpt
    task_name: str = "train"
    sweep_name: str | None = None  # W&B group; a sweep sets it so its jobs share one
    tags: list[str] = field(default_factory=list)
    study: StudyConfig = field(default_factory=StudyConfig)
    reference: ReferenceConfig | None = None  # null: no translation score
    warmup: WarmupConfig | None = None  # the CycleGAN warm-up model.warm_start=true loads (null: none for this data)
    # torch threads for this job (intra- and inter-op); null: torch's default (every core). On a CPU float
    # results depend on it (reduction order), so it is part of a job's config and of its record.
    threads: int | None = None
    # validations per run, the last after the final epoch (trainer.check_val_every_n_epoch derives from it
    # through ${val_interval:...}); null: every epoch. No validation at all with test_checkpoint=last.
    val_points: int | None = 3


def jobs_per_machine(threads: int | None) -> int:
    """How many jobs of ``threads`` threads fit this machine's cores side by side (at least 1)."""
    return max(1, (os.cpu_count() or 1) // threads) if threads else 1


def is_set(value: Any) -> bool:
    """Whether an option holds a value (``${is_set:${model.warm_start}}``: the run starts from a warm-up)."""
    return value is not None


def val_interval(max_epochs: int | None, val_points: int | None) -> int:
    """``trainer.check_val_every_n_epoch`` for about ``val_points`` validations with the last after the final
    epoch. Lightning validates after the epochs whose 1-based number is a multiple of the interval and never
    forces one at the end, so the interval divides max_epochs: of its divisors, the one whose count of
    validations (max_epochs / interval) is closest to val_points, ties to more validations — exactly
    val_points whenever it divides max_epochs (48 epochs, 6 points: every 8th). null: every epoch."""
    if val_points is None or max_epochs is None or max_epochs < 1:  # max_epochs -1: no end to validate at
        return 1
    _check(val_points >= 1, "val_points", val_points, "null (every epoch) or an integer >= 1")
    divisors = [n for n in range(1, max_epochs + 1) if max_epochs % n == 0]
    return min(divisors, key=lambda n: (abs(max_epochs // n - val_points), n))


def selection_val_batches(test_checkpoint: TestCheckpoint | str) -> int | None:
    """``trainer.limit_val_batches``: 0 (no validation) when no checkpoint is selected, else None (all)."""
    return 0 if str(getattr(test_checkpoint, "value", test_checkpoint)) == TestCheckpoint.last.value else None


def dataset_split(node: Any) -> str | None:
    """Which images a dataset node (``data.target_val``, ``data.target_test``) reads, as ``<root>/<split>`` with the
    root normalised (``~`` expanded, ``a/./b`` and ``a/b/`` as ``a/b``), so that two nodes naming the same folder and
    split give the same string; None for no node."""
    if node is None:
        return None
    root = node.get("root")
    root = "None" if root is None else os.path.normpath(os.path.expanduser(str(root)))
    return f"{root}/{node.get('split')}"


def scored_splits(cfg: DictConfig) -> tuple[str | None, str | None]:
    """(selection split, test split) of a training config: the images checkpoint selection looks at (``data.target_val``
    when ``test_checkpoint=best``, else None: the final weights are scored) and the images the test stage scores
    (``data.target_test``, the val split where it is null; None with ``run_test=false``). `cyclesem.train` records
    these two in metrics.json, and :func:`validate` refuses a config in which they are the same images."""
    data = cfg.data
    test_node = data.get("target_test") if data.get("target_test") is not None else data.get("target_val")
    test = dataset_split(test_node) if cfg.get("run_test", True) else None
    best = str(getattr(cfg.test_checkpoint, "value", cfg.test_checkpoint)) == TestCheckpoint.best.value
    selection = dataset_split(data.get("target_val")) if best else None
    return selection, test


def plain_spec(node: DictConfig, schema: type) -> dict[str, Any]:
    """A config node merged into its schema and resolved to plain Python (enums as strings): outside the train
    schema (``python -m cyclesem.reference``, ``python -m cyclesem.warmup``) the same spec, so the same cache key,
    as the node a training run composes."""
    resolved = OmegaConf.to_container(node, resolve=True)
    return OmegaConf.to_container(OmegaConf.merge(OmegaConf.structured(schema), resolved), enum_to_str=True)


def register_configs() -> None:
    ConfigStore.instance().store(name="train_schema", node=TrainConfig)
    OmegaConf.register_new_resolver("jobs_per_machine", jobs_per_machine, replace=True)
    OmegaConf.register_new_resolver("val_interval", val_interval, replace=True)
    OmegaConf.register_new_resolver("is_set", is_set, replace=True)
    OmegaConf.register_new_resolver("selection_val_batches", selection_val_batches, replace=True)
    OmegaConf.register_new_resolver("synthetic_dir", pair_dir_name, replace=True)


register_configs()


def _check(ok: bool, key: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is out of range: expected {expected}")


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def validate_warmup(warmup: DictConfig) -> None:
    """Range checks for ``warmup.*`` (a training run with ``model.warm_start=true``, ``python -m cyclesem.warmup``)."""
    for key in ("batches", "batch_size", "eval_every"):
        _check(warmup[key] >= 1, f"warmup.{key}", warmup[key], "an integer >= 1")
    _check(warmup.patience is None or warmup.patience >= 1, "warmup.patience", warmup.patience,
           "null (never stop early) or an integer >= 1")
    _check(warmup.num_workers >= 0, "warmup.num_workers", warmup.num_workers, "an integer >= 0")


def validate(cfg: DictConfig) -> None:
    """Range checks for the train config; raises :class:`ConfigError` naming the first bad key."""
    data, model = cfg.data, cfg.model
    _check(_finite(data.real_frac) and 0.0 <= data.real_frac <= 1.0, "data.real_frac", data.real_frac,
           "a float in [0, 1]")
    _check(data.num_labeled >= 1, "data.num_labeled", data.num_labeled, "an integer >= 1")
    _check(data.batch_size >= 1, "data.batch_size", data.batch_size, "an integer >= 1")
    _check(data.val_batch_size >= 1, "data.val_batch_size", data.val_batch_size, "an integer >= 1")
    _check(data.num_workers >= 0, "data.num_workers", data.num_workers, "an integer >= 0")
    prepare = OmegaConf.select(data, "prepare", default=None)
    if prepare is not None and "_target_" not in prepare:
        raise ConfigError(
            f"data.prepare={OmegaConf.to_container(prepare)!r} renders nothing: this data config reads its datasets "
            "from disk (data.prepare: null, e.g. data=gta5_cityscapes), so data.prepare.* (palette_shift, "
            "pavement_share) has no pair to shape. The presets that set it (gap_study, gap_calibration, "
            "real_frac_study, budget_pilot, smoke) are studies of the synthetic pair: expected data=synthetic, or "
            "+experiment=gta5_study for GTA5 → Cityscapes")
    share = OmegaConf.select(data, "prepare.pavement_share", default=0.0)
    _check(_finite(share) and not isinstance(share, bool) and 0.0 <= share <= 1.0, "data.prepare.pavement_share",
           share, "a float in [0, 1] (the share of source scenes shot from the pavement; 0: the default pair)")
    shift = OmegaConf.select(data, "prepare.palette_shift", default=1.0)
    _check(_finite(shift) and not isinstance(shift, bool) and 0.0 <= shift <= 1.0, "data.prepare.palette_shift",
           shift, "a float in [0, 1] (the target palette: 0 = the source's under one global colour transform, 1 = "
           "the swap palette, the first pair)")
    source_filter = OmegaConf.select(data, "source_filter", default="none")
    if str(getattr(source_filter, "value", source_filter)) == SourceFilter.pavement.value:
        split_file = OmegaConf.select(data, "source.split_file", default=None)
        _check(split_file is None, "data.source.split_file", split_file,
               "null with data.source_filter=pavement (it writes and reads its own split file; a split written by "
               "`python -m cyclesem.data.prepare gta5` already drops the pavement scenes: use it with "
               "data.source_filter=none)")
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
    _check(model.disc_noise >= 0, "model.disc_noise", model.disc_noise, "a float >= 0")
    _check(model.max_nonfinite_steps >= 1, "model.max_nonfinite_steps", model.max_nonfinite_steps,
           "an integer >= 1")
    _check(_finite(model.decay_start_frac) and 0.0 <= model.decay_start_frac <= 1.0, "model.decay_start_frac",
           model.decay_start_frac, "a float in [0, 1]")
    _check(model.gradient_clip_val is None or (_finite(model.gradient_clip_val) and model.gradient_clip_val > 0),
           "model.gradient_clip_val", model.gradient_clip_val, "null or a float > 0")
    _check(model.log_images_every_n_steps >= 0, "model.log_images_every_n_steps", model.log_images_every_n_steps,
           "an integer >= 0 (0 = never)")
    _check(model.compile_mode is None or model.compile_mode in COMPILE_MODES, "model.compile_mode",
           model.compile_mode, f"null or one of {', '.join(COMPILE_MODES)}")
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
    val_points = cfg.get("val_points")
    _check(val_points is None or val_points >= 1, "val_points", val_points, "null (every epoch) or an integer >= 1")
    reference = cfg.get("reference")
    if reference is not None and reference.get("checkpoint") is None and reference.get("train_set") is not None:
        for key in ("batches", "batch_size"):
            _check(reference[key] is not None and reference[key] >= 1, f"reference.{key}", reference[key],
                   "an integer >= 1 (the reference is trained)")
    selection, test = scored_splits(cfg)
    _check(selection is None or selection != test, "test_checkpoint", getattr(cfg.test_checkpoint, "value",
           cfg.test_checkpoint), f"last: checkpoints would be selected on {selection}, the split the test stage "
           "scores (data.target_test is data.target_val, as for Cityscapes, whose val split is the test set); or "
           "point data.target_val at held-out images")
    warmup = cfg.get("warmup")
    try:
        warm_start = warm_start_setting(model.get("warm_start"))
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if warm_start is not None:
        _check(model.style_transfer, "model.warm_start", model.warm_start,
               "null with model.style_transfer=false (the baseline has no CycleGAN to start from)")
        _check(warm_start is not True or warmup is not None, "model.warm_start", model.warm_start,
               "a warm-up directory or null: this data config has no warmup.* to build one from (conf/warmup_cyclegan/)")
    if warmup is not None and warm_start is True:
        validate_warmup(warmup)
    if model.semantic_classifier == SemanticClassifier.frozen:
        _check(model.segmenter_pretrain_epochs >= 1, "model.segmenter_pretrain_epochs",
               model.segmenter_pretrain_epochs, "an integer >= 1 when model.semantic_classifier=frozen")
    check_both_domains(cfg)
    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator", default="auto"))
    # Lightning's auto and gpu choices take Apple MPS before CUDA
    if accelerator == "mps" or (accelerator in ("auto", "gpu") and MPSAccelerator.is_available()):
        raise ConfigError(f"trainer.accelerator={accelerator} means Apple MPS here, where cyclesem does not train "
                          "(no float64 for its running sums, never tested there): set trainer.accelerator=cpu")


def check_both_domains(cfg: DictConfig) -> None:
    """A CycleGAN method needs images of both domains in its batches: at real_frac 0 or 1 without unlabelled
    target images it would train no CycleGAN, yet record itself as cyclesem with translation scores of untrained
    generators. Refused, naming the method that trains what such a run would."""
    data, model = cfg.data, cfg.model
    if not model.get("style_transfer", True):
        return
    num_source, num_target = split_labeled(data.num_labeled, data.real_frac)
    if str(getattr(data.source_images, "value", data.source_images)) == "none":
        num_source = 0
    name = "cyclegan" if model.semantic_classifier == SemanticClassifier.none else "cyclesem"
    labelled = (f"data.real_frac={data.real_frac} of data.num_labeled={data.num_labeled} gives {num_source} labelled "
                f"source and {num_target} labelled target images")
    if num_source == 0:
        raise ConfigError(f"method={name} trains no CycleGAN here: {labelled}, so there is nothing to translate. "
                          "Expected method=target_only (the real images alone; method=baseline trains the same at "
                          "real_frac=1) or a real_frac below 1")
    if num_target == 0 and not data.unlabeled_target:
        raise ConfigError(f"method={name} trains no CycleGAN here: {labelled} and data.unlabeled_target=false, so "
                          "there is no target domain to learn. Expected method=baseline (the source images alone) or "
                          "data.unlabeled_target=true (method=cyclesem_unlabeled: the CycleGAN learns the target "
                          "domain from the unlabelled target train images)")
