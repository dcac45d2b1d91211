"""Training the warm-up CycleGAN (`warmup.py` caches it): `CycleSemModule`'s CycleGAN trained alone.

The warm-up trains the run's CycleGAN (``model.gen_*``, ``disc_*``, ``optimizer_g/d``, ``loss.gan/cycle/identity``,
``gan_mode``, ``pool_size``, ``disc_noise``) with the module's own generator and discriminator steps — GAN + cycle +
identity, no segmenter, no semantic term, no label: every source and every target train image is read without its
label — for ``warmup.batches`` batches at constant learning rates. Every ``warmup.eval_every`` batches (and before
the first and after the last) it scores G_S→T on the paired set with the translation score (`translation_score.py`,
the reference of `reference_segmenter.py`) into a curve, so one can see where the score stops rising, and translates
a few fixed source images (``sample_images``) so one can see why; with
``warmup.patience`` it stops once the score has not improved for that many evaluations. The weights returned are
the last ones, never the best-scoring: the score's reference was trained on labelled target images, and picking
weights by it would let those labels in.

A warm-up outlasts a session (20 000 batches are hours on a CPU), so a build resumes: after every evaluation it hands
out its state (the four networks, both optimizers, the image pools, the instance noise and global random states, the
curve and the patience counters; tensors on the CPU and plain values, ``weights_only`` loadable) and a build given
that state continues from it — the data streams skip the batches already trained, so the resumed warm-up trains the
same batches with the same random draws as one that never stopped and ends with the same weights on the same
device and thread count.

``warmup.compile`` torch.compiles the four networks (``model.compile``'s path in the module): it says how fast, not
what (compiled kernels round differently, so bit-identical rebuilds need the same setting as well).
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.utilities import CombinedLoader
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torch import nn
from torch.utils.data import DataLoader, Dataset

from cyclesem.data.resumable import EpochSampler, SeededSamples
from cyclesem.method.cache_files import command_line, machine_record
from cyclesem.method.module import CycleSemModule
from cyclesem.method.nonfinite import BufferSnapshot
from cyclesem.method.options import SemanticClassifier
from cyclesem.method.translation_eval import translation_scores
from cyclesem.method.translation_score import TranslationReference

NETWORKS = ("gen_s2t", "gen_t2s", "disc_s", "disc_t")
CURVE_COLUMNS = ("batch", "translation_score", "translation_gain", "translation_l1", "g_gan", "g_cycle",
                 "g_identity", "d_target", "d_source", "wall_time_s")


def networks_of(module: CycleSemModule) -> dict[str, nn.Module]:
    """The module's CycleGAN networks by their config (and state dict) names."""
    return {"gen_s2t": module.gen_s2t, "gen_t2s": module.gen_t2s, "disc_s": module.disc_s, "disc_t": module.disc_t}



def train_sets(spec: Mapping[str, Any]) -> tuple[Dataset, Dataset]:
    """Every source and every target train image, read without labels (the warm-up uses none)."""
    return instantiate(spec["source"])(labeled=False), instantiate(spec["target_train"])(labeled=False)



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
                 sample_images: torch.Tensor | None = None,
                 on_translations: Callable[[int, torch.Tensor], None] | None = None, **options: Any) -> None:
        # the module wants a segmenter and its optimizer factory: an identity stands in, never called or stepped
        super().__init__(segmenter=nn.Identity(), optimizer_seg=optimizer_g, gen_s2t=gen_s2t, gen_t2s=gen_t2s,
                         disc_s=disc_s, disc_t=disc_t, optimizer_g=optimizer_g, optimizer_d=optimizer_d,
                         reference=reference, semantic_classifier=SemanticClassifier.none, **options)
        self.paired_loader, self.batches, self.eval_every, self.patience = paired_loader, batches, eval_every, patience
        self.on_point, self.on_checkpoint, self.resume = on_point, on_checkpoint, resume
        self.sample_images, self.on_translations = sample_images, on_translations  # (n, 3, H, W) in [-1, 1]
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

    @torch.no_grad()
    def translate_samples(self) -> torch.Tensor:
        """G_S→T(`sample_images`) (n, 3, H, W) on the CPU, in eval mode and eager (a compiled generator would compile
        again for this batch size); draws no random number, so the training that follows is unchanged."""
        self.eval()
        with torch.compiler.set_stance("force_eager"):
            return self.gen_s2t(self.sample_images.to(self.device)).cpu()  # sizes as eval_step translates them

    def evaluate(self) -> None:
        """One point of the curve; asks the Trainer to stop after `patience` evaluations without a better score."""
        scores = translation_scores(self, self.paired_loader, self.device) if self.paired_loader is not None else {}
        if self.sample_images is not None and self.on_translations is not None:
            self.on_translations(self.train_batches, self.translate_samples())
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



