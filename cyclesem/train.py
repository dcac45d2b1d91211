"""Train CycleGAN + segmenter (or the baseline), score the held-out test split, write metrics.json.

    python -m cyclesem.train data.real_frac=0.1
    python -m cyclesem.train -m +experiment=real_frac_sweep
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn
from omegaconf import DictConfig, OmegaConf

from cyclesem.data.datamodule import DomainMixDataModule
from cyclesem.data.labels import CLASS_NAMES
from cyclesem.method.from_config import instantiate_module
from cyclesem.method.losses import class_weights_from_counts
from cyclesem.method.module import CycleSemModule
from cyclesem.method.options import ClassWeighting, MethodOptions, SemanticClassifier, stylized_loss_weight
from cyclesem.method.pretrain import pretrain_classifier
from cyclesem.method.reference_segmenter import translation_reference
from cyclesem.method.translation_score import MIN_GAIN_SPAN, TranslationReference
from cyclesem.method.warmup import cyclegan_config, ensure_warmup, read_warmup, warm_start
from cyclesem.runtime.checkpoint import AtomicCheckpointIO
from cyclesem.runtime.config import CONF_DIR, ConfigError, TestCheckpoint, scored_splits, validate
from cyclesem.runtime.console import quiet_library_noise
from cyclesem.runtime.errors import exit_on_user_error
from cyclesem.study.run_record import config_summary, environment_record, portable_path, write_metrics
from cyclesem.study.sweep import run_job


def to_plain(cfg: DictConfig) -> dict:
    """Resolved plain-Python copy of a config node (enums as strings), stored in checkpoints."""
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule, L.Trainer]:
    """Objects from config: the datamodule, the module and a Trainer with loggers and callbacks.

    What the module needs from the data is computed here and passed in as numbers and objects: the class weights,
    the stylized-loss weight (``model.loss.seg_source_rule``: a function of the training progress), the translation
    score's frozen reference segmenter with its anchors (trained once and cached, `cyclesem.method.reference_segmenter`); and
    the ``frozen`` classifier is pre-trained here on the labelled sets, as its own Lightning stage (not when resuming:
    the checkpoint holds it); with ``model.warm_start`` the generators and discriminators start from the warm-up
    CycleGAN (`cyclesem.method.warmup`, built here the first time).
    """
    datamodule = instantiate(cfg.data)
    options = MethodOptions.from_mapping(cfg.model)
    class_weight = labelled_class_weights(datamodule, options.class_weights)
    loggers = [instantiate(c) for c in (cfg.logger or {}).values() if c is not None and "_target_" in c]
    callbacks = [instantiate(c) for c in (cfg.callbacks or {}).values() if c is not None and "_target_" in c]
    if not loggers:  # LearningRateMonitor refuses to run without a logger
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    extra = {} if "plugins" in cfg.trainer else {"plugins": [AtomicCheckpointIO()]}  # a kill mid-save keeps the old file
    trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks, **extra)
    reference = paired_set_reference(cfg, datamodule, trainer) if options.style_transfer else None
    model = instantiate_module(cfg.model, class_weight=class_weight, reference=reference,
                               seg_source_weight=partial(stylized_loss_weight, options.loss, cfg.data.real_frac))
    model.model_config, model.data_config = to_plain(cfg.model), to_plain(cfg.data)
    model.reference_config = to_plain(cfg.reference) if reference is not None else None
    if options.warm_start is not None and options.style_transfer:
        model.warm_start_record = warm_start_from(cfg, model, options.warm_start, trainer.strategy.root_device)
    if model.sem_net is not None and options.semantic_classifier == SemanticClassifier.frozen and cfg.ckpt_path is None:
        pretrain_frozen_classifier(model, datamodule, options, trainer)
    return datamodule, model, trainer


def labelled_class_weights(datamodule: DomainMixDataModule, mode: ClassWeighting) -> torch.Tensor | None:
    """Per-class CE weights (C,) from the labelled training images' pixel counts; None for ``none``."""
    if mode == ClassWeighting.none:
        return None
    datamodule.prepare_data()
    datamodule.setup("fit")
    weights = class_weights_from_counts(datamodule.labeled_class_counts(), mode)
    rank_zero_info(f"class weights ({mode.value}): "
                   + ", ".join(f"{n}={w:.2f}" for n, w in zip(CLASS_NAMES, weights.tolist(), strict=True)))
    return weights


