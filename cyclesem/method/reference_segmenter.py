"""The FCN-score's reference segmenter F_ref: built once, cached on disk, with its anchors.

Two ways to get one (``reference.*``, conf/reference/<data>.yaml):

- trained (``train_set`` given: the synthetic pair, Cityscapes): a segmenter fitted on every target train image for
  a fixed budget of batches, cached in ``<cache_dir>/<key>/`` (``segmenter.pt`` + ``reference.json``). The key
  hashes what the reference *is*: the data it learns from — the synthetic pair's VERSION and render parameters (its
  ``manifest.json``), or for real data without a manifest the names of the train images (not their folder: the
  same key on every machine) — and the reference's own config (segmenter, optimizer, budget, batch size, class
  weights, seed, training transform).
  The same inputs reuse the cached file; any change gives another key, so another directory, and a new training.
- loaded (``checkpoint`` given, e.g. GTA5 → Cityscapes): the weights of a segmenter the user trained on the
  target train split (a state_dict file or a cyclesem checkpoint, keys under ``prefix``); nothing is trained, and
  ``<cache_dir>/<key>/reference.json`` (the key hashes the checkpoint's bytes) holds its anchors.

Anchors are measured the first time a paired set is scored and added to reference.json, one entry per set of
scenes and image size (``data.paired.limit=200`` and ``=64`` each get theirs, without retraining): the floor is
F_ref's mIoU on the raw source images, the ceiling on the paired renders (absent without them), both against the
source labels.

Files are written atomically (temporary file + ``os.replace``) under a file lock, reference.json last: a
directory without it is an interrupted build and is rebuilt. A reference.json or segmenter.pt that cannot be read
or was written for other inputs is **not** retrained over: it raises `ReferenceCacheError` naming the file (delete
the directory to rebuild it), since a silent 10-minute retraining would hide whatever damaged the cache.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock
from hydra.utils import instantiate
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torch import nn
from torch.utils.data import DataLoader, Dataset

from cyclesem.data.image_io import DatasetError
from cyclesem.data.labels import NUM_CLASSES
from cyclesem.data.paired import PairedImages
from cyclesem.data.resumable import EpochSampler, SeededSamples
from cyclesem.method.cache_files import (
    atomic_write,
    command_line,
    machine_record,
    plain,
    read_record,
    write_json,
)
from cyclesem.method.losses import class_weights_from_counts
from cyclesem.method.metrics import SegmentationMetrics
from cyclesem.method.pretrain import pretrain_classifier
from cyclesem.method.rng import rng_preserved
from cyclesem.method.translation_score import TranslationReference
from cyclesem.models.segmenter import WeightsFileError, load_weights

RECORD_FILE, WEIGHTS_FILE = "reference.json", "segmenter.pt"
# what a reference is, by how it is obtained (the other reference.* keys say where things are or what is reported)
_TRAINED_KEYS = ("segmenter", "optimizer", "batches", "batch_size", "class_weights", "seed", "train_set")
_LOADED_KEYS = ("segmenter", "prefix")


class ReferenceCacheError(ValueError):
    """A cached reference file that cannot be read or does not match the inputs its directory is keyed by."""


@dataclass
class CachedReference:
    """One cache entry: the frozen segmenter and its reference.json record."""

    directory: Path
    key: str
    segmenter: nn.Module
    record: dict[str, Any]


# ----------------------------------------------------------------- the key
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def key_inputs(spec: Mapping[str, Any]) -> dict[str, Any]:
    """What the cache key hashes: the data the reference learned from and its own config, no paths."""
    if spec.get("checkpoint") is not None:
        checkpoint = Path(spec["checkpoint"]).expanduser()
        if not checkpoint.is_file():
            raise FileNotFoundError(f"reference.checkpoint={checkpoint} does not exist: expected a segmenter trained "
                                    "on the target train split (a state_dict file or a cyclesem checkpoint)")
        own = {k: spec.get(k, "") for k in _LOADED_KEYS}
        return plain({"checkpoint_sha256": _sha256(checkpoint), "reference": own})
    own = {k: spec[k] for k in _TRAINED_KEYS}
    own["train_set"] = {k: v for k, v in own["train_set"].items() if k != "root"}
    own["class_weights"] = str(getattr(own["class_weights"], "value", own["class_weights"]))
    if spec.get("pair_manifest") is None:  # real data: the train images, by name
        return plain({"train_images": image_names(_train_set(spec)), "reference": own})
    pair = pair_identity(spec["pair_manifest"], "reference.pair_manifest", ReferenceCacheError)
    return plain({"pair": pair, "reference": own})


def pair_identity(manifest: str | Path, key: str, error: type[Exception]) -> dict[str, Any]:
    """What a cache keyed by the synthetic pair hashes of it: its VERSION and render parameters, from the
    ``manifest.json`` the config `key` names; `error` (naming `key`) when that is not a pair's manifest."""
    manifest_path = Path(manifest).expanduser()
    try:
        content = json.loads(manifest_path.read_text())
        return {"version": content["version"], "params": content["params"]}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise error(f"{key}={manifest_path} is not a synthetic pair's manifest ({type(err).__name__}: {err}): "
                    "render the pair first") from None


