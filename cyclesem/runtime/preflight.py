"""Checks on the files a run names, made before Hydra creates a run directory, a W&B run or a metrics.json.

`ValidateConfig` (a Hydra callback in each entry point's YAML) calls :func:`preflight` for a
single run; `cyclesem.train` calls it again inside each job of a multirun. Every problem is a
:class:`~cyclesem.runtime.config.ConfigError` whose one-line message names the key, the path and what was expected.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from cyclesem.data.cityscapes import find_cityscapes_pairs
from cyclesem.data.datamodule import split_labeled
from cyclesem.data.gta5 import find_gta5_pairs, read_split_file
from cyclesem.data.image_io import DatasetError
from cyclesem.method.options import warm_start_setting
from cyclesem.method.warmup import RECORD_FILE as WARMUP_RECORD
from cyclesem.models.weights_file import CheckpointError, UnsafeCheckpointError, load_weights_only
from cyclesem.runtime.config import ConfigError, validate
from cyclesem.runtime.inference import list_images

TASKS = ("train", "evaluate", "predict", "export", "stylize", "figure", "translation_figure")
_CHECKPOINT = "a checkpoint file written by cyclesem.train (e.g. outputs/<date>/<time>/checkpoints/last.ckpt)"


def check_weights_only(key: str, path: str | Path) -> None:
    """The file at ``key`` holds nothing but weights, so reading it runs no code. Checked here, before a run
    directory exists, so a crafted file (or a resume point, ``ckpt_path=last``) stops nothing that was written;
    reading only its pickle (mmap). An unreadable file is the command's to report, with what it expected."""
    try:
        load_weights_only(path, mmap=True)
    except UnsafeCheckpointError as err:
        raise ConfigError(f"{key}: {err}") from None
    except CheckpointError:
        pass


def check_checkpoint(ckpt_path: Any, run_dir: str | Path | None = None) -> None:
    """ckpt_path names an existing file that loads weights-only; for training, ``last`` is
    ``<run_dir>/checkpoints/last.ckpt``."""
    if ckpt_path is None:
        return
    if ckpt_path == "last" and run_dir is not None:
        path = Path(run_dir) / "checkpoints" / "last.ckpt"
        if not path.is_file():
            raise ConfigError(f"ckpt_path=last: {path} does not exist: expected the directory of the run to resume "
                              "as hydra.run.dir=outputs/<date>/<time>")
        check_weights_only("ckpt_path=last", path)
        return
    if not Path(ckpt_path).is_file():
        raise ConfigError(f"ckpt_path={ckpt_path} does not exist: expected {_CHECKPOINT}")
    check_weights_only("ckpt_path", ckpt_path)


def check_checkpoint_map(checkpoints: Any) -> None:
    """Each path of a ``checkpoints`` mapping (column label → checkpoint, translation_figure) is an existing file
    that loads weights-only."""
    if not isinstance(checkpoints, Mapping):  # the entry point says what it expects
        return
    for label, path in checkpoints.items():
        if isinstance(path, str) and not Path(path).is_file():
            raise ConfigError(f"checkpoints.{label}={path} does not exist: expected {_CHECKPOINT}")
        if isinstance(path, str):
            check_weights_only(f"checkpoints.{label}", path)


def check_reference(reference: Any) -> None:
    """A loaded reference segmenter (reference.checkpoint) names an existing file that loads weights-only; a
    trained one is built later."""
    checkpoint = reference.get("checkpoint") if reference is not None else None
    if checkpoint is None:
        return
    if not Path(checkpoint).expanduser().is_file():
        raise ConfigError(f"reference.checkpoint={checkpoint} does not exist: expected the weights of a segmenter "
                          "trained on the target train split (a cyclesem checkpoint or a state_dict file)")
    check_weights_only("reference.checkpoint", checkpoint)


def check_warm_start(model: Any) -> None:
    """``model.warm_start=<directory>`` names a warm-up cache entry; ``true`` builds or finds one later."""
    setting = warm_start_setting(model.get("warm_start")) if model is not None else None
    if isinstance(setting, str) and not (Path(setting).expanduser() / WARMUP_RECORD).is_file():
        raise ConfigError(f"model.warm_start={setting} holds no {WARMUP_RECORD}: expected the directory of a warm-up "
                          "(<warmup.cache_dir>/<key>/, built by `python -m cyclesem.warmup`), true or null")


def check_input_dir(input_dir: Any) -> None:
    try:
        list_images(input_dir)
    except FileNotFoundError as err:
        raise ConfigError(str(err)) from None