def paired_set_reference(cfg: DictConfig, datamodule: DomainMixDataModule,
                         trainer: L.Trainer) -> TranslationReference | None:
    """The translation score's reference (``reference.*``) with its anchors on the data's paired set, trained on
    this process's training device the first time and read from its cache after; None without a paired set or
    with ``reference=null``."""
    if cfg.get("reference") is None:
        return None
    datamodule.prepare_data()
    datamodule.setup("validate")
    if datamodule.paired_set is None:
        if cfg.reference.get("checkpoint") is not None:
            rank_zero_warn(f"reference.checkpoint={cfg.reference.checkpoint} is set but data.paired is null: no "
                           "translation score (set data.paired, see conf/data/gta5_cityscapes.yaml)")
        return None
    train_if_missing = bool(cfg.reference.get("train_if_missing", False))
    reference = translation_reference(to_plain(cfg.reference), datamodule.paired_set, trainer.strategy.root_device,
                                      batch_size=datamodule.val_batch_size, train=train_if_missing)
    if reference is None and cfg.reference.get("train_set") is not None:
        rank_zero_info("no translation_score in this run: its reference segmenter is not cached yet; build it once "
                       "with `python -m cyclesem.reference` (or set reference.train_if_missing=true)")
    if reference is not None:
        rank_zero_info(f"translation reference {reference.key}: floor {reference.floor:.4f}, ceiling "
                       f"{reference.ceiling if reference.ceiling is None else round(reference.ceiling, 4)}")
        if reference.ceiling is not None and not reference.has_gain:
            rank_zero_warn(f"translation reference {reference.key}: its ceiling ({reference.ceiling:.4f}) is not above "
                           f"its floor ({reference.floor:.4f}), so no translation_gain is logged: give it a larger "
                           "reference.batches")
        elif reference.has_gain and not reference.gain_meaningful:
            rank_zero_warn(f"translation reference {reference.key}: ceiling - floor = {reference.ceiling:.4f} - "
                           f"{reference.floor:.4f} is below {MIN_GAIN_SPAN}, so translation_gain is not meaningful (the "
                           "reference reads the raw source images almost as well as the target-style renders: a "
                           "small domain gap, or a weak reference): read translation_score against floor and "
                           "ceiling instead")
    return reference


def warm_start_from(cfg: DictConfig, model: CycleSemModule, setting: bool | str, device: torch.device) -> dict[str, Any]:
    """Load the warm-up CycleGAN into the module's generators and discriminators: ``model.warm_start=true`` the one
    of this pair, seed and CycleGAN config (trained on `device` the first time, `cyclesem.method.warmup`), a path
    that warm-up directory. Returns what the run's record says of it (key, batches, its last translation score)."""
    if setting is True:
        reference = to_plain(cfg.reference) if cfg.get("reference") is not None else None
        entry = ensure_warmup(to_plain(cfg.warmup), cyclegan_config(to_plain(cfg.model)), reference, device,
                              batch_size=cfg.data.val_batch_size)
    else:
        entry = read_warmup(setting)
    warm_start(model, entry)
    summary = entry.summary()
    rank_zero_info(f"generators and discriminators start from warm-up {summary['key']} ({entry.directory}): "
                   f"{summary['batches']} batches, translation_score {summary['translation_score']}")
    return summary


