"""Pure loss functions: tensors in, tensors out, no module state.

The LightningModule decides which of these to combine and with which weights; nothing here
knows about generators, discriminators or optimizers.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from cyclesem.data.labels import IGNORE_INDEX
from cyclesem.method.options import ClassWeighting, GanMode


def _member(enum: type, value: object, what: str):
    """`value` (a member or its string) as a member of `enum`; a clear error for anything else."""
    try:
        return enum(value)
    except ValueError:
        raise ValueError(f"{what} {value!r} is not supported; expected one of "
                         f"{tuple(m.value for m in enum)}") from None


def gan_loss(prediction: Tensor, target_is_real: bool, mode: GanMode | str = GanMode.lsgan) -> Tensor:
    """Adversarial loss of discriminator outputs against an all-real or all-fake target.

    ``lsgan``: mean squared error to 1 / 0 (LSGAN, the CycleGAN default).
    ``vanilla``: binary cross-entropy on logits to 1 / 0 (the original GAN); ``prediction`` must be logits.
    """
    mode = _member(GanMode, mode, "gan loss mode")
    target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)  # (B, 1, h, w) PatchGAN map
    if mode == GanMode.lsgan:
        return F.mse_loss(prediction, target)
    return F.binary_cross_entropy_with_logits(prediction, target)


def discriminator_loss(pred_real: Tensor, pred_fake: Tensor, mode: GanMode | str = GanMode.lsgan) -> Tensor:
    """CycleGAN discriminator loss; halved so D learns at half the rate of G."""
    return 0.5 * (gan_loss(pred_real, True, mode) + gan_loss(pred_fake, False, mode))


def cycle_loss(reconstructed: Tensor, original: Tensor) -> Tensor:
    """L1 between ``G_T→S(G_S→T(x))`` (or the reverse) and ``x``."""
    return F.l1_loss(reconstructed, original)


def identity_loss(same: Tensor, original: Tensor) -> Tensor:
    """L1 between ``G_S→T(x_t)`` and ``x_t``: a generator fed its own output domain should leave it alone."""
    return F.l1_loss(same, original)


def semantic_loss(
    logits: Tensor,
    labels: Tensor,
    class_weights: Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> Tensor:
    """Cross-entropy of ``logits`` (B, C, h, w) against ``labels`` (B, H, W), ignoring ``ignore_index``.

    Logits at another resolution than the labels are upsampled bilinearly to the label size, so the
    loss is always measured at label resolution. With ``class_weights`` (C,) the result is the weighted
    mean ``Σ w_y·nll / Σ w_y`` over labelled pixels, as ``F.cross_entropy`` computes it.

    A batch in which every pixel is ignored (unlabelled target images) gives ``0`` still attached to the
    graph, so ``backward`` runs and yields zero gradients; ``F.cross_entropy`` would return NaN there.
    This is done without a host sync: numerator and denominator are both 0 and the denominator is
    clamped away from 0.
    """
    if logits.ndim != 4 or labels.ndim != 3 or logits.shape[0] != labels.shape[0]:
        raise ValueError(
            f"semantic_loss expects logits (B, C, h, w) and labels (B, H, W); "
            f"got logits {tuple(logits.shape)} and labels {tuple(labels.shape)}"
        )
    num_classes = logits.shape[1]
    if class_weights is not None and class_weights.shape != (num_classes,):
        raise ValueError(
            f"class_weights must have shape ({num_classes},) to match the logits; got {tuple(class_weights.shape)}"
        )
    if logits.shape[-2:] != labels.shape[-2:]:
        logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    labels = labels.long()
    # (B, H, W), 0 at ignored pixels
    nll = F.cross_entropy(logits, labels, ignore_index=ignore_index, reduction="none")

    valid = labels != ignore_index  # (B, H, W)
    # weights applied here rather than through F.cross_entropy(weight=...) so they stay in nll's dtype:
    # float32 under bf16 autocast, where a bf16 weight or pixel count would round
    dtype = nll.dtype
    if class_weights is None:
        return nll.sum() / valid.sum().to(dtype).clamp_min(1.0)
    # 255 would index out of range: look up a dummy class and zero it with the mask
    pixel_weights = class_weights.to(device=logits.device, dtype=dtype)[labels.where(valid, 0)] * valid
    return (nll * pixel_weights).sum() / pixel_weights.sum().clamp_min(torch.finfo(dtype).tiny)


def class_weights_from_counts(counts: Tensor | np.ndarray, mode: ClassWeighting | str) -> Tensor | None:
    """Per-class cross-entropy weights (C,) float32 from per-class labelled pixel counts (C,).

    ``none``: no weighting (returns None).
    ``inverse``: ``w_c = total / (C_present · count_c)``; the pixel-weighted mean weight is 1, so the
    loss keeps its scale while each present class contributes equally.
    ``median``: median frequency balancing (Eigen & Fergus 2015), ``w_c = median(freq) / freq_c`` with the
    median over present classes (averaging the two middle values for an even number of classes).

    Classes with zero count get weight 0: they never appear in the labels, so the weight is never used,
    and 0 keeps them from producing an infinite weight.
    """
    mode = _member(ClassWeighting, mode, "class weight mode")
    if mode == ClassWeighting.none:
        return None
    counts = torch.as_tensor(counts).double()
    if counts.ndim != 1:
        raise ValueError(f"class pixel counts must be a vector (C,); got shape {tuple(counts.shape)}")
    if (counts < 0).any() or not torch.isfinite(counts).all():
        raise ValueError(f"class pixel counts must be finite and non-negative; got {counts.tolist()}")
    present = counts > 0
    if not present.any():
        raise ValueError("class pixel counts are all zero: no labelled pixel to derive class weights from")

    weights = torch.zeros_like(counts)
    total = counts.sum()
    if mode == ClassWeighting.inverse:
        weights[present] = total / (present.sum() * counts[present])
    else:  # median
        freq = counts[present] / total
        weights[present] = torch.quantile(freq, 0.5) / freq
    return weights.float()
