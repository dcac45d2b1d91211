"""The warm-up CycleGAN: `CycleSemModule`'s CycleGAN trained alone, once per pair and seed, cached on disk.

At the study's budget (2400 batches) a CycleGAN is still in its blur-and-checkerboard phase; on a pair with a small
domain gap its output reads worse than the raw source images. The warm-up trains the run's CycleGAN (``model.gen_*``,
``disc_*``, ``optimizer_g/d``, ``loss.gan/cycle/identity``, ``gan_mode``, ``pool_size``, ``disc_noise``) with the
module's own generator and discriminator steps — GAN + cycle + identity, no segmenter, no semantic term, no label:
every source and every target train image is read without its label — for ``warmup.batches`` batches at constant
learning rates. Every ``warmup.eval_every`` batches (and before the first and after the last) it scores G_S→T on
the paired set with the translation score (`translation_score.py`, the reference of `reference_segmenter.py`) into
a curve, so one can see where the score stops rising; with ``warmup.patience`` it stops once the score has not
improved for that many evaluations. The weights cached are the last ones, never the best-scoring: the score's
reference was trained on labelled target images, and picking weights by it would let those labels in.

A job with ``model.warm_start`` (`warm_start`) loads the generators and discriminators and nothing else: its
optimizers start fresh (Adam's moments and the linear decay belong to the job's own budget; the warm-up runs at
constant rates, so its moments describe another schedule) and so do its image pools (they refill in
pool_size / batch_size batches).

Cached in ``<cache_dir>/<key>/``: ``cyclegan.pt`` (one plain state dict, the module's keys of the four networks:
``gen_s2t.*``, ``gen_t2s.*``, ``disc_s.*``, ``disc_t.*``; loads with ``torch.load(weights_only=True)``),
``warmup.json`` (key, key inputs, batches trained, whether it stopped early, the curve, the reference's anchors,
how and where it was built) and ``curve.csv`` (the curve, rewritten at every evaluation while it trains). The key
hashes what the warm-up *is*: the pair (its manifest's version and render parameters; the names of the images
read, so a real dataset's too), the reference that scores the curve (its key), the CycleGAN config above, and the
warm-up's own seed, budget, batch size, training transforms (crop, flip), evaluation cadence and patience. Same
pattern as the reference segmenter: files written atomically under a file lock, warmup.json last (a directory
without it is an interrupted build), and a file that cannot be read or was written for other inputs raises
`WarmupCacheError` naming it, never silently trained over.

A warm-up outlasts a session (20 000 batches are hours on a CPU), so an interrupted build resumes: at every
evaluation it writes ``partial.pt`` (the four networks, both optimizers, the image pools, the instance noise and
global random states, the curve and the patience counters; tensors and plain values, ``weights_only`` loadable) and
the next build of the same key continues from the last one — the data streams skip the batches already trained, so
the resumed warm-up trains the same batches with the same random draws as one that never stopped and ends with the
same weights on the same device and thread count. ``partial.pt`` is deleted once the entry is complete.

``warmup.compile`` torch.compiles the four networks (``model.compile``'s path in the module): like the thread count
it says how fast, not what, so it is not keyed — a build may resume compiled or not — and the record names it
(compiled kernels round differently, so bit-identical rebuilds need the same setting as well).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from filelock import FileLock
from hydra.utils import instantiate
from lightning.pytorch.utilities import CombinedLoader
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torch import nn
from torch.utils.data import DataLoader, Dataset

from cyclesem.data.resumable import EpochSampler, SeededSamples
from cyclesem.method.cache_files import atomic_write, command_line, plain, read_record, write_json
from cyclesem.method.module import CycleSemModule
from cyclesem.method.nonfinite import BufferSnapshot
from cyclesem.method.options import SemanticClassifier
from cyclesem.method.reference_segmenter import (
    image_names,
    key_inputs,
    pair_identity,
    reference_key,
    translation_reference,
)
from cyclesem.method.rng import rng_preserved
from cyclesem.method.translation_eval import translation_scores
from cyclesem.method.translation_score import TranslationReference
from cyclesem.models.segmenter import WeightsFileError, load_weights

RECORD_FILE, WEIGHTS_FILE, CURVE_FILE, PARTIAL_FILE = "warmup.json", "cyclegan.pt", "curve.csv", "partial.pt"
NETWORKS = ("gen_s2t", "gen_t2s", "disc_s", "disc_t")
# the model.* keys the warm-up trains with (and a warm-started job must share, or it gets another warm-up)
CYCLEGAN_KEYS = (*NETWORKS, "optimizer_g", "optimizer_d", "gan_mode", "pool_size", "disc_noise")
LOSS_KEYS = ("gan", "cycle", "identity")
# warmup.* keys that say what it is (cache_dir, pair_manifest, num_workers and compile say where or how fast)
_OWN_KEYS = ("seed", "batches", "batch_size", "eval_every", "patience", "source", "target_train", "paired")
CURVE_COLUMNS = ("batch", "translation_score", "translation_gain", "translation_l1", "g_gan", "g_cycle",
                 "g_identity", "d_target", "d_source", "wall_time_s")


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


def networks_of(module: CycleSemModule) -> dict[str, nn.Module]:
    """The module's CycleGAN networks by their config (and state dict) names."""
    return {"gen_s2t": module.gen_s2t, "gen_t2s": module.gen_t2s, "disc_s": module.disc_s, "disc_t": module.disc_t}


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


