"""The warm-up CycleGAN's cache: `CycleSemModule`'s CycleGAN trained alone (`warmup_training.py`), once per pair and
seed, kept on disk and loaded by warm-started jobs.

At the study's budget (2400 batches) a CycleGAN is still in its blur-and-checkerboard phase; on a pair with a small
domain gap its output reads worse than the raw source images. The warm-up (`warmup_training.py`) trains the run's
CycleGAN without labels for ``warmup.batches`` batches and scores it into a translation curve; this module keys it,
builds it when missing and hands it to the jobs.

A job with ``model.warm_start`` (`warm_start`) loads the generators and discriminators and nothing else: its
optimizers start fresh (Adam's moments and the linear decay belong to the job's own budget; the warm-up runs at
constant rates, so its moments describe another schedule) and so do its image pools (they refill in
pool_size / batch_size batches).

Cached in ``<cache_dir>/<key>/``: ``cyclegan.pt`` (one plain state dict, the module's keys of the four networks:
``gen_s2t.*``, ``gen_t2s.*``, ``disc_s.*``, ``disc_t.*``; loads with ``torch.load(weights_only=True)``),
``warmup.json`` (key, key inputs, batches trained, whether it stopped early, the curve, the reference's anchors,
how and where it was built), ``curve.csv`` (the curve, rewritten at every evaluation while it trains) and
``translations.png`` (with a paired set: `SAMPLE_IMAGES` source images spread over it, G_S→T of them at every point
of the curve, one row each with its batch and score, and their perfect translations; rebuilt at every evaluation from
one strip per point in ``translations/``, which goes once the entry is complete). The key
hashes what the warm-up *is*: the pair (its manifest's version and render parameters; the names of the images
read, so a real dataset's too), the reference that scores the curve (its key), the CycleGAN config above, and the
warm-up's own seed, budget, batch size, training transforms (crop, flip), evaluation cadence and patience. Same
pattern as the reference segmenter: files written atomically under a file lock, warmup.json last (a directory
without it is an interrupted build), and a file that cannot be read or was written for other inputs raises
`WarmupCacheError` naming it, never silently trained over.

An interrupted build resumes: at every evaluation the build writes ``partial.pt`` (the state
`warmup_training.train_warmup` hands out, with the key) and the next build of the same key continues from the last
one, ending with the same weights on the same device and thread count. ``partial.pt`` is deleted once the entry is
complete. ``warmup.compile`` is not keyed (how fast, like the thread count; a build may resume compiled or not); the
record names it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock
from hydra.utils import instantiate
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from PIL import Image
from torch.utils.data import Dataset

from cyclesem.data.visualize import evenly_spaced, image_grid, labelled_rows, to_uint8_image
from cyclesem.method.cache_files import atomic_write, plain, read_record, write_json
from cyclesem.method.module import CycleSemModule
from cyclesem.method.reference_segmenter import (
    image_names,
    key_inputs,
    pair_identity,
    reference_key,
    translation_reference,
)
from cyclesem.method.rng import rng_preserved
from cyclesem.method.warmup_training import CURVE_COLUMNS, NETWORKS, networks_of, train_sets, train_warmup
from cyclesem.models.segmenter import WeightsFileError, load_weights

RECORD_FILE, WEIGHTS_FILE, CURVE_FILE, PARTIAL_FILE = "warmup.json", "cyclegan.pt", "curve.csv", "partial.pt"
TRANSLATIONS_FILE, STRIPS_DIR = "translations.png", "translations"
SAMPLE_IMAGES = 4  # paired source images translated at every evaluation (translations.png)
# the model.* keys the warm-up trains with (and a warm-started job must share, or it gets another warm-up)
CYCLEGAN_KEYS = (*NETWORKS, "optimizer_g", "optimizer_d", "gan_mode", "pool_size", "disc_noise")
LOSS_KEYS = ("gan", "cycle", "identity")
# warmup.* keys that say what it is (cache_dir, pair_manifest, num_workers and compile say where or how fast)
_OWN_KEYS = ("seed", "batches", "batch_size", "eval_every", "patience", "source", "target_train", "paired")


class WarmupCacheError(ValueError):
    """A cached warm-up file that cannot be read, does not match the inputs its directory is keyed by, or does not
    fit the networks of the run that loads it."""


@dataclass
class CachedWarmup:
    """One cache entry: its directory and warmup.json record (the weights stay on disk until `warm_start`)."""

    directory: Path
    record: dict[str, Any]

    @property
    def key(self) -> str:
        return self.record["key"]

    def summary(self) -> dict[str, Any]:
        """What a warm-started run's record says about its warm-up: key, batches, the last translation score."""
        last = self.record["curve"][-1] if self.record.get("curve") else {}
        return {"key": self.key, "batches": self.record["batches_trained"],
                "budget": self.record["key_inputs"]["warmup"]["batches"],
                "stopped_early": self.record["stopped_early"],
                **{k: last.get(k) for k in ("translation_score", "translation_gain", "translation_l1")},
                "reference": self.record.get("reference")}