def train_warmup(spec: Mapping[str, Any], cyclegan: Mapping[str, Any], reference: TranslationReference | None,
                 paired: Dataset | None, device: torch.device, *, eval_batch_size: int = 32,
                 resume: dict[str, Any] | None = None,
                 on_point: Callable[[list[dict[str, Any]]], None] | None = None,
                 on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
                 sample_images: torch.Tensor | None = None,
                 on_translations: Callable[[int, torch.Tensor], None] | None = None
                 ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train the CycleGAN of `cyclegan` on ``spec``'s unlabelled train sets for ``spec["batches"]`` batches (fewer
    with ``patience``), scoring it on `paired` with `reference` (no score without them); `on_point` gets the curve
    after every evaluation, `on_checkpoint` the state a resumed build continues from (`CycleGANWarmup.resume_state`)
    after every evaluation but the last, and `resume` is such a state to continue from; `on_translations` gets
    G_S→T(`sample_images`) at every evaluation (`CycleGANWarmup`). Seeded with
    ``spec["seed"]``: the same inputs on the same device and thread count give the same weights, resumed or not.
    Returns the four networks' state dict (the module's keys, on the CPU) and the record's training fields."""
    started = time.time()
    L.seed_everything(spec["seed"], verbose=False)
    networks = {name: instantiate(cyclegan[name]) for name in NETWORKS}
    source_set, target_set = train_sets(spec)
    batch_size, batches = spec["batch_size"], spec["batches"]
    done = 0 if resume is None else int(resume["train_batches"])
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

    scored = reference is not None and paired is not None
    paired_loader = DataLoader(paired, batch_size=eval_batch_size, shuffle=False) if scored else None
    module = CycleGANWarmup(**networks, optimizer_g=instantiate(cyclegan["optimizer_g"]),
                            optimizer_d=instantiate(cyclegan["optimizer_d"]), reference=reference,
                            paired_loader=paired_loader, batches=batches, eval_every=spec["eval_every"],
                            patience=spec.get("patience"), loss=dict(cyclegan["loss"]), gan_mode=cyclegan["gan_mode"],
                            pool_size=cyclegan["pool_size"], disc_noise=cyclegan["disc_noise"],
                            on_point=on_point, on_checkpoint=on_checkpoint, resume=resume,
                            sample_images=sample_images, on_translations=on_translations,
                            compile=bool(spec.get("compile", False)))
    trainer = L.Trainer(max_epochs=1, accelerator=device.type, devices=[device.index] if device.index is not None else 1,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)
    with warnings.catch_warnings():  # the module has CycleSemModule's validation_step; the warm-up scores itself
        warnings.filterwarnings("ignore", message=".*validation_step.* but have no `val_dataloader`")
        trainer.fit(module, train_dataloaders=loader)
    state = {f"{name}.{k}": v.detach().cpu() for name, network in networks_of(module).items()
             for k, v in network.state_dict().items()}
    training = {"command": command_line(), "machine": machine_record(), "device": str(device),
                "threads": torch.get_num_threads(),
                "compile": bool(spec.get("compile", False)),
                "source_images": len(source_set), "target_images": len(target_set),
                "paired_images": len(paired) if scored else 0,
                "wall_time_s": round(time.time() - started, 1), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "resumed_at_batch": done or None}  # wall_time_s: this build's; the curve's: every build's
    return state, {"batches_trained": module.train_batches, "stopped_early": module.stopped_early,
                   "curve": module.curve, "training": training}