def image_names(dataset: Dataset) -> dict[str, Any]:
    """What a cache keyed by a real dataset hashes of it: how many images and their sorted names."""
    names = sorted(dataset.names)
    return {"count": len(names), "names_sha256": hashlib.sha256("\n".join(names).encode()).hexdigest()}


def _train_set(spec: Mapping[str, Any]) -> Dataset:
    """The images the reference trains on (``reference.train_set``, a dataset factory)."""
    if spec["train_set"].get("root") is None:
        raise DatasetError("reference.train_set.root is not set: expected the target dataset's folder (set "
                           "CITYSCAPES_ROOT or data.target_train.root)")
    return instantiate(spec["train_set"])()


def reference_key(inputs: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


# ----------------------------------------------------------------- files
def _write_record(directory: Path, record: dict[str, Any]) -> None:
    write_json(directory / RECORD_FILE, record)


def _read_record(directory: Path, key: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
    """reference.json of a complete entry; None when the directory holds none (never built, or interrupted)."""
    path = directory / RECORD_FILE
    record = read_record(path, "reference", ReferenceCacheError)
    if record is not None and (record.get("key") != key or record.get("key_inputs") != inputs):
        raise ReferenceCacheError(f"cached reference {path} was written for other inputs than its key {key} "
                                  f"names: delete {directory} to rebuild it")
    return record


def _load_cached_weights(segmenter: nn.Module, directory: Path) -> None:
    path = directory / WEIGHTS_FILE
    try:
        load_weights(segmenter, path, head_prefixes=())  # strict: every tensor, the head included
    except (FileNotFoundError, WeightsFileError) as err:
        raise ReferenceCacheError(f"cached reference {path} cannot be loaded into reference.segmenter "
                                  f"({err}): delete {directory} to rebuild it") from None


# ----------------------------------------------------------------- training and scoring
@torch.no_grad()
def segmentation_scores(segmenter: nn.Module, dataset: Dataset, image_key: str, device: torch.device,
                        batch_size: int = 32) -> dict[str, Any]:
    """`SegmentationMetrics` of ``segmenter(item[image_key])`` against ``item["label"]`` over `dataset`."""
    segmenter.to(device).eval()
    metrics = SegmentationMetrics(NUM_CLASSES).to(device)
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        metrics.update(segmenter(batch[image_key].to(device)), batch["label"].to(device))
    return metrics.compute()


def _class_counts(dataset: Dataset) -> np.ndarray:
    counts = np.zeros(NUM_CLASSES, dtype=np.int64)
    for index in range(len(dataset)):
        train_ids = dataset.read_train_ids(index)
        counts += np.bincount(train_ids[train_ids < NUM_CLASSES].ravel(), minlength=NUM_CLASSES)
    return counts


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_reference(spec: Mapping[str, Any], device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """Fit ``spec["segmenter"]`` on every image of ``spec["train_set"]`` for ``spec["batches"]`` batches (one seeded
    stream, `pretrain_classifier`), then score it on ``spec["val_set"]``. Seeded with ``spec["seed"]``: the
    same spec on the same device and thread count gives the same weights."""
    started = time.time()
    _seed_all(spec["seed"])
    segmenter = instantiate(spec["segmenter"])
    train_set = _train_set(spec)
    class_weight = class_weights_from_counts(_class_counts(train_set), spec["class_weights"])
    batch_size, batches = spec["batch_size"], spec["batches"]
    workers = spec.get("num_workers", 0)  # full-size Cityscapes frames: one process decodes ~14 a second
    loader = DataLoader(SeededSamples(train_set), batch_size=batch_size, num_workers=workers,
                        persistent_workers=workers > 0,
                        sampler=EpochSampler(len(train_set), batches * batch_size, spec["seed"]))
    losses = pretrain_classifier(segmenter, loader, instantiate(spec["optimizer"]), epochs=1,
                                 class_weight=class_weight, accelerator=device.type,
                                 devices=[device.index] if device.index is not None else 1, progress=True)
    wall_time = time.time() - started
    training = {"command": command_line(), "wall_time_s": round(wall_time, 1), "machine": machine_record(),
                "device": str(device), "threads": torch.get_num_threads(), "train_images": len(train_set),
                "batches": batches, "mean_loss": round(losses[0], 4) if losses else None,
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if spec.get("val_set") is not None:  # reported, never selected on
        val_set = instantiate(spec["val_set"])()
        scores = segmentation_scores(segmenter, val_set, "image", device)
        training.update(val_images=len(val_set), val_mIoU=round(scores["mIoU"], 4),
                        val_fwIoU=round(scores["fwIoU"], 4))
    return segmenter, training


def ensure_reference(spec: Mapping[str, Any], device: torch.device, *, train: bool = True) -> CachedReference | None:
    """The cache entry for `spec` (a resolved ``reference.*`` node), building it when it is missing; None when it
    is missing and ``train`` is false (evaluation never trains a reference)."""
    inputs = key_inputs(spec)
    key = reference_key(inputs)
    cache_dir = Path(spec["cache_dir"]).expanduser().absolute()
    directory = cache_dir / key
    record = _read_record(directory, key, inputs)
    trained = loaded = None
    if spec.get("checkpoint") is not None:  # read (weights-only) before a cache entry is made for the file
        loaded = instantiate(spec["segmenter"])
        load_weights(loaded, spec["checkpoint"], prefix=spec.get("prefix", ""), head_prefixes=())
    if record is None:
        if not train and spec.get("checkpoint") is None:
            return None
        directory.mkdir(parents=True, exist_ok=True)
        with FileLock(str(cache_dir / f"{key}.lock")):
            record = _read_record(directory, key, inputs)  # another process may have built it while we waited
            if record is None:
                record = {"key": key, "key_inputs": inputs, "anchors": {}}
                if spec.get("checkpoint") is not None:
                    record["checkpoint"] = str(Path(spec["checkpoint"]).expanduser().absolute())
                else:
                    rank_zero_info(f"training the reference segmenter {key} ({spec['batches']} batches of "
                                   f"{spec['batch_size']}) into {directory}")
                    trained, record["training"] = train_reference(spec, device)
                    state = trained.state_dict()
                    atomic_write(directory / WEIGHTS_FILE, lambda f: torch.save(state, f))
                _write_record(directory, record)  # last: marks the entry complete
    segmenter = trained if trained is not None else loaded
    if segmenter is None:
        segmenter = instantiate(spec["segmenter"])
        _load_cached_weights(segmenter, directory)
    segmenter.requires_grad_(False).eval()
    return CachedReference(directory, key, segmenter, record)


def anchor_id(paired_set: PairedImages) -> tuple[str, dict[str, Any]]:
    """Which images a paired set scores: its scene names, image size (limit and resize change them) and whether it
    has paired renders (a ceiling)."""
    first = paired_set[0]
    names = [Path(name).stem for name in paired_set.file_names]
    description = {"images": len(names), "first": names[0], "last": names[-1],
                   "image_size": list(first["source_image"].shape[-2:]), "renders": "paired_image" in first}
    digest = hashlib.sha256(json.dumps([names, description]).encode()).hexdigest()[:12]
    return digest, description


def ensure_anchors(entry: CachedReference, paired_set: PairedImages, device: torch.device,
                   batch_size: int = 32) -> dict[str, Any]:
    """The floor and ceiling of `entry` on `paired_set`, measured once and kept in its reference.json."""
    anchor, description = anchor_id(paired_set)
    if anchor in entry.record["anchors"]:
        return entry.record["anchors"][anchor]
    with FileLock(str(entry.directory.parent / f"{entry.key}.lock")):
        record = _read_record(entry.directory, entry.key, entry.record["key_inputs"])
        if anchor not in record["anchors"]:
            floor = segmentation_scores(entry.segmenter, paired_set, "source_image", device, batch_size)
            measured = {**description, "floor": floor["mIoU"], "floor_fwIoU": floor["fwIoU"]}
            if description["renders"]:
                ceiling = segmentation_scores(entry.segmenter, paired_set, "paired_image", device, batch_size)
                measured.update(ceiling=ceiling["mIoU"], ceiling_fwIoU=ceiling["fwIoU"])
            record["anchors"][anchor] = measured
            _write_record(entry.directory, record)
        entry.record = record
    return record["anchors"][anchor]


def translation_reference(spec: Mapping[str, Any] | None, paired_set: PairedImages | None, device: torch.device, *,
                          batch_size: int = 32, train: bool = True) -> TranslationReference | None:
    """The frozen reference with its anchors on `paired_set`, for `CycleSemModule`; None when there is nothing to
    score with (no ``reference`` config, neither ``checkpoint`` nor ``train_set`` in it, no paired set) or, with
    ``train=False``, when it is not cached yet. The process's random states are left as they were: whether the
    reference was trained, read from the cache or not used at all changes nothing in the run that asks for it."""
    if spec is None or paired_set is None or (spec.get("checkpoint") is None and spec.get("train_set") is None):
        return None
    if "label" not in paired_set[0]:
        raise ValueError("the translation score needs the source labels: give data.paired a label_dir")
    with rng_preserved():  # training, a network's initialisation and every DataLoader draw from them
        entry = ensure_reference(spec, device, train=train)
        if entry is None:
            return None
        anchors = ensure_anchors(entry, paired_set, device, batch_size)
    return TranslationReference(entry.segmenter, anchors["floor"], anchors.get("ceiling"), key=entry.key)