def pretrain_frozen_classifier(model: CycleSemModule, datamodule: DomainMixDataModule, options: MethodOptions,
                               trainer: L.Trainer) -> None:
    """Start the ``frozen`` copy from F_T's initial weights and fit it on the labelled sets of
    ``model.pretrain_on`` for ``model.segmenter_pretrain_epochs``, on this process's training device."""
    datamodule.prepare_data()
    datamodule.setup("fit")
    sides = options.pretrain_on.sides
    if not any(side in datamodule.labeled_sets for side in sides):
        raise ValueError(f"model.pretrain_on={options.pretrain_on.value} but this run has no labelled "
                         f"{' or '.join(sides)} images (data.real_frac={datamodule.real_frac})")
    model.sem_net.load_state_dict(model.segmenter.state_dict())
    device = trainer.strategy.root_device  # under DDP this rank's device; DDP then broadcasts rank 0's copy
    history = pretrain_classifier(
        model.sem_net, datamodule.labeled_loader(sides), model.make_optimizer_seg,
        epochs=options.segmenter_pretrain_epochs, class_weight=model.class_weight_or_none(),
        accelerator=device.type, devices=[device.index] if device.index is not None else 1,
        max_batches=1 if trainer.fast_dev_run else None, default_root_dir=trainer.default_root_dir,
    )
    model.sem_net_ready.fill_(True)
    rank_zero_info(f"frozen semantic classifier pre-trained on {options.pretrain_on.value} for "
                   f"{len(history)} epochs; loss per epoch: " + ", ".join(f"{h:.3f}" for h in history))


def set_threads(threads: int | None) -> None:
    """Pin torch's intra- and inter-op threads. The inter-op pool can be sized only before its first use, so a
    later job in the same process (a sequential sweep) that asks for another size stops with a message."""
    if threads is None:
        return
    torch.set_num_threads(threads)
    if torch.get_num_interop_threads() != threads:
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError as err:
            raise ConfigError(f"threads={threads}: this process already runs "
                              f"{torch.get_num_interop_threads()} inter-op threads ({err}); start a new process "
                              "or sweep with one thread count") from None


def check_launch(cfg: DictConfig, trainer: L.Trainer) -> None:
    """A DDP strategy that starts its other ranks by re-running the command line cannot run inside a multirun,
    and the datamodule shards the data across ranks itself (Lightning must not replace its samplers)."""
    if trainer.world_size > 1 and OmegaConf.select(cfg, "trainer.use_distributed_sampler", default=True):
        raise ConfigError(
            "DomainMixDataModule shards the data across DDP ranks itself: set trainer.use_distributed_sampler="
            "false (trainer=ddp and trainer=ddp_cpu do), else Lightning replaces its samplers"
        )
    environment = getattr(trainer.strategy, "cluster_environment", None)
    if (trainer.world_size > 1 and environment is not None and not environment.creates_processes_externally
            and HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN):
        raise ConfigError(
            f"a {trainer.world_size}-process DDP trainer cannot run inside a Hydra multirun (-m) on one machine: "
            "Lightning starts the other ranks by re-running the command line, which would start the sweep again. "
            "Sweep DDP jobs with a launcher that starts one task per device (hydra/launcher=slurm_gpu with "
            "hydra.launcher.tasks_per_node and gpus_per_node = trainer.devices), run each job without -m, or sweep "
            "single-device jobs (trainer=gpu)"
        )


def _resolve_ckpt(ckpt_path: str | None, output_dir: Path) -> str | None:
    if ckpt_path is None:
        return None
    path = output_dir / "checkpoints" / "last.ckpt" if ckpt_path == "last" else Path(ckpt_path)
    if not path.is_file():
        hint = " (ckpt_path=last resumes the run in hydra.run.dir; pass that run's directory)" if ckpt_path == "last" else ""
        raise FileNotFoundError(f"checkpoint {path} does not exist{hint}")
    return str(path)