def cyclegan_config(model: Mapping[str, Any]) -> dict[str, Any]:
    """The CycleGAN part of a resolved ``model.*`` config: what the warm-up trains and a warm-started job loads."""
    return plain({**{k: model[k] for k in CYCLEGAN_KEYS}, "loss": {k: model["loss"][k] for k in LOSS_KEYS}})


# ----------------------------------------------------------------- the key
def _without_paths(dataset: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A dataset config without where its files are (root, *_dir, split_file): which images it holds is keyed by
    the pair's manifest and their names."""
    if dataset is None:
        return None
    return {k: v for k, v in dataset.items() if k not in ("root", "split_file") and not k.endswith("_dir")}


def _scoring_reference(reference_spec: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The reference spec when it names a reference (trained or loaded), else None: no score in the curve."""
    if reference_spec is None or (reference_spec.get("checkpoint") is None and reference_spec.get("train_set") is None):
        return None
    return reference_spec


def warmup_inputs(spec: Mapping[str, Any], cyclegan: Mapping[str, Any],
                  reference_spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the cache key hashes (see the module docstring); no paths."""
    source_set, target_set = train_sets(spec)
    pair = (pair_identity(spec["pair_manifest"], "warmup.pair_manifest", WarmupCacheError)
            if spec.get("pair_manifest") is not None else None)
    reference = _scoring_reference(reference_spec)
    own = {k: spec.get(k) for k in _OWN_KEYS}
    for side in ("source", "target_train", "paired"):
        own[side] = _without_paths(own[side])
    return plain({"pair": pair, "images": {"source": image_names(source_set), "target": image_names(target_set)},
                  "reference": None if reference is None else reference_key(key_inputs(reference)),
                  "cyclegan": cyclegan, "warmup": own})


def warmup_key(inputs: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


# ----------------------------------------------------------------- the cache
def _read_partial(directory: Path, key: str) -> dict[str, Any] | None:
    """The state an interrupted build of `key` left in `directory` (None: none); one it cannot use is an error."""
    path = directory / PARTIAL_FILE
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - a truncated or foreign file: the message names it
        raise WarmupCacheError(f"interrupted warm-up state {path} cannot be read ({type(err).__name__}: "
                               f"{(str(err).splitlines() or [''])[0]}): "
                               f"delete it to train the warm-up from the start") from None
    if not isinstance(state, dict) or state.get("key") != key:
        raise WarmupCacheError(f"interrupted warm-up state {path} was not written for the warm-up {key}: "
                               f"delete it to train the warm-up from the start")
    return state


def _curve_csv(curve: list[dict[str, Any]]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CURVE_COLUMNS)
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in point.items()} for point in curve)
    return text.getvalue().encode()


def _read_record(directory: Path, key: str | None = None, inputs: Mapping[str, Any] | None = None
                 ) -> dict[str, Any] | None:
    """warmup.json of a complete entry; None when the directory holds none (never built, or interrupted). With
    `key` and `inputs`, an entry written for other inputs is an error."""
    path = directory / RECORD_FILE
    record = read_record(path, "warm-up", WarmupCacheError)
    if record is None:
        return None
    if not {"key", "key_inputs", "batches_trained", "curve"} <= record.keys():
        raise WarmupCacheError(f"cached warm-up {path} is not a warm-up record (no key, key_inputs, batches_trained "
                               f"or curve): delete {directory} to rebuild it")
    if key is not None and (record["key"] != key or record["key_inputs"] != inputs):
        raise WarmupCacheError(f"cached warm-up {path} was written for other inputs than its key {key} names: "
                               f"delete {directory} to rebuild it")
    return record


def ensure_warmup(spec: Mapping[str, Any], cyclegan: Mapping[str, Any], reference_spec: Mapping[str, Any] | None,
                  device: torch.device, *, train: bool = True, batch_size: int = 32) -> CachedWarmup | None:
    """The cache entry for `spec` (a resolved ``warmup.*`` node), `cyclegan` (`cyclegan_config`) and the reference
    that scores its curve (a resolved ``reference.*`` node, or None), training it on `device` when it is missing;
    None when it is missing and ``train`` is false. The process's random states are left as they were, so a job
    that builds its warm-up draws what a job that finds it cached draws."""
    with rng_preserved():
        inputs = warmup_inputs(spec, cyclegan, reference_spec)
        key = warmup_key(inputs)
        cache_dir = Path(spec["cache_dir"]).expanduser().absolute()
        directory = cache_dir / key
        record = _read_record(directory, key, inputs)
        if record is None and train:
            directory.mkdir(parents=True, exist_ok=True)
            with FileLock(str(cache_dir / f"{key}.lock")):
                record = _read_record(directory, key, inputs)  # another process may have built it while we waited
                if record is None:
                    record = _build(spec, cyclegan, _scoring_reference(reference_spec), directory, key, inputs,
                                    device, batch_size)
    return CachedWarmup(directory, record) if record is not None else None


def _build(spec: Mapping[str, Any], cyclegan: Mapping[str, Any], reference_spec: Mapping[str, Any] | None,
           directory: Path, key: str, inputs: dict[str, Any], device: torch.device, batch_size: int) -> dict[str, Any]:
    paired = instantiate(spec["paired"])() if reference_spec is not None and spec.get("paired") is not None else None
    reference = (translation_reference(reference_spec, paired, device, batch_size=batch_size, train=True)
                 if paired is not None else None)
    if spec.get("patience") is not None and reference is None:
        raise ValueError(f"warmup.patience={spec['patience']} stops on the translation score, which needs a reference "
                         "(reference.train_set or reference.checkpoint) and a paired set (warmup.paired)")
    rank_zero_info(f"training the warm-up CycleGAN {key} ({spec['batches']} batches) into {directory}")
    resume = _read_partial(directory, key)
    if resume is not None:
        rank_zero_info(f"warm-up {key}: resuming the interrupted build at batch {resume['train_batches']} of "
                       f"{spec['batches']} ({directory / PARTIAL_FILE})")

    def write_curve(curve: list[dict[str, Any]]) -> None:
        atomic_write(directory / CURVE_FILE, lambda f: f.write(_curve_csv(curve)))

    def write_partial(state: dict[str, Any]) -> None:
        atomic_write(directory / PARTIAL_FILE, lambda f: torch.save({"key": key, **state}, f))

    samples = _samples(paired) if paired is not None else None
    strips = directory / STRIPS_DIR

    def write_strip(batch: int, translated: torch.Tensor) -> None:
        strips.mkdir(exist_ok=True)
        _write_png(strips / f"batch_{batch:07d}.png", _strip(translated))

    def write_point(curve: list[dict[str, Any]]) -> None:
        write_curve(curve)
        if samples is not None:
            _write_png(directory / TRANSLATIONS_FILE, _translations_figure(curve, strips, *samples))

    state, trained = train_warmup(spec, cyclegan, reference, paired, device, eval_batch_size=batch_size,
                                  resume=resume, on_point=write_point, on_checkpoint=write_partial,
                                  sample_images=None if samples is None else samples[0],
                                  on_translations=None if samples is None else write_strip)
    atomic_write(directory / WEIGHTS_FILE, lambda f: torch.save(state, f))
    anchors = None if reference is None else {"key": reference.key, "floor": reference.floor,
                                              "ceiling": reference.ceiling}
    record = {"key": key, "key_inputs": inputs, **trained, "reference": anchors}
    write_json(directory / RECORD_FILE, record)  # last: marks the entry complete
    (directory / PARTIAL_FILE).unlink(missing_ok=True)
    shutil.rmtree(strips, ignore_errors=True)  # translations.png holds them all
    return record


# ----------------------------------------------------------------- the translations figure
def _samples(paired: Dataset) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`SAMPLE_IMAGES` source images spread evenly over the paired set (n, 3, H, W), and their perfect translations
    (the paired renders; None when the set has none)."""
    items = [paired[i] for i in evenly_spaced(SAMPLE_IMAGES, len(paired))]
    source = torch.stack([item["source_image"] for item in items])
    perfect = torch.stack([item["paired_image"] for item in items]) if all("paired_image" in i for i in items) else None
    return source, perfect


def _strip(images: torch.Tensor) -> np.ndarray:
    """A batch (n, 3, H, W) in [-1, 1] as one row of panels (H, n·(W + 1) − 1, 3) uint8."""
    return image_grid([[to_uint8_image(image) for image in images]])


def _write_png(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda f: Image.fromarray(array).save(f, format="PNG"))


def _translations_figure(curve: list[dict[str, Any]], strips: Path, source: torch.Tensor,
                         perfect: torch.Tensor | None) -> np.ndarray:
    """The source images, G_S→T of them at every point of the curve whose strip is on disk (labelled with its batch
    and score), and their perfect translations, one row each."""
    rows = [("source", _strip(source))]
    for point in curve:
        path = strips / f"batch_{point['batch']:07d}.png"
        if path.is_file():
            score = point.get("translation_score")
            label = f"batch {point['batch']}" + ("" if score is None else f"\nscore {score:.3f}")
            rows.append((label, np.asarray(Image.open(path).convert("RGB"))))
    if perfect is not None:
        rows.append(("perfect\ntranslation", _strip(perfect)))
    return labelled_rows(rows)


def read_warmup(directory: str | Path) -> CachedWarmup:
    """The warm-up entry in `directory` (``model.warm_start=<directory>``), whatever inputs it was built from."""
    directory = Path(directory).expanduser().absolute()
    record = _read_record(directory)
    if record is None:
        raise WarmupCacheError(f"model.warm_start={directory} holds no {RECORD_FILE}: expected a warm-up cache "
                               "entry (<warmup.cache_dir>/<key>/, built by `python -m cyclesem.warmup`)")
    return CachedWarmup(directory, record)


def warm_start(module: CycleSemModule, entry: CachedWarmup) -> None:
    """Load the warm-up's generators and discriminators into `module`: every tensor, same shapes (a run whose
    CycleGAN differs from the warm-up's is an error naming the file and the network)."""
    for name, network in networks_of(module).items():
        try:
            load_weights(network, entry.directory / WEIGHTS_FILE, prefix=f"{name}.", head_prefixes=())
        except (FileNotFoundError, WeightsFileError) as err:
            raise WarmupCacheError(f"warm-up {entry.directory / WEIGHTS_FILE} cannot be loaded into this run's "
                                   f"model.{name} ({err})") from None
