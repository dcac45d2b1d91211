"""The FCN-score of a translation (Isola et al. 2017, Zhu et al. 2017): how well a fixed segmenter trained on
real target images segments G_S→T(x_s) against the source label y_s.

    translation_score = mIoU(F_ref(G_S→T(x_s)), y_s)           on the paired set (loader 1 of val / test)
    translation_gain  = (score − floor) / (ceiling − floor)     0: no better than the raw source images,
                                                               1: as good as the true target-style renders

F_ref is trained once per synthetic pair and reference config and cached (`cyclesem.method.reference_segmenter`); its
floor (mIoU on the raw x_s) and ceiling (on the same scenes rendered in the target style, the paired renders)
are measured once on the same images. Without paired renders (real GTA5) there is no ceiling and no gain.

The gain divides by (ceiling − floor), which is small on a pair with a small domain gap: the raw source images
already read almost as well as the target-style renders. Below `MIN_GAIN_SPAN` the gain is reported but flagged
as not meaningful (`gain_meaningful`), and the score, floor and ceiling are reported beside it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

# The translation score's seed-to-seed standard deviation in experiments/real_frac_study is 0.004–0.011 mIoU (about
# 0.01 for cyclesem at 10 % real, 5 seeds). Below a span of 0.10 one such deviation moves the gain by more than
# 0.1, a tenth of the whole way from the raw source images to a perfect translation: gains of two groups then
# differ by noise alone, and a single gain says little.
MIN_GAIN_SPAN = 0.10


def gain_meaningful(floor: float, ceiling: float | None) -> bool:
    """Whether the gain between these anchors is worth reading: ceiling − floor at least `MIN_GAIN_SPAN`."""
    return ceiling is not None and ceiling - floor >= MIN_GAIN_SPAN - 1e-9  # 0.5 - 0.4 is 0.0999…: meaningful


def translation_gain(score: float, floor: float, ceiling: float) -> float:
    """Where `score` lies between the raw source images (0) and a perfect translation (1); may leave [0, 1]."""
    if not ceiling > floor:
        raise ValueError(f"translation gain needs ceiling > floor, got ceiling={ceiling} and floor={floor}")
    return (score - floor) / (ceiling - floor)


class TranslationReference:
    """The frozen reference segmenter F_ref with its anchors (mIoU fractions in [0, 1]); `key` names its cache entry.

    Held by `CycleSemModule` as a plain attribute, not a submodule: its weights stay out of every run checkpoint,
    Lightning never switches it to train mode, and DDP never sees its parameters. (A plain class, not a dataclass:
    Hydra's ``instantiate`` would turn a dataclass argument into a config and rebuild a copy.)
    """

    def __init__(self, segmenter: nn.Module, floor: float, ceiling: float | None = None, *,
                 key: str | None = None) -> None:
        for name, value in (("floor", floor), ("ceiling", ceiling)):
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= 1):
                raise ValueError(f"TranslationReference {name}={value!r}: expected an mIoU fraction in [0, 1]")
        self.segmenter = segmenter.requires_grad_(False).eval()
        self.floor, self.ceiling, self.key = float(floor), None if ceiling is None else float(ceiling), key

    def __repr__(self) -> str:
        return f"TranslationReference(floor={self.floor:.4f}, ceiling={self.ceiling}, key={self.key})"

    @property
    def has_gain(self) -> bool:
        """A ceiling above the floor: the gain is defined (a reference that cannot tell the raw source from the
        target-style renders apart gives none)."""
        return self.ceiling is not None and self.ceiling > self.floor

    @property
    def gain_meaningful(self) -> bool:
        """The gain is defined and its span (ceiling − floor) at least `MIN_GAIN_SPAN`."""
        return self.has_gain and gain_meaningful(self.floor, self.ceiling)

    def gain(self, score: float) -> float:
        return translation_gain(score, self.floor, self.ceiling)

    @torch.no_grad()
    def __call__(self, images: Tensor) -> Tensor:
        """Logits (B, C, H, W) of images (B, 3, H, W) in [-1, 1]: eval mode, fp32 (no autocast, so the score is
        comparable with the anchors measured in fp32), on the images' device."""
        segmenter = self.segmenter.to(images.device).eval()  # no-op once there; eval in case someone called train()
        with torch.autocast(images.device.type, enabled=False):
            return segmenter(images.float())
