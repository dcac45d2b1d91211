"""CycleSemModule: a CycleGAN and a target-domain segmenter trained jointly.

Code (vs. paper):
    gen_s2t (G_S→T), gen_t2s (G_T→S)       ResNet generators
    disc_s (D_S), disc_t (D_T)             PatchGAN discriminators, each judging its own domain
    segmenter (F_T)                        target-domain segmenter
    source_image, source_label (X_S, Y_S); target_image, target_label (X_T, Y_T)
    source_as_target (X_SasT = G_S→T(X_S)); target_as_source (G_T→S(X_T))

Per training batch, three optimizer steps in this order (fakes computed once and reused):
    1. generators, discriminators frozen: GAN + cycle + identity + the two semantic terms
    2. discriminators on image-pool fakes (detached)
    3. segmenter on source_as_target (detached) and the labelled target images
Without generators (``model=baseline``) only step 3 runs, on raw source and target images.

The module receives objects and numbers: networks and optimizer factories, `MethodOptions` (``model.*``),
and what `cyclesem.train.build` derives from the data (class weights, the stylized-loss weight, the frozen
classifier's pre-trained weights, the translation score's reference segmenter). Image panels and per-class tables
are callbacks (``media_callbacks``).

Evaluation: loader 0 is the target val (or test) split, scored by F_T; loader 1, where the data has one, the
paired set: the translation error ``translation_l1`` against the paired renders and the FCN-score
``translation_score`` (a fixed reference segmenter's mIoU on G_S→T(x_s) against y_s, `translation_score.py`) with
``translation_gain`` between its floor and ceiling.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR
from torchmetrics import MeanMetric

from cyclesem.data.labels import CLASS_NAMES, NUM_CLASSES
from cyclesem.method.classifier_copies import check_pretrained, classifier_copy, ema_update, frozen
from cyclesem.method.losses import cycle_loss, discriminator_loss, gan_loss, identity_loss, semantic_loss
from cyclesem.method.metrics import EpochMeans, SegmentationMetrics
from cyclesem.method.nonfinite import BufferSnapshot, NonfiniteSteps
from cyclesem.method.options import FP16_PRECISIONS, MethodOptions, SemanticClassifier, check_training_device
from cyclesem.method.progress import training_progress
from cyclesem.method.streams import RankStreams, gather_from_ranks, state_of_rank
from cyclesem.method.translation_score import TranslationReference

CHECKPOINT_KEY = "cyclesem"  # the module's own entry in a Lightning checkpoint

# Every epoch-level value this module logs is reduced across ranks before it is logged (EpochMeans, the
# metrics' own sync), so Lightning's advice to log it with sync_dist=True does not apply.
warnings.filterwarnings("ignore", message=".*when logging on epoch level in distributed setting",
                        category=PossibleUserWarning)


@dataclass
class Fakes:
    source_as_target: Tensor  # (B, 3, H, W) G_S→T(x_s)
    target_as_source: Tensor  # (B, 3, H, W) G_T→S(x_t)
    source_rec: Tensor  # (B, 3, H, W) G_T→S(G_S→T(x_s))
    target_rec: Tensor  # (B, 3, H, W) G_S→T(G_T→S(x_t))


def translation_l1(source_as_target: Tensor, paired_image: Tensor) -> Tensor:
    """Per-image mean L1 between G_S→T(source) and the same scene rendered in target style, (B,)."""
    return (source_as_target - paired_image).abs().flatten(1).mean(1)


def _fixed_weight(weight: float, progress: float) -> float:
    return weight


def _side(batch: Mapping, name: str) -> tuple[Tensor | None, Tensor | None]:
    side = batch.get(name)
    return (side["image"], side["label"]) if side is not None else (None, None)


class CycleSemModule(L.LightningModule):
    GAN_KEYS = ("gen_s2t", "gen_t2s", "disc_s", "disc_t", "optimizer_g", "optimizer_d")
    # every value a training step may log as train/<key>_step (and, per epoch, train/<key>_epoch)
    TRAIN_LOG_KEYS = ("g_gan", "g_cycle", "g_identity", "g_sem_source", "g_sem_target", "g_total", "d_target",
                      "d_source", "seg_source", "seg_target", "nonfinite_steps")

    def __init__(
        self,
        *,
        segmenter: nn.Module,
        optimizer_seg: Callable[..., torch.optim.Optimizer],
        scheduler_seg: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        gen_s2t: nn.Module | None = None,
        gen_t2s: nn.Module | None = None,
        disc_s: nn.Module | None = None,
        disc_t: nn.Module | None = None,
        optimizer_g: Callable[..., torch.optim.Optimizer] | None = None,
        optimizer_d: Callable[..., torch.optim.Optimizer] | None = None,
        class_weight: Tensor | None = None,
        seg_source_weight: float | Callable[[float], float] | None = None,
        reference: TranslationReference | None = None,
        num_classes: int = NUM_CLASSES,
        **options: Any,
    ) -> None:
        """Networks and optimizer factories as objects; `options` are `MethodOptions` fields (``model.*``).

        From the data, computed by `cyclesem.train.build`: `class_weight` (C,) the CE class weights (None:
        unweighted), `seg_source_weight` the segmenter's stylized-source CE weight (None: loss.seg_source), a number
        or a function of the training progress (0 at the first batch, 1 at the last: ``seg_source_rule=anneal``), and
        `reference` the frozen segmenter + anchors of the translation score (None: no translation score). The
        reference is kept out of the module's submodules, so out of its checkpoints.
        """
        super().__init__()
        self.automatic_optimization = False
        self.options = opts = MethodOptions(**options)
        if not opts.style_transfer:  # the baseline: same segmenter and data stream, no CycleGAN
            gen_s2t = gen_t2s = disc_s = disc_t = optimizer_g = optimizer_d = None
        gan_nets = (gen_s2t, gen_t2s, disc_s, disc_t, optimizer_g, optimizer_d)
        if any(n is None for n in gan_nets) and not all(n is None for n in gan_nets):
            raise ValueError(f"give all of {', '.join(self.GAN_KEYS)}, or none (baseline)")
        self.has_gan = gen_s2t is not None
        self.segmenter, self.gen_s2t, self.gen_t2s, self.disc_s, self.disc_t = segmenter, gen_s2t, gen_t2s, disc_s, disc_t
        self.make_optimizer_seg, self.make_scheduler_seg = optimizer_seg, scheduler_seg
        self.make_optimizer_g, self.make_optimizer_d = optimizer_g, optimizer_d
        self.weights = opts.loss
        self.semantic_mode = opts.semantic_classifier
        # the classifier the generators' semantic terms go through, when it is not F_T itself
        copies = (SemanticClassifier.ema, SemanticClassifier.frozen)
        self.sem_net = classifier_copy(segmenter) if self.has_gan and self.semantic_mode in copies else None
        # true once sem_net holds trained weights (the frozen copy's pre-training is done; kept on resume)
        self.register_buffer("sem_net_ready", torch.tensor(False))
        self.use_class_weight = class_weight is not None
        self.register_buffer("class_weight", torch.ones(num_classes) if class_weight is None
                             else torch.as_tensor(class_weight, dtype=torch.float32).clone())
        if seg_source_weight is None:
            seg_source_weight = opts.loss.seg_source
        # progress → weight; a partial, not a lambda, so the module still pickles (ddp_spawn)
        self.stylized_weight: Callable[[float], float] = (
            seg_source_weight if callable(seg_source_weight) else partial(_fixed_weight, float(seg_source_weight)))
        self.seg_source_weight = self.stylized_weight(0.0)  # this batch's; training_step sets it
        # the image pools and the instance noise, from the run's seed; each DDP rank its own (setup)
        self.streams = RankStreams(opts.pool_size, torch.initial_seed())
        self.val_metrics, self.test_metrics = SegmentationMetrics(num_classes), SegmentationMetrics(num_classes)
        self.val_translation, self.test_translation = MeanMetric(), MeanMetric()
        # a plain attribute, not a submodule: not in the state_dict, never put in train mode, unseen by DDP
        self.reference = reference if self.has_gan else None
        self.val_translation_score = SegmentationMetrics(num_classes)
        self.test_translation_score = SegmentationMetrics(num_classes)
        self.train_means = EpochMeans(self.TRAIN_LOG_KEYS)
        self.nonfinite = NonfiniteSteps(opts.max_nonfinite_steps)
        # the training budget as every method counts it: one batch = one update of each group (global_step
        # counts optimizer steps instead: 3 per batch with a CycleGAN, 1 without)
        self.train_batches = self.segmenter_updates = 0
        # the run's resolved model, data and reference configs, stored in checkpoints so they are self-describing
        self.model_config: dict | None = None
        self.data_config: dict | None = None
        self.reference_config: dict | None = None
        # the warm-up CycleGAN the generators and discriminators started from (train.build), for the run's record
        self.warm_start_record: dict | None = None

    def setup(self, stage: str) -> None:
        if str(self.trainer.precision) in FP16_PRECISIONS:  # also for Trainers built without the Hydra config
            raise ValueError(f"CycleSemModule does not train with precision={self.trainer.precision}: use "
                             "32-true or bf16-mixed (fp16's loss scaling is not shared across the fused backward)")
        check_training_device(self.trainer.strategy.root_device.type)
        if self.trainer.global_rank != self.streams.rank:  # before a resume restores this rank's streams
            self.streams.for_rank(self.trainer.global_rank)

    def attached_trainer(self) -> L.Trainer | None:
        """The Trainer driving this module, or None (tests and the benchmark step it without one)."""
        try:
            return self.trainer
        except RuntimeError:  # Lightning's `trainer` property raises when none is attached
            return None

    def configure_model(self) -> None:
        nets = [n for n in (self.segmenter, self.gen_s2t, self.gen_t2s, self.disc_s, self.disc_t, self.sem_net)
                if n is not None]
        for net in nets:
            if self.options.channels_last:
                net.to(memory_format=torch.channels_last)
            if self.options.compile and not getattr(net, "_cyclesem_compiled", False):
                net.compile(mode=self.options.compile_mode)
                net._cyclesem_compiled = True

    def configure_optimizers(self):
        opt_seg = self.make_optimizer_seg(self.segmenter.parameters())
        sched_seg = [self.make_scheduler_seg(opt_seg)] if self.make_scheduler_seg is not None else []
        if not self.has_gan:
            return [opt_seg], sched_seg
        opt_g = self.make_optimizer_g(itertools.chain(self.gen_s2t.parameters(), self.gen_t2s.parameters()))
        opt_d = self.make_optimizer_d(itertools.chain(self.disc_s.parameters(), self.disc_t.parameters()))
        trainer = self.attached_trainer()
        max_epochs = max(trainer.max_epochs or 1, 1) if trainer is not None else 1
        start = int(self.options.decay_start_frac * max_epochs)

        def linear_decay(epoch: int) -> float:  # CycleGAN: constant, then linearly to 0
            return 1.0 - max(0, epoch + 1 - start) / float(max_epochs - start + 1)

        return [opt_g, opt_d, opt_seg], [LambdaLR(opt_g, linear_decay), LambdaLR(opt_d, linear_decay), *sched_seg]

    def on_train_start(self) -> None:
        if self.semantic_mode == SemanticClassifier.frozen and self.sem_net is not None:
            check_pretrained(bool(self.sem_net_ready), self.trainer.ckpt_path)
        if training_progress(self.trainer, 0) is None and self.stylized_weight(0.0) != self.stylized_weight(1.0):
            raise ValueError("the stylized-loss weight follows the training progress (model.loss.seg_source_rule="
                             f"{self.weights.seg_source_rule.value}) but the run has no finite length: set "
                             f"trainer.max_epochs (now {self.trainer.max_epochs}) to an integer >= 1")

    def progress(self, batch_idx: int) -> float:
        """Share of the run's training batches before this one (0 first, 1 last); 0 without a Trainer."""
        trainer = self.attached_trainer()
        progress = training_progress(trainer, batch_idx) if trainer is not None else None
        return 0.0 if progress is None else progress

    def on_train_epoch_end(self) -> None:
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers] if schedulers else []:
            scheduler.step()
        # already summed over the ranks in each training step: no collective here (see EpochMeans)
        means = self.train_means.compute_and_reset()
        self.log_dict({f"train/{k}_epoch": v for k, v in means.items()}, on_step=False, on_epoch=True)

    # ----------------------------------------------------------------- the step
    def translate(self, source_image: Tensor, target_image: Tensor) -> Fakes:
        source_as_target = self.gen_s2t(source_image)
        target_as_source = self.gen_t2s(target_image)
        return Fakes(source_as_target, target_as_source, self.gen_t2s(source_as_target), self.gen_s2t(target_as_source))

    def semantic_active(self) -> bool:
        return (self.semantic_mode != SemanticClassifier.none
                and self.current_epoch >= self.options.semantic_warmup_epochs)

    def semantic_classifier(self) -> nn.Module:
        return self.segmenter if self.sem_net is None else self.sem_net

    def fuses_source_term(self) -> bool:
        """One segmenter forward on source_as_target feeds both the generator and the segmenter loss:
        exact when the generators' classifier is F_T itself and both weights are positive."""
        return (self.sem_net is None and self.semantic_active() and self.weights.sem_source > 0
                and self.seg_source_weight > 0)

    def training_step(self, batch: Mapping, batch_idx: int) -> dict[str, Fakes | None]:
        source_image, source_label = _side(batch, "source")
        target_image, target_label = _side(batch, "target")
        optimizers = self.optimizers()
        opt_seg = optimizers[-1] if isinstance(optimizers, list) else optimizers
        logs: dict[str, Tensor] = {}
        skipped = False
        self.seg_source_weight = self.stylized_weight(self.progress(batch_idx))
        if source_image is not None:
            logs["seg_source_weight"] = torch.tensor(float(self.seg_source_weight), device=source_image.device)
        opt_seg.zero_grad(set_to_none=True)  # the fused source term adds its segmenter gradient in step 1
        # a skipped group's networks get back the buffers its forwards moved (nonfinite.py)
        before = BufferSnapshot(self.segmenter, self.gen_s2t, self.gen_t2s, self.disc_s, self.disc_t)
        fused_source_ce, fakes = None, None
        if self.has_gan and source_image is not None and target_image is not None:
            opt_g, opt_d = optimizers[0], optimizers[1]
            fakes = self.translate(source_image, target_image)
            fused_source_ce, ok = self.generator_step(opt_g, fakes, batch, logs)
            if not ok:  # the segmenter step runs its own forward instead of the fused one
                before.restore(self.gen_s2t, self.gen_t2s, self.segmenter)
            skipped |= not ok
            if not self.discriminator_step(opt_d, fakes, source_image, target_image, logs):
                before.restore(self.disc_s, self.disc_t)
                skipped = True
            segmenter_source = fakes.source_as_target.detach()
        else:
            segmenter_source = source_image
        if not self.segmenter_step(opt_seg, segmenter_source, source_label, target_image, target_label,
                                   fused_source_ce, logs):
            before.restore(self.segmenter)
            skipped = True
        self.train_batches += 1
        self.nonfinite.count(skipped, logs, self.device)
        batch_size = len(next(t for t in (source_image, target_image) if t is not None))
        # per rank and without sync_dist: an epoch-level sync here deadlocks DDP (see EpochMeans)
        self.log_dict({f"train/{k}_step": v for k, v in logs.items()}, on_step=True, on_epoch=False,
                      batch_size=batch_size)
        self.train_means.update(logs, batch_size, self.sum_across_ranks)
        return {"fakes": fakes}  # for the ImagePanels callback (Lightning hands it to on_train_batch_end)

    def generator_step(self, opt_g, fakes: Fakes, batch: Mapping, logs: dict) -> tuple[Tensor | None, bool]:
        source_image, source_label = _side(batch, "source")
        target_image, target_label = _side(batch, "target")
        w = self.weights
        with frozen(self.disc_s, self.disc_t):
            loss_gan = (gan_loss(self.judge(self.disc_t, fakes.source_as_target), True, self.options.gan_mode)
                        + gan_loss(self.judge(self.disc_s, fakes.target_as_source), True, self.options.gan_mode))
        loss_cycle = cycle_loss(fakes.source_rec, source_image) + cycle_loss(fakes.target_rec, target_image)
        total = w.gan * loss_gan + w.cycle * loss_cycle
        logs.update(g_gan=loss_gan.detach(), g_cycle=loss_cycle.detach())
        if w.identity > 0:
            loss_idt = (identity_loss(self.gen_s2t(target_image), target_image)
                        + identity_loss(self.gen_t2s(source_image), source_image))
            total = total + w.cycle * w.identity * loss_idt
            logs["g_identity"] = loss_idt.detach()
        fused = None
        if self.semantic_active() and (w.sem_source > 0 or w.sem_target > 0):
            classifier, weight = self.semantic_classifier(), self.class_weight_or_none()
            if w.sem_source > 0:
                if self.fuses_source_term():
                    fused = semantic_loss(self.segmenter(fakes.source_as_target), source_label, weight)
                    sem_source = fused
                else:
                    with frozen(classifier):
                        sem_source = semantic_loss(classifier(fakes.source_as_target), source_label, weight)
                total = total + w.sem_source * sem_source
                logs["g_sem_source"] = sem_source.detach()
            if w.sem_target > 0:
                with frozen(classifier):
                    sem_target = semantic_loss(classifier(fakes.target_rec), target_label, weight)
                total = total + w.sem_target * sem_target
                logs["g_sem_target"] = sem_target.detach()
        logs["g_total"] = total.detach()
        if not self.finite_on_all_ranks(total):
            return None, False
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(total)
        if fused is not None:  # F_T received w.sem_source·∇CE; the segmenter loss wants seg_source_weight·∇CE
            scale = self.seg_source_weight / w.sem_source
            for p in self.segmenter.parameters():
                if p.grad is not None and scale != 1.0:
                    p.grad.mul_(scale)
        self.clip(opt_g)
        opt_g.step()
        return fused, True

    def judge(self, discriminator: nn.Module, image: Tensor) -> Tensor:
        """Patch logits of `discriminator` on (B, 3, H, W) images, real or fake, with instance noise of std
        ``disc_noise`` added first (Sønderby et al. 2016): the discriminator cannot tell the domains apart by
        pixel noise a deterministic generator cannot draw, so it judges colour and layout instead."""
        if self.options.disc_noise > 0:  # from this rank's own stream (streams.py), not the global generator
            image = image + self.options.disc_noise * self.streams.noise_like(image)
        return discriminator(image)

    def discriminator_step(self, opt_d, fakes: Fakes, source_image: Tensor, target_image: Tensor, logs: dict) -> bool:
        if not self.finite_on_all_ranks(fakes.source_as_target, fakes.target_as_source):
            return False  # a broken fake batch must not enter the pools, where it would outlive this step
        pooled_target = self.streams.pool_t.query(fakes.source_as_target.detach())  # (B, 3, H, W) target-domain fakes
        pooled_source = self.streams.pool_s.query(fakes.target_as_source.detach())
        loss_d_t = discriminator_loss(self.judge(self.disc_t, target_image), self.judge(self.disc_t, pooled_target),
                                      self.options.gan_mode)
        loss_d_s = discriminator_loss(self.judge(self.disc_s, source_image), self.judge(self.disc_s, pooled_source),
                                      self.options.gan_mode)
        total = loss_d_t + loss_d_s
        logs.update(d_target=loss_d_t.detach(), d_source=loss_d_s.detach())
        if not self.finite_on_all_ranks(total):
            return False
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(total)
        self.clip(opt_d)
        opt_d.step()
        return True

    def segmenter_step(self, opt_seg, source_input: Tensor | None, source_label: Tensor | None,
                       target_image: Tensor | None, target_label: Tensor | None,
                       fused_source_ce: Tensor | None, logs: dict) -> bool:
        weight = self.class_weight_or_none()
        total = None
        if fused_source_ce is not None:
            logs["seg_source"] = fused_source_ce.detach()
        elif source_input is not None:
            seg_source = semantic_loss(self.segmenter(source_input), source_label, weight)
            total = self.seg_source_weight * seg_source
            logs["seg_source"] = seg_source.detach()
        if target_image is not None:
            seg_target = semantic_loss(self.segmenter(target_image), target_label, weight)
            total = self.weights.seg_target * seg_target + (total if total is not None else 0.0)
            logs["seg_target"] = seg_target.detach()
        if total is not None:
            if not self.finite_on_all_ranks(total):
                return False
            self.manual_backward(total)
        self.clip(opt_seg)
        opt_seg.step()
        self.segmenter_updates += 1
        if self.sem_net is not None and self.semantic_mode == SemanticClassifier.ema:
            ema_update(self.sem_net, self.segmenter, self.options.ema_decay)
        return True

    def sum_across_ranks(self, tensor: Tensor) -> Tensor:
        trainer = self.attached_trainer()
        return trainer.strategy.reduce(tensor, reduce_op="sum") if trainer is not None else tensor

    def finite_on_all_ranks(self, *tensors: Tensor) -> bool:
        """Whether to step on these losses (or use these fakes): under DDP every rank must take the same
        decision, or the ranks that step wait forever for the backward of the ones that skip."""
        finite = torch.stack([torch.isfinite(t.detach()).all() for t in tensors]).all()
        trainer = self.attached_trainer()
        if trainer is not None and trainer.world_size > 1:
            finite = self.all_gather(finite).all()
        return bool(finite)

    def clip(self, optimizer) -> None:
        if self.options.gradient_clip_val is not None:
            self.clip_gradients(optimizer, gradient_clip_val=self.options.gradient_clip_val,
                                gradient_clip_algorithm="norm")

    def class_weight_or_none(self) -> Tensor | None:
        return self.class_weight if self.use_class_weight else None

    # ----------------------------------------------------------------- evaluation
    def eval_step(self, batch: Mapping, dataloader_idx: int, metrics: SegmentationMetrics,
                  translation: MeanMetric, translation_score: SegmentationMetrics) -> None:
        """Loader 0 is the target val split (segmenter scores), loader 1 the paired set (translation error and
        score)."""
        if dataloader_idx == 0:
            metrics.update(self.segmenter(batch["image"]), batch["label"])
        elif self.has_gan:
            source_as_target = self.gen_s2t(batch["source_image"])  # (B, 3, H, W)
            if "paired_image" in batch:
                translation.update(translation_l1(source_as_target, batch["paired_image"]))
            if self.reference is not None:
                translation_score.update(self.reference(source_as_target), batch["label"])

    def validation_step(self, batch: Mapping, batch_idx: int, dataloader_idx: int = 0) -> None:
        self.eval_step(batch, dataloader_idx, self.val_metrics, self.val_translation, self.val_translation_score)

    def test_step(self, batch: Mapping, batch_idx: int, dataloader_idx: int = 0) -> None:
        self.eval_step(batch, dataloader_idx, self.test_metrics, self.test_translation, self.test_translation_score)

    def sync_buffers(self) -> None:
        """Give every DDP rank rank 0's buffers (BatchNorm running statistics: each rank updates them from its
        own batches; checkpoints hold rank 0's), so all ranks evaluate the same networks."""
        trainer = self.attached_trainer()
        if trainer is not None and trainer.world_size > 1:
            for buffer in self.buffers():
                torch.distributed.broadcast(buffer, src=0)

    def on_validation_epoch_start(self) -> None:
        self.sync_buffers()

    def on_test_epoch_start(self) -> None:
        self.sync_buffers()

    def _log_eval(self, split: str, metrics: SegmentationMetrics, translation: MeanMetric,
                  translation_score: SegmentationMetrics) -> dict[str, Any]:
        scores = metrics.compute()
        values = {f"{split}/{k}": float(scores[k]) for k in ("mIoU", "fwIoU", "pixel_acc")}
        values.update({f"{split}/iou_{name}": float(v) for name, v in zip(CLASS_NAMES, scores["per_class_iou"], strict=True)})
        if translation.update_count > 0:
            values[f"{split}/translation_l1"] = float(translation.compute())
        if translation_score.update_count > 0:
            score = float(translation_score.compute()["mIoU"])
            values[f"{split}/translation_score"] = score
            if self.reference.has_gain:
                values[f"{split}/translation_gain"] = self.reference.gain(score)
        # the values are already reduced across ranks (identical everywhere), so no sync_dist: Lightning would
        # run that all-reduce wherever the value is first read, which may be a rank-0-only callback (EpochMeans)
        self.log_dict(values)
        for metric in (metrics, translation, translation_score):
            metric.reset()
        return values

    def on_validation_epoch_end(self) -> None:
        self._log_eval("val", self.val_metrics, self.val_translation, self.val_translation_score)

    def on_test_epoch_end(self) -> None:
        self._log_eval("test", self.test_metrics, self.test_translation, self.test_translation_score)

    # ----------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        trainer = self.attached_trainer()
        checkpoint[CHECKPOINT_KEY] = {
            "model_config": self.model_config,
            "data_config": self.data_config,
            "reference_config": self.reference_config,
            "nonfinite": self.nonfinite.state_dict(),
            "train_means": self.train_means.state_dict(),
            "budget": {"train_batches": self.train_batches, "segmenter_updates": self.segmenter_updates},
            # every rank's pools and random states (a collective: Lightning builds checkpoints on all ranks)
            "ranks": gather_from_ranks(self.streams.state_dict(), trainer.world_size if trainer is not None else 1),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get(CHECKPOINT_KEY)
        if state is None:
            return
        trainer = self.attached_trainer()
        rank, world_size = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        streams = state_of_rank(state, rank, world_size)
        if streams is not None:
            self.streams.load_state_dict(streams)
        self.nonfinite.load_state_dict(state["nonfinite"])
        budget = state.get("budget", {})  # absent in checkpoints written before the budget was counted
        self.train_batches = budget.get("train_batches", 0)
        self.segmenter_updates = budget.get("segmenter_updates", 0)
        if "train_means" in state:  # checkpoints written before the epoch means were kept
            self.train_means.load_state_dict(state["train_means"])
