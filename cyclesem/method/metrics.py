"""Segmentation scores, all derived from one confusion matrix (rows = ground truth, cols = prediction).

Scores are fractions in [0, 1]. The headline number of the study is the frequency-weighted IoU (fwIoU,
"weighted IoU" in the source report); mIoU follows the official Cityscapes evaluator in leaving out
classes that appear in neither the ground truth nor the prediction.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric

from cyclesem.data.labels import IGNORE_INDEX, NUM_CLASSES


def confusion_matrix(
    pred: Tensor, target: Tensor, num_classes: int = NUM_CLASSES, ignore_index: int = IGNORE_INDEX
) -> Tensor:
    """Confusion matrix (num_classes, num_classes) int64 of integer ``pred`` vs ``target`` (any equal shape).

    Pixels whose target is ``ignore_index`` are left out. Any other value outside ``[0, num_classes)``
    raises, since it would silently land in another cell of the matrix.
    """
    if pred.shape != target.shape:
        raise ValueError(
            f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape"
        )
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    keep = target != ignore_index
    pred, target = pred[keep], target[keep]
    for name, values in (("target", target), ("pred", pred)):
        if values.numel() and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"{name} holds values outside [0, {num_classes}) other than ignore_index={ignore_index}: "
                f"{sorted(set(values.unique().tolist()) - set(range(num_classes)))}"
            )
    counts = torch.bincount(num_classes * target + pred, minlength=num_classes**2)
    return counts.reshape(num_classes, num_classes)


def scores_from_confusion(cm: Tensor) -> dict:
    """fwIoU, mIoU, pixel accuracy (Python floats) and per-class IoU (float64 CPU tensor (C,), nan if absent).

    - ``per_class_iou``: TP / (TP + FP + FN); nan for a class absent from both ground truth and prediction.
      A class predicted but absent from the ground truth has IoU 0.
    - ``mIoU``: mean over the non-nan classes.
    - ``fwIoU``: Σ_c freq_c · IoU_c with freq_c the share of labelled ground-truth pixels in class c.
    - ``pixel_acc``: correct / labelled pixels.

    An empty matrix (no labelled pixel) gives nan everywhere rather than raising.
    """
    cm = cm.detach().to(device="cpu", dtype=torch.float64)  # (C, C)
    true_pos = cm.diagonal()
    gt_pixels = cm.sum(dim=1)
    pred_pixels = cm.sum(dim=0)
    union = gt_pixels + pred_pixels - true_pos
    iou = torch.where(union > 0, true_pos / union.clamp_min(1), torch.full_like(union, math.nan))
    total = gt_pixels.sum()
    if total == 0:
        return {"fwIoU": math.nan, "mIoU": math.nan, "pixel_acc": math.nan, "per_class_iou": iou}
    freq = gt_pixels / total
    # classes with freq 0 contribute nothing; nan_to_num keeps their nan IoU from poisoning the sum
    fw_iou = (freq * iou.nan_to_num(0.0)).sum()
    return {
        "fwIoU": fw_iou.item(),
        "mIoU": iou.nanmean().item(),
        "pixel_acc": (true_pos.sum() / total).item(),
        "per_class_iou": iou,
    }


class SegmentationMetrics(Metric):
    """Accumulates a confusion matrix over batches (summed across DDP ranks) and reports :func:`scores_from_confusion`.

    ``update`` takes logits (B, C, h, w), argmax'ed after bilinear upsampling to the target's (H, W) so
    predictions are scored at label resolution, or integer predictions (B, H, W).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    confmat: Tensor

    def __init__(self, num_classes: int = NUM_CLASSES, ignore_index: int = IGNORE_INDEX, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.add_state(
            "confmat", default=torch.zeros(num_classes, num_classes, dtype=torch.long), dist_reduce_fx="sum"
        )

    def update(self, logits_or_pred: Tensor, target: Tensor) -> None:
        if target.ndim != 3:
            raise ValueError(f"target must be (B, H, W); got {tuple(target.shape)}")
        if logits_or_pred.ndim == 4:
            if logits_or_pred.shape[1] != self.num_classes:
                raise ValueError(
                    f"logits have {logits_or_pred.shape[1]} channels, expected num_classes={self.num_classes}"
                )
            logits = logits_or_pred
            if logits.shape[-2:] != target.shape[-2:]:
                logits = F.interpolate(
                    logits.float(), size=target.shape[-2:], mode="bilinear", align_corners=False
                )
            pred = logits.argmax(dim=1)  # (B, H, W)
        elif logits_or_pred.ndim == 3:
            if logits_or_pred.is_floating_point():
                raise ValueError("a (B, H, W) prediction must hold integer class ids, not floats")
            pred = logits_or_pred
        else:
            raise ValueError(
                f"expected logits (B, C, h, w) or predictions (B, H, W); got {tuple(logits_or_pred.shape)}"
            )
        self.confmat += confusion_matrix(pred, target, self.num_classes, self.ignore_index)

    def compute(self) -> dict:
        return scores_from_confusion(self.confmat)


class EpochMeans:
    """Batch-size-weighted epoch means of the training losses over the batches of every DDP rank.

    Lightning's own epoch reduction (``self.log(on_epoch=True, sync_dist=True)``) runs its all-reduce wherever
    the value is first read, and the progress bar reads it on rank 0 alone at the end of every training epoch
    while the other ranks are already in the logger connector's collective: the ranks deadlock in epochs that
    run no validation (Lightning issue 21264). Here each batch's values are summed across the ranks inside the
    training step, which every rank runs, so the sums are the same everywhere, the epoch means need no
    collective, and rank 0's checkpoint holds every rank's share (a resumed epoch still averages over all of it).
    """

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys  # fixed order: every rank reduces the same vector even when it logged other keys
        self.totals = torch.zeros(2, len(keys), dtype=torch.float64)  # (2, K): Σ value · batch size, Σ batch size

    def update(self, values: dict[str, Tensor], batch_size: int, sum_across_ranks=lambda t: t) -> None:
        """Add one batch of this rank; ``sum_across_ranks`` sums a tensor over the ranks (identity in one
        process). Stays on the values' device (no host sync per step)."""
        reference = next(iter(values.values()))
        zero = reference.new_zeros((), dtype=torch.float64)
        batch = torch.stack([values.get(key, zero).detach().to(torch.float64) for key in self.keys])  # (K,)
        present = [key in values for key in self.keys]
        weight = torch.tensor(present, dtype=torch.float64, device=reference.device) * batch_size  # (K,)
        self.totals = self.totals.to(reference.device) + sum_across_ranks(torch.stack([batch * weight, weight]))

    def compute_and_reset(self) -> dict[str, float]:
        """The epoch's means (the keys some rank logged); starts the next epoch."""
        sums, counts = self.totals.cpu()
        self.totals = torch.zeros_like(self.totals)
        return {key: float(sums[i] / counts[i]) for i, key in enumerate(self.keys) if counts[i] > 0}

    def state_dict(self) -> dict[str, Tensor]:
        return {"totals": self.totals.cpu().clone()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.totals = state["totals"].to(self.totals.device, torch.float64)