def _scores(results: dict[str, Any], split: str) -> dict[str, float]:
    return {k.split("/", 1)[1]: float(v) for k, v in results.items() if k.startswith(f"{split}/")}


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, test, and record. Returns the metrics record written to <run_dir>/metrics.json."""
    started = time.time()
    validate(cfg)  # main checked it already; a caller of train() gets the same refusals
    output_dir = Path(cfg.paths.output_dir)
    set_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True)
    datamodule, model, trainer = build(cfg)
    check_launch(cfg, trainer)
    ckpt_path = _resolve_ckpt(cfg.ckpt_path, output_dir)
    run_info = {**config_summary(cfg), "config": to_plain(cfg), **environment_record(cfg.seed)}
    for logger in trainer.loggers:  # the W&B run config: seed, versions, commit and the resolved config
        logger.log_hyperparams(run_info)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)  # a resume point runs no code
    # the budget as fit ran it (testing loads the selected checkpoint, whose counters are its own)
    budget = {"train_batches": model.train_batches, "segmenter_updates": model.segmenter_updates}
    val = _scores(trainer.callback_metrics, "val")
    test: dict[str, float] = {}
    best = next((c.best_model_path for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)), "") or None
    selected = best if cfg.test_checkpoint == TestCheckpoint.best else None  # None: the weights fit ended with
    if cfg.run_test:
        results = trainer.test(model, datamodule=datamodule, ckpt_path=selected, verbose=False, weights_only=True)
        test = _scores(results[0] if results else {}, "test")
    selection_split, test_split = scored_splits(cfg)  # the images each stage read (validate: never the same)
    wandb_dir = next((lg.experiment.dir for lg in trainer.loggers if isinstance(lg, WandbLogger)
                      and getattr(lg.experiment, "dir", None)), None)
    record = {
        "status": "completed",
        "val": val,
        "test": test,
        "best_checkpoint": best,  # this machine's files, for the commands run on them (a study record drops them)
        # which weights the test scores are of, on which images, and which images chose them: what a study record
        # keeps, so relative to the run directory and the repository
        "test_checkpoint": f"best val/mIoU ({portable_path(selected, output_dir)})" if selected else "last (no selection)",
        "test_split": portable_path(test_split) if test and test_split else None,
        "selection_split": portable_path(selection_split) if selected and selection_split else None,
        "last_checkpoint": str(output_dir / "checkpoints" / "last.ckpt"),
        "epochs": trainer.current_epoch,
        **budget,  # equal across methods for one budget (global_step is not)
        "wall_time_s": round(time.time() - started, 1),
        "threads": {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()},
        "wandb_dir": wandb_dir,
        # the translation score's reference: its cache key and anchors (None: no translation score); the gain is
        # flagged when ceiling − floor is too small for it to mean anything (translation_score.MIN_GAIN_SPAN)
        "translation_reference": None if model.reference is None else {
            "key": model.reference.key, "floor": model.reference.floor, "ceiling": model.reference.ceiling,
            "gain_meaningful": model.reference.gain_meaningful, "min_gain_span": MIN_GAIN_SPAN},
        # the warm-up CycleGAN the generators and discriminators started from (None: from scratch)
        "warm_start": model.warm_start_record,
        **config_summary(cfg),
        **environment_record(cfg.seed),
    }
    if trainer.is_global_zero:  # under DDP every rank gets here with the same (reduced) scores
        write_metrics(output_dir, record)
    final = test or val
    if trainer.is_global_zero:
        scored = f"test on {record['test_split']}, {record['test_checkpoint']}" if test else "val, last validation"
        print(f"\n{record['method']} real_frac={cfg.data.real_frac}: fwIoU={final.get('fwIoU', float('nan')):.4f} "
              f"mIoU={final.get('mIoU', float('nan')):.4f} ({scored})\n"
              f"run dir: {output_dir}\ncheckpoint: {best or record['last_checkpoint']}\n"
              + (f"W&B run: {wandb_dir} (sync with `wandb sync {Path(wandb_dir).parent}`)\n" if wandb_dir else ""))
    return record


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> dict[str, Any] | None:
    quiet_library_noise()
    with exit_on_user_error():
        return run_job(cfg, train)


if __name__ == "__main__":
    main()
