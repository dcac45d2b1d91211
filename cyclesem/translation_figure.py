"""The real-fraction study's image figure: the same source images translated into the target style by several
checkpoints side by side, next to the perfect translation (the paired render, when the data has one: the
synthetic pair) and a real target image.

    python -m cyclesem.translation_figure 'checkpoints={cyclesem: a.ckpt, cyclegan: b.ckpt}' output=docs/translations.png

One row per source image: ``num_samples`` of them spread evenly over the source split the checkpoints were
trained on (their stored data config; under ``source_filter=pavement`` without the scenes shot from the
pavement), each beside a target val image spread the same way. Columns: source | G_S→T(x_s) of each checkpoint,
titled with its key, in the order given | perfect translation | real target. Every checkpoint needs a
translator (cyclesem, cyclegan), and all of them must have been trained on the same data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from torch import nn

from cyclesem.data.image_io import DatasetError
from cyclesem.data.visualize import evenly_spaced, image_grid, save_png, to_uint8_image
from cyclesem.figure import dataset_from_node, eval_source_node, fit_panel
from cyclesem.method.module import CHECKPOINT_KEY
from cyclesem.runtime.checkpoint import CheckpointError, build_module, load_checkpoint, stored_data_config
from cyclesem.runtime.config import CONF_DIR
from cyclesem.runtime.device import resolve_device
from cyclesem.runtime.errors import exit_on_user_error
from cyclesem.runtime.inference import translate
from cyclesem.study.run_record import method_of

METHODS_WITH_A_TRANSLATOR = "cyclesem, cyclegan"
EXAMPLE = "'checkpoints={cyclesem: a.ckpt, cyclegan: b.ckpt}'"

# the keys of a stored data config that decide which images a row shows: every checkpoint must agree on them
SAME_IMAGES = (
    "source._target_", "source.root", "source.split_file", "source.transform.resize", "source_filter",
    "paired.source_dir", "paired.paired_dir", "target_val._target_", "target_val.root", "target_val.split",
    "target_val.transform.resize", "prepare.root", "prepare.seed", "prepare.height", "prepare.width",
    "prepare.pavement_share",
)


@dataclass
class Translator:
    """One column: a checkpoint's G_S→T and the data config it was trained with."""

    label: str
    path: Path
    gen_s2t: nn.Module
    data: dict[str, Any]


def checkpoint_paths(checkpoints: Any) -> dict[str, Path]:
    """``checkpoints`` (column label → checkpoint path) as a dict in the order given."""
    if not isinstance(checkpoints, Mapping) or not checkpoints:
        shown = OmegaConf.to_container(checkpoints) if OmegaConf.is_config(checkpoints) else checkpoints
        raise ValueError(f"checkpoints={shown!r}: expected a mapping of column label to checkpoint path, "
                         f"e.g. {EXAMPLE}")
    paths = {}
    for label, path in checkpoints.items():
        if not isinstance(path, str) or not path:
            raise ValueError(f"checkpoints.{label}={path!r}: expected a checkpoint path, e.g. {EXAMPLE}")
        paths[str(label)] = Path(path)
    return paths


def _method_name(checkpoint: dict[str, Any], data: dict[str, Any]) -> str:
    try:
        return method_of(OmegaConf.create({"model": checkpoint[CHECKPOINT_KEY]["model_config"], "data": data}))
    except OmegaConfBaseException:  # a config older than the method names
        return "generator-free"


def load_translator(label: str, path: Path) -> Translator:
    try:
        checkpoint = load_checkpoint(path)
    except CheckpointError as err:
        raise type(err)(f"checkpoints.{label}: {err}") from None  # the same class: UnsafeCheckpointError stays one
    data = stored_data_config(checkpoint)
    if not data:
        raise CheckpointError(f"checkpoints.{label}: checkpoint {path} stores no data config: cannot find the "
                              "source images it was trained on")
    module = build_module(checkpoint, path)
    if not module.has_gan:
        raise CheckpointError(
            f"checkpoints.{label}: checkpoint {path} is a {_method_name(checkpoint, data)} run, it has no "
            f"generator G_S→T to translate with: expected a method with a translator ({METHODS_WITH_A_TRANSLATOR})"
        )
    return Translator(label, path, module.gen_s2t, data)