def _count_images(side: DictConfig, key: str) -> int | None:
    """Images of one dataset node (source, target_train, target_val); None for a dataset class we do not know."""
    target, root = side.get("_target_", ""), side.get("root")
    known = target.endswith(("GTA5Dataset", "CityscapesDataset"))
    if not known:
        return None
    if root is None:
        raise ConfigError(f"{key}.root is not set: expected the dataset's folder (or set GTA5_ROOT / CITYSCAPES_ROOT), "
                          "or data=synthetic for the embedded synthetic pair")
    try:
        if target.endswith("GTA5Dataset"):
            pairs = find_gta5_pairs(root, require_labels=side.get("labeled", True))
        else:
            return len(find_cityscapes_pairs(root, side.get("split", "train")))
    except DatasetError as err:
        raise ConfigError(f"{key}.root={root}: {err}") from None
    split_file = side.get("split_file")
    if split_file is None:
        return len(pairs)
    try:
        return len(read_split_file(split_file))
    except DatasetError as err:
        raise ConfigError(f"{key}.split_file={split_file}: {err}: expected the split `python -m cyclesem.data.prepare "
                          f"gta5 {root}` writes ({root}/split_clean.txt)") from None


def check_paired(paired: Any) -> None:
    """The translation score's images (``data.paired``): its folders (and split file) exist and share images. Lists
    the folders, decodes nothing."""
    if paired is None:
        return
    try:
        instantiate(paired)()
    except DatasetError as err:
        raise ConfigError(f"data.paired: {err}") from None


def check_data(data: DictConfig, sides: tuple[str, ...]) -> None:
    """The dataset roots of ``sides`` exist and hold images; for training, enough for the labelled set."""
    if data.get("prepare") is not None:  # the embedded synthetic pair: rendered (or found current) now
        instantiate(data.prepare)()
    counts = {side: _count_images(data[side], f"data.{side}") for side in sides if data.get(side) is not None}
    if "source" not in sides and "target_train" not in sides:
        return
    num_source, num_target = split_labeled(data.num_labeled, data.real_frac)
    for side, needed in (("source", num_source), ("target_train", num_target)):
        have = counts.get(side)
        if have is not None and needed > have:
            raise ConfigError(
                f"data.num_labeled={data.num_labeled} at data.real_frac={data.real_frac} needs {needed} labelled "
                f"{side} images but data.{side}.root={data[side].root} holds {have}: expected at most {have} "
                "(lower data.num_labeled)"
            )


def train_sides(data: DictConfig) -> tuple[str, ...]:
    num_source, num_target = split_labeled(data.num_labeled, data.real_frac)
    sides = ["source"] if num_source > 0 else []
    if num_target > 0 or data.get("unlabeled_target", False):
        sides.append("target_train")
    return (*sides, "target_val")


def check_sweep_needs_multirun(cfg: DictConfig) -> None:
    """A sweep preset (it sets hydra.sweeper.params) run without -m would train one default job."""
    if OmegaConf.select(cfg, "study.dry_run", default=False):
        raise ConfigError("study.dry_run=true checks the jobs of a sweep but this is a single run: expected -m "
                          "(python -m cyclesem.train -m +experiment=<study> study.dry_run=true)")
    params = OmegaConf.select(cfg, "hydra.sweeper.params", default=None)
    if params:
        experiment = OmegaConf.select(cfg, "hydra.runtime.choices.experiment", default=None)
        name = f"+experiment={experiment}" if experiment else "hydra.sweeper.params"
        raise ConfigError(f"{name} is a sweep ({', '.join(params)}) but this is a single run, which would train one "
                          f"default job: expected -m (python -m cyclesem.train -m {name} ...)")


def preflight(cfg: DictConfig, task: str, run_dir: str | Path | None = None) -> None:
    """Everything ``task`` reads from disk before it starts; raises :class:`ConfigError` naming the first problem."""
    if task not in TASKS:
        raise ValueError(f"preflight task={task!r}: expected one of {', '.join(TASKS)}")
    check_checkpoint(cfg.get("ckpt_path"), run_dir if task == "train" else None)
    if task == "translation_figure":
        check_checkpoint_map(cfg.checkpoints)
    if task in ("predict", "stylize"):
        check_input_dir(cfg.input_dir)
    data = cfg.get("data")
    if data is not None:
        if task == "train":
            check_data(data, train_sides(data))
            check_paired(data.get("paired"))
            check_reference(cfg.get("reference"))
            check_warm_start(cfg.get("model"))
        elif task == "evaluate":
            check_data(data, ("target_val",))


class ValidateConfig(Callback):
    """Hydra callback: range-check a single run, then the files it names (:func:`preflight`), before Hydra
    creates its output directory. ``task`` names the entry point (train, evaluate, predict, …)."""

    def __init__(self, task: str = "train") -> None:
        self.task = task

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            if self.task == "train":
                validate(config)
                check_sweep_needs_multirun(config)
            preflight(config, self.task, run_dir=OmegaConf.select(config, "hydra.run.dir", default=None))
        except ConfigError as err:
            print(f"Config error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