def _train_sets(spec: Mapping[str, Any]) -> tuple[Dataset, Dataset]:
    """Every source and every target train image, read without labels (the warm-up uses none)."""
    return instantiate(spec["source"])(labeled=False), instantiate(spec["target_train"])(labeled=False)


def _scoring_reference(reference_spec: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The reference spec when it names a reference (trained or loaded), else None: no score in the curve."""
    if reference_spec is None or (reference_spec.get("checkpoint") is None and reference_spec.get("train_set") is None):
        return None
    return reference_spec


def warmup_inputs(spec: Mapping[str, Any], cyclegan: Mapping[str, Any],
                  reference_spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the cache key hashes (see the module docstring); no paths."""
    source_set, target_set = _train_sets(spec)
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


# ----------------------------------------------------------------- training
class CycleGANWarmup(CycleSemModule):
    """`CycleSemModule`'s generator and discriminator steps on unlabelled source and target batches, at constant
    learning rates; G_S→T scored on `paired_loader` before the first batch, every `eval_every` batches and after
    the last. `on_point` gets the curve after each evaluation (it writes curve.csv); `on_checkpoint` gets the state
    a resumed warm-up continues from (`resume_state`) after each evaluation but the last; `resume` is such a state."""

    def __init__(self, *, gen_s2t: nn.Module, gen_t2s: nn.Module, disc_s: nn.Module, disc_t: nn.Module,
                 optimizer_g: Callable[..., torch.optim.Optimizer], optimizer_d: Callable[..., torch.optim.Optimizer],
                 reference: TranslationReference | None, paired_loader: DataLoader | None, batches: int,
                 eval_every: int, patience: int | None = None,
                 on_point: Callable[[list[dict[str, Any]]], None] | None = None,
                 on_checkpoint: Callable[[dict[str, Any]], None] | None = None, resume: dict[str, Any] | None = None,
                 **options: Any) -> None:
        # the module wants a segmenter and its optimizer factory: an identity stands in, never called or stepped
        super().__init__(segmenter=nn.Identity(), optimizer_seg=optimizer_g, gen_s2t=gen_s2t, gen_t2s=gen_t2s,
                         disc_s=disc_s, disc_t=disc_t, optimizer_g=optimizer_g, optimizer_d=optimizer_d,
                         reference=reference, semantic_classifier=SemanticClassifier.none, **options)
        self.paired_loader, self.batches, self.eval_every, self.patience = paired_loader, batches, eval_every, patience
        self.on_point, self.on_checkpoint, self.resume = on_point, on_checkpoint, resume
        self.curve: list[dict[str, Any]] = []
        self.best_score, self.since_best, self.stopped_early = float("-inf"), 0, False
        self.started, self.elapsed = time.time(), 0.0  # elapsed: wall time of the builds before a resume
        if resume is not None:
            for name, network in networks_of(self).items():
                network.load_state_dict(resume["networks"][name])
            self.curve, self.train_batches = list(resume["curve"]), int(resume["train_batches"])
            self.best_score, self.since_best = float(resume["best_score"]), int(resume["since_best"])
            self.elapsed = float(resume["elapsed"])

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        # constant rates: the warm-up has no end to decay towards; a warm-started job decays over its own budget
        return [self.make_optimizer_g(itertools.chain(self.gen_s2t.parameters(), self.gen_t2s.parameters())),
                self.make_optimizer_d(itertools.chain(self.disc_s.parameters(), self.disc_t.parameters()))]

    def on_train_start(self) -> None:
        super().on_train_start()
        self.started = time.time() - self.elapsed
        if self.resume is None:
            self.evaluate()  # batch 0: the untrained generator, where the curve starts
            return
        for optimizer, state in zip(self.optimizers(), self.resume["optimizers"], strict=True):
            # the wrapped optimizer: LightningOptimizer.load_state_dict would replace only the wrapper's state
            getattr(optimizer, "optimizer", optimizer).load_state_dict(state)
        self.nonfinite.load_state_dict(self.resume["nonfinite"])

    def resume_state(self) -> dict[str, Any]:
        """What a resumed warm-up continues from, at the end of a batch (tensors on the CPU, plain values)."""
        return {"train_batches": self.train_batches, "curve": list(self.curve), "best_score": self.best_score,
                "since_best": self.since_best, "elapsed": time.time() - self.started,
                "networks": {name: {k: v.detach().cpu() for k, v in network.state_dict().items()}
                             for name, network in networks_of(self).items()},
                "optimizers": [_cpu(getattr(optimizer, "optimizer", optimizer).state_dict())
                               for optimizer in self.optimizers()],
                "nonfinite": self.nonfinite.state_dict(), "streams": self.streams.state_dict()}

    def training_step(self, batch: Mapping, batch_idx: int) -> None:
        if self.resume is not None:  # here, not in on_train_start: the loaders' iterators draw from the global RNG
            self.streams.load_state_dict(self.resume["streams"])  # pools, noise and global random states
            self.resume = None
        source_image, target_image = batch["source"]["image"], batch["target"]["image"]  # (B, 3, H, W) each
        opt_g, opt_d = self.optimizers()
        unlabelled = {"source": {"image": source_image, "label": None}, "target": {"image": target_image, "label": None}}
        logs: dict[str, torch.Tensor] = {}
        # as CycleSemModule.training_step: a skipped group's networks get back the buffers its forwards moved
        before = BufferSnapshot(self.gen_s2t, self.gen_t2s, self.disc_s, self.disc_t)
        fakes = self.translate(source_image, target_image)
        _, generators_stepped = self.generator_step(opt_g, fakes, unlabelled, logs)
        if not generators_stepped:
            before.restore(self.gen_s2t, self.gen_t2s)
        discriminators_stepped = self.discriminator_step(opt_d, fakes, source_image, target_image, logs)
        if not discriminators_stepped:
            before.restore(self.disc_s, self.disc_t)
        self.train_batches += 1
        self.nonfinite.count(not (generators_stepped and discriminators_stepped), logs, self.device)
        self.train_means.update(logs, len(source_image))  # the curve's loss means since the last evaluation

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.train_batches % self.eval_every == 0 or self.train_batches >= self.batches:
            self.evaluate()
            if self.on_checkpoint is not None and self.train_batches < self.batches and not self.stopped_early:
                self.on_checkpoint(self.resume_state())

    def evaluate(self) -> None:
        """One point of the curve; asks the Trainer to stop after `patience` evaluations without a better score."""
        scores = translation_scores(self, self.paired_loader, self.device) if self.paired_loader is not None else {}
        self.train()
        point = {"batch": self.train_batches, **scores, **self.train_means.compute_and_reset(),
                 "wall_time_s": round(time.time() - self.started, 1)}
        self.curve.append({k: point.get(k) for k in CURVE_COLUMNS})
        if self.on_point is not None:
            self.on_point(self.curve)
        rank_zero_info(f"warm-up batch {self.train_batches}/{self.batches}: "
                       + ", ".join(f"{k} {point[k]:.4f}" for k in ("translation_score", "translation_gain",
                                                                  "translation_l1", "g_cycle") if k in point)
                       + f" ({point['wall_time_s']:.0f} s)")
        score = scores.get("translation_score")
        if score is None:
            return
        if score > self.best_score:  # the untrained generator's score (batch 0) is the first best
            self.best_score, self.since_best = score, 0
        else:
            self.since_best += 1
        if self.patience is not None and self.since_best >= self.patience and self.train_batches < self.batches:
            rank_zero_info(f"warm-up: no better translation score in {self.patience} evaluations, stopping at batch "
                           f"{self.train_batches} (best {self.best_score:.4f})")
            self.stopped_early = True
            self.trainer.should_stop = True


def _cpu(value: Any) -> Any:
    """`value` with every tensor inside dicts and lists moved to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _cpu(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_cpu(v) for v in value)
    return value


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


def train_warmup(spec: Mapping[str, Any], cyclegan: Mapping[str, Any], reference: TranslationReference | None,
                 paired: Dataset | None, directory: Path, device: torch.device, *,
                 eval_batch_size: int = 32, key: str | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train the CycleGAN of `cyclegan` on ``spec``'s unlabelled train sets for ``spec["batches"]`` batches (fewer
    with ``patience``), scoring it on `paired` with `reference` (no score without them) and writing
    ``directory/curve.csv`` at every evaluation. Seeded with ``spec["seed"]``: the same inputs on the same device
    and thread count give the same weights. With `key`, it writes ``directory/partial.pt`` at every evaluation and
    continues from one an interrupted build of that key left. Returns the four networks' state dict (the module's keys, on the CPU)
    and the record's training fields."""
    started = time.time()
    L.seed_everything(spec["seed"], verbose=False)
    networks = {name: instantiate(cyclegan[name]) for name in NETWORKS}
    source_set, target_set = _train_sets(spec)
    batch_size, batches = spec["batch_size"], spec["batches"]
    resume = _read_partial(directory, key) if key is not None else None
    done = 0 if resume is None else int(resume["train_batches"])
    if resume is not None:
        rank_zero_info(f"warm-up {key}: resuming the interrupted build at batch {done} of {batches} "
                       f"({directory / PARTIAL_FILE})")
    # one seeded stream per side, as the datamodule draws them (seed + 0 for source, + 1 for target); a resumed
    # build skips the samples of the batches already trained
    samplers = {side: EpochSampler(len(dataset), batches * batch_size, spec["seed"] + salt)
                for salt, (side, dataset) in enumerate((("source", source_set), ("target", target_set)))}
    for sampler in samplers.values():
        sampler.resume_at(0, done * batch_size)
    loader = CombinedLoader({side: DataLoader(SeededSamples(dataset), batch_size=batch_size, drop_last=True,
                                              sampler=samplers[side], num_workers=spec.get("num_workers", 0))
                             for side, dataset in (("source", source_set), ("target", target_set))},
                            mode="min_size")

    def checkpoint(state: dict[str, Any]) -> None:
        atomic_write(directory / PARTIAL_FILE, lambda f: torch.save({"key": key, **state}, f))
    scored = reference is not None and paired is not None
    paired_loader = DataLoader(paired, batch_size=eval_batch_size, shuffle=False) if scored else None
    module = CycleGANWarmup(**networks, optimizer_g=instantiate(cyclegan["optimizer_g"]),
                            optimizer_d=instantiate(cyclegan["optimizer_d"]), reference=reference,
                            paired_loader=paired_loader, batches=batches, eval_every=spec["eval_every"],
                            patience=spec.get("patience"), loss=dict(cyclegan["loss"]), gan_mode=cyclegan["gan_mode"],
                            pool_size=cyclegan["pool_size"], disc_noise=cyclegan["disc_noise"],
                            on_point=lambda curve: atomic_write(directory / CURVE_FILE,
                                                                lambda f: f.write(_curve_csv(curve))),
                            on_checkpoint=checkpoint if key is not None else None, resume=resume,
                            compile=bool(spec.get("compile", False)))
    trainer = L.Trainer(max_epochs=1, accelerator=device.type, devices=[device.index] if device.index is not None else 1,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                        default_root_dir=str(directory))
    with warnings.catch_warnings():  # the module has CycleSemModule's validation_step; the warm-up scores itself
        warnings.filterwarnings("ignore", message=".*validation_step.* but have no `val_dataloader`")
        trainer.fit(module, train_dataloaders=loader)
    state = {f"{name}.{k}": v.detach().cpu() for name, network in networks_of(module).items()
             for k, v in network.state_dict().items()}
    training = {"command": command_line(), "device": str(device), "threads": torch.get_num_threads(),
                "compile": bool(spec.get("compile", False)),
                "source_images": len(source_set), "target_images": len(target_set),
                "paired_images": len(paired) if scored else 0,
                "wall_time_s": round(time.time() - started, 1), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "resumed_at_batch": done or None}  # wall_time_s: this build's; the curve's: every build's
    return state, {"batches_trained": module.train_batches, "stopped_early": module.stopped_early,
                   "curve": module.curve, "training": training}


# ----------------------------------------------------------------- the cache
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
    state, trained = train_warmup(spec, cyclegan, reference, paired, directory, device, eval_batch_size=batch_size,
                                  key=key)
    atomic_write(directory / WEIGHTS_FILE, lambda f: torch.save(state, f))
    anchors = None if reference is None else {"key": reference.key, "floor": reference.floor,
                                              "ceiling": reference.ceiling}
    record = {"key": key, "key_inputs": inputs, **trained, "reference": anchors}
    write_json(directory / RECORD_FILE, record)  # last: marks the entry complete
    (directory / PARTIAL_FILE).unlink(missing_ok=True)
    return record


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