def check_same_data(translators: list[Translator]) -> None:
    """Every column translates the same source images: the checkpoints' data configs agree on `SAME_IMAGES`."""
    first, *others = translators
    stored = {t.label: OmegaConf.create(t.data) for t in translators}
    for other in others:
        for key in SAME_IMAGES:
            mine, theirs = (OmegaConf.select(stored[t.label], key, default=None) for t in (first, other))
            if mine != theirs:
                raise ValueError(
                    f"checkpoints.{first.label} and checkpoints.{other.label} were trained on different data: "
                    f"data.{key} is {mine} in {first.path} but {theirs} in {other.path}: expected checkpoints "
                    "trained on one dataset (every column translates the same source images)"
                )


@torch.no_grad()
def make_translation_figure(cfg: DictConfig) -> np.ndarray:
    if cfg.num_samples < 1:
        raise ValueError(f"num_samples={cfg.num_samples}: expected at least 1")
    panel = tuple(cfg.panel_size)
    if len(panel) != 2 or min(panel) < 1:
        raise ValueError(f"panel_size={list(panel)}: expected [height, width] in pixels, e.g. [128, 256]")
    translators = [load_translator(label, path) for label, path in checkpoint_paths(cfg.checkpoints).items()]
    check_same_data(translators)
    data = translators[0].data
    datamodule = instantiate(OmegaConf.create({**data, "source": eval_source_node(data)}))
    source_set = datamodule.source_set()  # the training source split, at its resize, no crop or flip
    paired = data.get("paired") or {}
    paired_set = dataset_from_node(paired, limit=None, label_dir=None) if paired.get("paired_dir") else None
    paired_names = paired_set.file_names if paired_set is not None else []
    paired_index = {Path(name).stem: i for i, name in enumerate(paired_names)}  # source name → its paired render
    target_set = dataset_from_node(data["target_val"])
    source_indices = evenly_spaced(cfg.num_samples, len(source_set))
    target_indices = evenly_spaced(len(source_indices), len(target_set))
    device = resolve_device(cfg.device)
    generators = [translator.gen_s2t.to(device).eval() for translator in translators]
    rows = []
    for row, source_index in enumerate(source_indices):
        source = source_set[source_index]
        source_image = source["image"][None].to(device)  # (1, 3, h, w) in [-1, 1]
        panels = [to_uint8_image(source_image[0])]
        panels += [to_uint8_image(translate(gen_s2t, source_image)[0]) for gen_s2t in generators]  # G_S→T(x_s)
        if paired_set is not None:
            if source["name"] not in paired_index:
                raise DatasetError(f"source image {source['name']} has no paired render in {paired['paired_dir']}")
            panels.append(to_uint8_image(paired_set[paired_index[source["name"]]]["paired_image"]))
        panels.append(to_uint8_image(target_set[target_indices[row % len(target_indices)]]["image"]))
        rows.append([fit_panel(p, panel) for p in panels])
    perfect = ["perfect translation"] if paired_set is not None else []
    titles = ["source", *(t.label for t in translators), *perfect, "real target"]
    return image_grid(rows, titles)


def translation_figure(cfg: DictConfig) -> Path:
    figure = make_translation_figure(cfg)
    output = Path(cfg.output)
    save_png(figure, output)
    print(f"wrote {output} ({figure.shape[1]}x{figure.shape[0]})")
    return output


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="translation_figure")
def main(cfg: DictConfig) -> None:
    with exit_on_user_error():
        translation_figure(cfg)


if __name__ == "__main__":
    main()
