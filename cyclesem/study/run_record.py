"""What a run records about itself in metrics.json: its settings, the software and the commit."""

from __future__ import annotations

import json
import os
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from cyclesem.data.synthetic.pair import VERSION as PAIR_VERSION
from cyclesem.data.synthetic.pair import rendering_digest
from cyclesem.method.cache_files import machine_record
from cyclesem.method.options import MethodOptions, SemanticClassifier

PACKAGES = ("cyclesem", "torch", "torchvision", "lightning", "hydra-core", "torchmetrics", "albumentations", "wandb")
REPOSITORY = Path(__file__).resolve().parents[2]  # the checkout this package runs from (conf/ lies beside it)
# the folders a user names by environment variable (conf/paths, conf/data/gta5_cityscapes.yaml), for paths
# outside the repository
DATA_ROOT_VARIABLES = ("CYCLESEM_DATA_DIR", "GTA5_ROOT", "CITYSCAPES_ROOT")


def _choice(group: str) -> str | None:
    try:
        return HydraConfig.get().runtime.choices.get(group)
    except ValueError:  # not running under Hydra (tests that build configs with compose)
        return None


def method_of(cfg: DictConfig) -> str:
    """The comparison-set name of a run, from what it trains on and with (conf/method/ sets these):
    cyclesem, cyclegan (no semantic terms), baseline (raw source + real), target_only (the real images alone),
    oracle (the source scenes rendered in the target style + real); "_warm" when the CycleGAN starts from the
    warm-up (``model.warm_start``, docs/warm_start.md), "_unlabeled" when it also sees the unlabelled rest of the
    target train split (cyclesem_warm_unlabeled: both)."""
    options = MethodOptions.from_mapping(cfg.model)
    if str(getattr(cfg.data.source_images, "value", cfg.data.source_images)) == "none":
        name = "target_only"
    elif options.style_transfer:
        name = "cyclegan" if options.semantic_classifier == SemanticClassifier.none else "cyclesem"
    else:
        source_root = str(OmegaConf.select(cfg, "data.source.root", default="") or "")
        name = "oracle" if source_root.rstrip("/").endswith("gta5_as_cityscapes") else "baseline"
    if name not in ("cyclesem", "cyclegan"):
        return name
    return name + ("_warm" if options.warm_start is not None else "") + ("_unlabeled" if cfg.data.unlabeled_target else "")


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)  # an enum member (the structured config's) as its value


def study_options(cfg: DictConfig, options: MethodOptions | None = None) -> dict[str, Any]:
    """The settings the study's open questions vary, written out even where they are the default, so that
    ``python -m cyclesem.report --group-by`` reads them from the record (None: the data config has no such key,
    e.g. pavement_share for gta5_cityscapes)."""
    options = options or MethodOptions.from_mapping(cfg.model)
    share = OmegaConf.select(cfg, "data.prepare.pavement_share", default=None)
    shift = OmegaConf.select(cfg, "data.prepare.palette_shift", default=None)
    return {
        "seg_source_rule": options.loss.seg_source_rule.value,
        "seg_source": float(options.loss.seg_source),
        "seg_source_end": float(options.loss.seg_source_end),
        "class_weights": options.class_weights.value,
        "source_filter": _plain(OmegaConf.select(cfg, "data.source_filter", default=None)),
        "pavement_share": None if share is None else float(share),
        "palette_shift": None if shift is None else float(shift),
    }


def pair_summary(cfg: DictConfig) -> dict[str, Any] | None:
    """Which synthetic pair a run trained and was scored on: its folder name, VERSION, pavement share, palette shift
    and rendering digest (cyclesem/data/synthetic/pair.py); None for data that is not the synthetic pair."""
    prepare = OmegaConf.select(cfg, "data.prepare", default=None)
    if prepare is None or not str(prepare.get("_target_", "")).endswith("ensure_synthetic_pair"):
        return None
    try:
        share, shift = float(prepare.get("pavement_share", 0.0)), float(prepare.get("palette_shift", 1.0))
        return {"name": Path(str(prepare.root)).name, "version": PAIR_VERSION, "pavement_share": share,
                "palette_shift": shift, "rendering": rendering_digest(shift)}
    except (ValueError, TypeError, OmegaConfBaseException):  # a value out of range: validate names it
        return None


def config_summary(cfg: DictConfig) -> dict[str, Any]:
    options = MethodOptions.from_mapping(cfg.model)
    return {
        "method": method_of(cfg),
        "data": _choice("data"),
        "real_frac": float(cfg.data.real_frac),
        "num_labeled": int(cfg.data.num_labeled),
        "unlabeled_target": bool(cfg.data.unlabeled_target),
        "semantic_classifier": options.semantic_classifier.value,
        "class_weights": options.class_weights.value,
        "options": study_options(cfg, options),  # read by the report's --group-by (cyclesem/report/jobs.py)
        "pair": pair_summary(cfg),
        "sweep_name": cfg.get("sweep_name"),
        "config": OmegaConf.to_container(cfg, resolve=False, enum_to_str=True),
    }


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment_record(seed: int) -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return {"seed": int(seed), "versions": versions, "git_commit": git_commit(), "machine": machine_record()}


def portable_path(path: str | os.PathLike, run_dir: str | os.PathLike | None = None) -> str:
    """A path as a record stores it, so that no record names a machine's folders: relative to the run directory
    when inside it (a checkpoint), else to the repository (the synthetic pair under data/, a study folder), else
    to the environment variable that names its dataset ($CITYSCAPES_ROOT/val), else only its last three parts
    (.../synthetic_pavement0.3/cityscapes/val: the dataset's folders and the split). A relative path is kept:
    it is relative to the directory the command ran in, the repository for every documented command."""
    if not os.path.isabs(path):
        return Path(path).as_posix()
    path = Path(os.path.normpath(path))
    for base in ([Path(os.path.normpath(run_dir))] if run_dir is not None else []) + [REPOSITORY]:
        if path.is_relative_to(base):
            return path.relative_to(base).as_posix()
    for variable in DATA_ROOT_VARIABLES:
        root = os.environ.get(variable)
        if root and os.path.isabs(root) and path.is_relative_to(os.path.normpath(root)):
            return Path(f"${variable}", path.relative_to(os.path.normpath(root))).as_posix()
    return Path("...", *path.parts[-3:]).as_posix()


def portable_override(override: str) -> str:
    """``key=/an/absolute/path`` as ``key=<portable_path>``; any other override as it is."""
    key, sep, value = override.partition("=")
    return f"{key}={portable_path(value)}" if sep and os.path.isabs(value) else override


def write_metrics(output_dir: Path, record: dict[str, Any], filename: str = "metrics.json") -> Path:
    """Write <output_dir>/<filename> atomically (a reader never sees half a file)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / filename
    tmp = path.with_suffix(f".json.tmp{os.getpid()}")
    try:
        tmp.write_text(json.dumps(record, indent=2, default=str))
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OSError(err.errno, f"cannot write {path}: {err.strerror or err}") from err
    return path
