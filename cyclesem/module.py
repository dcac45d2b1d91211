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
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR
from torchmetrics import MeanMetric

from cyclesem.classifier_copies import classifier_copy, ema_update, frozen
from cyclesem.config import GanMode, LossWeights, PretrainOn, SemanticClassifier, SourceWeightRule
from cyclesem.image_pool import ImagePool
from cyclesem.losses import cycle_loss, discriminator_loss, gan_loss, identity_loss, semantic_loss
from cyclesem.metrics import EpochMeans, SegmentationMetrics
from cyclesem.module_hooks import ModuleHooks

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


def _side(batch: Mapping, name: str) -> tuple[Tensor | None, Tensor | None]:
    side = batch.get(name)
    return (side["image"], side["label"]) if side is not None else (None, None)


class CycleSemModule(ModuleHooks, L.LightningModule):
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
        loss: LossWeights | Mapping | None = None,
        gan_mode: str = "lsgan",
        semantic_classifier: str = "joint",
        ema_decay: float = 0.99,
        segmenter_pretrain_epochs: int = 2,
        pretrain_on: str = "source",
        semantic_warmup_epochs: int = 0,
        pool_size: int = 50,
        class_weights: str = "none",
        max_nonfinite_steps: int = 10,
        gradient_clip_val: float | None = None,
        decay_start_frac: float = 0.5,
        log_images_every_n_steps: int = 200,
        channels_last: bool = False,
        compile: bool = False,
        num_classes: int = 19,
        style_transfer: bool = True,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        if not style_transfer:  # the baseline: same segmenter and data stream, no CycleGAN
            gen_s2t = gen_t2s = disc_s = disc_t = optimizer_g = optimizer_d = None
        gan_nets = (gen_s2t, gen_t2s, disc_s, disc_t, optimizer_g, optimizer_d)
        if any(n is None for n in gan_nets) and not all(n is None for n in gan_nets):
            raise ValueError(f"give all of {', '.join(self.GAN_KEYS)}, or none (baseline)")
        self.has_gan = gen_s2t is not None
        self.segmenter, self.gen_s2t, self.gen_t2s, self.disc_s, self.disc_t = segmenter, gen_s2t, gen_t2s, disc_s, disc_t
        self.make_optimizer_seg, self.make_scheduler_seg = optimizer_seg, scheduler_seg
        self.make_optimizer_g, self.make_optimizer_d = optimizer_g, optimizer_d
        self.weights = loss if isinstance(loss, LossWeights) else LossWeights(**(loss or {}))
        self.gan_mode = GanMode(gan_mode).value
        self.semantic_mode = SemanticClassifier(semantic_classifier)
        self.pretrain_on = PretrainOn(pretrain_on)
        self.ema_decay, self.segmenter_pretrain_epochs = ema_decay, segmenter_pretrain_epochs
        self.semantic_warmup_epochs, self.class_weighting = semantic_warmup_epochs, class_weights
        self.max_nonfinite_steps, self.gradient_clip_val = max_nonfinite_steps, gradient_clip_val
        self.decay_start_frac, self.log_images_every_n_steps = decay_start_frac, log_images_every_n_steps
        self.channels_last, self.compile_networks = channels_last, compile
        # the classifier the generators' semantic terms go through, when it is not F_T itself
        copies = (SemanticClassifier.ema, SemanticClassifier.frozen)
        self.sem_net = classifier_copy(segmenter) if self.has_gan and self.semantic_mode in copies else None
        self.register_buffer("sem_net_ready", torch.tensor(False))
        self.register_buffer("class_weight", torch.ones(num_classes))
        self.use_class_weight = str(getattr(class_weights, "value", class_weights)) != "none"
        # own coin flips per pool (one seed for both would swap the same positions in both), from the run's seed
        pool_seeds = np.random.SeedSequence([torch.initial_seed(), 0x9001]).generate_state(2, dtype=np.uint64)
        self.pool_s, self.pool_t = (ImagePool(pool_size, seed=int(s) >> 1) for s in pool_seeds)
        self.val_metrics, self.test_metrics = SegmentationMetrics(num_classes), SegmentationMetrics(num_classes)
        self.val_translation, self.test_translation = MeanMetric(), MeanMetric()
        self.seg_source_weight = self.weights.seg_source
        self.train_means = EpochMeans(self.TRAIN_LOG_KEYS)
        self.nonfinite_in_a_row = self.nonfinite_total = 0
        # the training budget as every method counts it: one batch = one update of each group (global_step
        # counts optimizer steps instead: 3 per batch with a CycleGAN, 1 without)
        self.train_batches = self.segmenter_updates = 0
        self.model_config: dict | None = None  # set by train.py; stored in checkpoints (self-describing)

    # ----------------------------------------------------------------- set-up
    def set_real_frac(self, real_frac: float) -> None:
        """Apply `seg_source_rule`: with ``source_share`` the stylized-image weight follows the source share."""
        w = self.weights
        if w.seg_source_rule == SourceWeightRule.source_share:
            self.seg_source_weight = w.seg_source * (1.0 - real_frac) / max(real_frac, 1.0 - real_frac)
        else:
            self.seg_source_weight = w.seg_source

    def configure_optimizers(self):
        opt_seg = self.make_optimizer_seg(self.segmenter.parameters())
        sched_seg = [self.make_scheduler_seg(opt_seg)] if self.make_scheduler_seg is not None else []
        if not self.has_gan:
            return [opt_seg], sched_seg
        opt_g = self.make_optimizer_g(itertools.chain(self.gen_s2t.parameters(), self.gen_t2s.parameters()))
        opt_d = self.make_optimizer_d(itertools.chain(self.disc_s.parameters(), self.disc_t.parameters()))
        max_epochs = max(self.trainer.max_epochs or 1, 1) if self._trainer is not None else 1
        start = int(self.decay_start_frac * max_epochs)

        def linear_decay(epoch: int) -> float:  # CycleGAN: constant, then linearly to 0
            return 1.0 - max(0, epoch + 1 - start) / float(max_epochs - start + 1)

        return [opt_g, opt_d, opt_seg], [LambdaLR(opt_g, linear_decay), LambdaLR(opt_d, linear_decay), *sched_seg]

    # ----------------------------------------------------------------- the step
    def translate(self, source_image: Tensor, target_image: Tensor) -> Fakes:
        source_as_target = self.gen_s2t(source_image)
        target_as_source = self.gen_t2s(target_image)
        return Fakes(source_as_target, target_as_source, self.gen_t2s(source_as_target), self.gen_s2t(target_as_source))

    def semantic_active(self) -> bool:
        return self.semantic_mode != SemanticClassifier.none and self.current_epoch >= self.semantic_warmup_epochs

    def semantic_classifier(self) -> nn.Module:
        return self.segmenter if self.sem_net is None else self.sem_net

    def fuses_source_term(self) -> bool:
        """One segmenter forward on source_as_target feeds both the generator and the segmenter loss:
        exact when the generators' classifier is F_T itself and both weights are positive."""
        return (self.sem_net is None and self.semantic_active() and self.weights.sem_source > 0
                and self.seg_source_weight > 0)

    def training_step(self, batch: Mapping, batch_idx: int) -> None:
        source_image, source_label = _side(batch, "source")
        target_image, target_label = _side(batch, "target")
        optimizers = self.optimizers()
        opt_seg = optimizers[-1] if isinstance(optimizers, list) else optimizers
        logs: dict[str, Tensor] = {}
        skipped = False
        opt_seg.zero_grad(set_to_none=True)  # the fused source term adds its segmenter gradient in step 1
        fused_source_ce, fakes = None, None
        if self.has_gan and source_image is not None and target_image is not None:
            opt_g, opt_d = optimizers[0], optimizers[1]
            fakes = self.translate(source_image, target_image)
            fused_source_ce, ok = self.generator_step(opt_g, fakes, batch, logs)
            skipped |= not ok
            skipped |= not self.discriminator_step(opt_d, fakes, source_image, target_image, logs)
            segmenter_source = fakes.source_as_target.detach()
        else:
            segmenter_source = source_image
        skipped |= not self.segmenter_step(opt_seg, segmenter_source, source_label, target_image, target_label,
                                           fused_source_ce, logs)
        self.train_batches += 1
        self.count_nonfinite(skipped, logs)
        batch_size = len(next(t for t in (source_image, target_image) if t is not None))
        # per rank and without sync_dist: an epoch-level sync here deadlocks DDP (see EpochMeans)
        self.log_dict({f"train/{k}_step": v for k, v in logs.items()}, on_step=True, on_epoch=False,
                      batch_size=batch_size)
        self.train_means.update(logs, batch_size, self.sum_across_ranks)
        self.maybe_log_panels(batch, fakes)

    def generator_step(self, opt_g, fakes: Fakes, batch: Mapping, logs: dict) -> tuple[Tensor | None, bool]:
        source_image, source_label = _side(batch, "source")
        target_image, target_label = _side(batch, "target")
        w = self.weights
        with frozen(self.disc_s, self.disc_t):
            loss_gan = (gan_loss(self.disc_t(fakes.source_as_target), True, self.gan_mode)
                        + gan_loss(self.disc_s(fakes.target_as_source), True, self.gan_mode))
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

    def discriminator_step(self, opt_d, fakes: Fakes, source_image: Tensor, target_image: Tensor, logs: dict) -> bool:
        if not self.finite_on_all_ranks(fakes.source_as_target, fakes.target_as_source):
            return False  # a broken fake batch must not enter the pools, where it would outlive this step
        pooled_target = self.pool_t.query(fakes.source_as_target.detach())  # (B, 3, H, W) fakes in the target domain
        pooled_source = self.pool_s.query(fakes.target_as_source.detach())
        loss_d_t = discriminator_loss(self.disc_t(target_image), self.disc_t(pooled_target), self.gan_mode)
        loss_d_s = discriminator_loss(self.disc_s(source_image), self.disc_s(pooled_source), self.gan_mode)
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
            ema_update(self.sem_net, self.segmenter, self.ema_decay)
        return True

    def sum_across_ranks(self, tensor: Tensor) -> Tensor:
        return self.trainer.strategy.reduce(tensor, reduce_op="sum") if self._trainer is not None else tensor

    def finite_on_all_ranks(self, *tensors: Tensor) -> bool:
        """Whether to step on these losses (or use these fakes): under DDP every rank must take the same
        decision, or the ranks that step wait forever for the backward of the ones that skip."""
        finite = torch.stack([torch.isfinite(t.detach()).all() for t in tensors]).all()
        if self._trainer is not None and self.trainer.world_size > 1:
            finite = self.all_gather(finite).all()
        return bool(finite)

    def clip(self, optimizer) -> None:
        if self.gradient_clip_val is not None:
            self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip_val, gradient_clip_algorithm="norm")

    def class_weight_or_none(self) -> Tensor | None:
        return self.class_weight if self.use_class_weight else None

    def count_nonfinite(self, skipped: bool, logs: dict) -> None:
        self.nonfinite_in_a_row = self.nonfinite_in_a_row + 1 if skipped else 0
        self.nonfinite_total += int(skipped)
        logs["nonfinite_steps"] = torch.tensor(float(self.nonfinite_total))
        if self.nonfinite_in_a_row >= self.max_nonfinite_steps:
            raise FloatingPointError(
                f"non-finite losses in {self.nonfinite_in_a_row} consecutive training steps "
                f"(model.max_nonfinite_steps={self.max_nonfinite_steps}); last losses: "
                + ", ".join(f"{k}={v.item():.4g}" for k, v in logs.items())
                + ". Lower the learning rates or set model.gradient_clip_val."
            )
