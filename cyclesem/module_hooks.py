"""The Lightning hooks of `CycleSemModule` that are not the training step: set-up from the data,
evaluation, schedules, checkpoint contents and media logging."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from cyclesem.classifier_copies import pretrain_classifier
from cyclesem.config import FP16_PRECISIONS, SemanticClassifier
from cyclesem.data.labels import CLASS_NAMES
from cyclesem.losses import class_weights_from_counts
from cyclesem.media_logging import log_class_table, log_panels
from cyclesem.rng import rng_states, set_rng_states

CHECKPOINT_KEY = "cyclesem"


class ModuleHooks:
    """Mixed into `CycleSemModule`; relies on its attributes (segmenter, metrics, pools, …)."""

    # ----------------------------------------------------------------- set-up
    def setup(self, stage: str) -> None:
        if str(self.trainer.precision) in FP16_PRECISIONS:  # also for Trainers built without the Hydra config
            raise ValueError(f"CycleSemModule does not train with precision={self.trainer.precision}: use "
                             "32-true or bf16-mixed (fp16's loss scaling is not shared across the fused backward)")
        datamodule = getattr(self.trainer, "datamodule", None)
        if stage == "fit" and datamodule is not None:
            self.set_real_frac(datamodule.real_frac)
            if self.use_class_weight and not self.class_weight_ready():
                counts = datamodule.labeled_class_counts()
                self.class_weight.copy_(class_weights_from_counts(counts, str(getattr(
                    self.class_weighting, "value", self.class_weighting))))
                rank_zero_info(f"class weights ({self.class_weighting}): "
                               + ", ".join(f"{n}={w:.2f}" for n, w in zip(CLASS_NAMES, self.class_weight.tolist(), strict=True)))

    def class_weight_ready(self) -> bool:
        return not torch.all(self.class_weight == 1.0).item()

    def configure_model(self) -> None:
        nets = [n for n in (self.segmenter, self.gen_s2t, self.gen_t2s, self.disc_s, self.disc_t, self.sem_net)
                if n is not None]
        for net in nets:
            if self.channels_last:
                net.to(memory_format=torch.channels_last)
            if self.compile_networks and not getattr(net, "_cyclesem_compiled", False):
                net.compile()
                net._cyclesem_compiled = True

    def on_train_start(self) -> None:
        if self.sem_net is None or self.semantic_mode != SemanticClassifier.frozen or self.sem_net_ready:
            return
        datamodule = self.trainer.datamodule
        sides = {"source": ["source"], "target": ["target"], "both": ["source", "target"]}[self.pretrain_on.value]
        datasets = [datamodule.labeled_sets[s] for s in sides if s in datamodule.labeled_sets]
        if not datasets:
            raise ValueError(f"model.pretrain_on={self.pretrain_on.value} but this run has no labelled "
                             f"{' or '.join(sides)} images (data.real_frac={datamodule.real_frac})")
        self.sem_net.load_state_dict(self.segmenter.state_dict())
        history = pretrain_classifier(
            self.sem_net, datasets, self.make_optimizer_seg, epochs=self.segmenter_pretrain_epochs,
            batch_size=datamodule.batch_size, device=self.device, class_weights=self.class_weight_or_none(),
            max_batches=1 if self.trainer.fast_dev_run else None, seed=datamodule.seed,
        )
        if self.trainer.world_size > 1:  # every rank pre-trained the same way; make them bit-equal anyway (GPU)
            for tensor in self.sem_net.state_dict().values():
                torch.distributed.broadcast(tensor, src=0)
        self.sem_net_ready.fill_(True)
        rank_zero_info(f"frozen semantic classifier pre-trained on {self.pretrain_on.value} for "
                       f"{len(history)} epochs; loss per epoch: " + ", ".join(f"{h:.3f}" for h in history))

    def on_train_epoch_end(self) -> None:
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers] if schedulers else []:
            scheduler.step()
        # already summed over the ranks in each training step: no collective here (see EpochMeans)
        means = self.train_means.compute_and_reset()
        self.log_dict({f"train/{k}_epoch": v for k, v in means.items()}, on_step=False, on_epoch=True)

    # ----------------------------------------------------------------- evaluation
    def translation_l1(self, batch: Mapping) -> Tensor:
        """Per-image mean L1 between G_S→T(source) and the same scene rendered in target style, (B,)."""
        return (self.gen_s2t(batch["source_image"]) - batch["paired_image"]).abs().flatten(1).mean(1)

    def _eval_step(self, batch: Mapping, dataloader_idx: int, metrics, translation) -> None:
        if dataloader_idx == 0:
            metrics.update(self.segmenter(batch["image"]), batch["label"])
        elif self.has_gan:
            translation.update(self.translation_l1(batch))

    def sync_buffers(self) -> None:
        """Give every DDP rank rank 0's buffers (BatchNorm running statistics: each rank updates them from its
        own batches; checkpoints hold rank 0's), so all ranks evaluate the same networks."""
        if self._trainer is not None and self.trainer.world_size > 1:
            for buffer in self.buffers():
                torch.distributed.broadcast(buffer, src=0)

    def on_validation_epoch_start(self) -> None:
        self.sync_buffers()

    def on_test_epoch_start(self) -> None:
        self.sync_buffers()

    def validation_step(self, batch: Mapping, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch, dataloader_idx, self.val_metrics, self.val_translation)

    def test_step(self, batch: Mapping, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch, dataloader_idx, self.test_metrics, self.test_translation)

    def _log_eval(self, split: str, metrics, translation) -> dict[str, Any]:
        scores = metrics.compute()
        values = {f"{split}/{k}": float(scores[k]) for k in ("mIoU", "fwIoU", "pixel_acc")}
        values.update({f"{split}/iou_{name}": float(v) for name, v in zip(CLASS_NAMES, scores["per_class_iou"], strict=True)})
        if translation.update_count > 0:
            values[f"{split}/translation_l1"] = float(translation.compute())
        # the values are already reduced across ranks (identical everywhere), so no sync_dist: Lightning would
        # run that all-reduce wherever the value is first read, which may be a rank-0-only callback (EpochMeans)
        self.log_dict(values)
        log_class_table(self.loggers, split, scores["per_class_iou"], self.global_step)
        metrics.reset()
        translation.reset()
        return values

    def on_validation_epoch_end(self) -> None:
        self._log_eval("val", self.val_metrics, self.val_translation)

    def on_test_epoch_end(self) -> None:
        self._log_eval("test", self.test_metrics, self.test_translation)

    # ----------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {
            "model_config": self.model_config,
            "data_config": getattr(self, "data_config", None),
            "pools": {"source": self.pool_s.state_dict(), "target": self.pool_t.state_dict()},
            "nonfinite": {"in_a_row": self.nonfinite_in_a_row, "total": self.nonfinite_total},
            "train_means": self.train_means.state_dict(),
            "budget": {"train_batches": self.train_batches, "segmenter_updates": self.segmenter_updates},
            "rng": rng_states(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get(CHECKPOINT_KEY)
        if state is None:
            return
        self.pool_s.load_state_dict(state["pools"]["source"])
        self.pool_t.load_state_dict(state["pools"]["target"])
        self.nonfinite_in_a_row = state["nonfinite"]["in_a_row"]
        self.nonfinite_total = state["nonfinite"]["total"]
        budget = state.get("budget", {})  # absent in checkpoints written before the budget was counted
        self.train_batches = budget.get("train_batches", 0)
        self.segmenter_updates = budget.get("segmenter_updates", 0)
        if "train_means" in state:  # checkpoints written before the epoch means were kept
            self.train_means.load_state_dict(state["train_means"])
        if "rng" in state:
            set_rng_states(state["rng"])

    # ----------------------------------------------------------------- media
    def maybe_log_panels(self, batch: Mapping, fakes) -> None:
        every = self.log_images_every_n_steps
        step = self.trainer.fit_loop.epoch_loop._batches_that_stepped if self._trainer is not None else 0
        if not every or step % every != 0 or not self.loggers:
            return
        target = batch.get("target") or batch.get("source")
        training = self.segmenter.training
        self.segmenter.eval()  # logging must not move BatchNorm statistics: a logged run trains like an unlogged one
        with torch.no_grad():
            prediction = self.segmenter(target["image"][:1]).argmax(1)[0]  # (H, W)
        self.segmenter.train(training)
        log_panels(self.loggers, batch, fakes, prediction, step)
