"""Segmenters F_T (``segmenter``): a lean U-Net (default) and two torchvision networks.

Every segmenter maps an image (B, 3, H, W) to class logits (B, num_classes, H, W)
at input resolution. Pretrained weights are never downloaded: ``load_weights``
reads a state_dict file the user saved, and the torchvision wrappers take its
path as ``weights_path`` (whole network) or ``backbone_weights_path`` (ImageNet
backbone). Each class names its class-count-dependent head in ``head_prefixes``
so weights trained for another label set can still seed everything else.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.segmentation import deeplabv3_resnet50, lraspp_mobilenet_v3_large

from cyclesem.models.weights_file import CheckpointError, UnsafeCheckpointError, describe, load_weights_only


class WeightsFileError(CheckpointError):
    """A weights file exists but cannot be read or does not fit the network."""


def _preview(keys: Sequence[str], limit: int = 5) -> str:
    keys = sorted(keys)
    more = f" ... (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_weights(
    module: nn.Module,
    path: str | os.PathLike,
    *,
    prefix: str = "",
    skip_prefixes: Sequence[str] = (),
    head_prefixes: Sequence[str] | None = None,
) -> nn.Module:
    """Load a local state_dict file into ``module`` in place and return it.

    path: a ``torch.save``d state_dict, or a Lightning checkpoint (its ``state_dict`` is used).
    prefix: keep only keys under this prefix and strip it (e.g. ``"segmenter."`` from a
        CycleSemModule checkpoint, ``"features."`` from a torchvision MobileNetV3 file).
    skip_prefixes: keys dropped before matching (e.g. the ImageNet ``"fc."`` classifier).
    head_prefixes: keys whose shape may differ (another class count); those tensors are
        skipped with a warning and keep their fresh initialisation. Default: ``module.head_prefixes``.
    Raises FileNotFoundError for a missing file, UnsafeCheckpointError for a file that holds objects
    other than weights (read weights-only: nothing in it runs), and WeightsFileError for an unreadable
    file, missing or unexpected keys, or shape mismatches outside the head.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(
            f"weights file {file} does not exist (pretrained weights are never downloaded)"
        )
    try:
        loaded = load_weights_only(file, what="weights file")
    except UnsafeCheckpointError:
        raise  # its own message: what the file holds and how to convert a trusted one
    except CheckpointError as err:
        raise WeightsFileError(
            f"could not read weights file {file} as a torch.save'd state_dict ({describe(err.__cause__)})"
        ) from err
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]  # Lightning checkpoint
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise WeightsFileError(
            f"weights file {file} does not hold a state_dict (a mapping of names to tensors)"
        )

    state = {k[len(prefix) :]: v for k, v in loaded.items() if k.startswith(prefix)}
    if not state:
        raise WeightsFileError(
            f"weights file {file} has no keys under prefix {prefix!r}; it has {_preview(list(loaded))}"
        )
    state = {k: v for k, v in state.items() if not k.startswith(tuple(skip_prefixes))}

    if head_prefixes is None:
        head_prefixes = getattr(module, "head_prefixes", ())
    expected = module.state_dict()
    # BatchNorm's batch counter is bookkeeping, not a weight; old torchvision files lack it
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    mismatched = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    head_mismatched = [k for k in mismatched if k.startswith(tuple(head_prefixes))]
    body_mismatched = [k for k in mismatched if k not in head_mismatched]

    problems = []
    if missing:
        problems.append(f"missing keys: {_preview(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_preview(unexpected)}")
    if body_mismatched:
        shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}" for k in body_mismatched]
        problems.append(f"shape mismatches (file vs network): {_preview(shapes)}")
    if problems:
        raise WeightsFileError(
            f"weights file {file} does not fit {type(module).__name__} "
            f"(prefix={prefix!r}, skip_prefixes={tuple(skip_prefixes)}): " + "; ".join(problems)
        )
    if head_mismatched:
        warnings.warn(
            f"weights file {file}: skipping head tensors with another class count "
            f"({_preview(head_mismatched)}); they keep their fresh initialisation",
            stacklevel=2,
        )
        state = {k: v for k, v in state.items() if k not in head_mismatched}
    module.load_state_dict(state, strict=False)  # strictness was checked above, with clearer messages
    return module


NORMS = ("batch", "group")
GROUPS = 32  # GroupNorm groups (Wu & He 2018), fewer when a layer has fewer channels


def norm_layer(norm: str, channels: int) -> nn.Module:
    """BatchNorm, or GroupNorm, whose statistics do not depend on the batch: the choice for batch size 1."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "group":
        return nn.GroupNorm(math.gcd(GROUPS, channels), channels)
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


class DoubleConv(nn.Sequential):
    """(conv3x3 -> norm -> ReLU) x 2; the conv bias is dropped because the norm re-centres anyway."""

    def __init__(self, in_channels: int, out_channels: int, norm: str = "batch") -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            norm_layer(norm, out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            norm_layer(norm, out_channels),
            nn.ReLU(inplace=True),
        )


class Up(nn.Module):
    """Upsample (B, C, h, w) to the skip's size, halve channels, concat the skip (B, C/2, ...), DoubleConv -> C/2."""

    def __init__(self, in_channels: int, *, bilinear: bool, norm: str = "batch") -> None:
        super().__init__()
        out_channels = in_channels // 2
        self.bilinear = bilinear
        if bilinear:
            self.reduce = nn.Conv2d(in_channels, out_channels, 1)
        else:
            self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.conv = DoubleConv(2 * out_channels, out_channels, norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        size = skip.shape[-2:]
        if self.bilinear:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)  # (B, C, *size)
            x = self.reduce(x)  # (B, C/2, *size)
        else:
            x = self.up(x)  # (B, C/2, 2h, 2w); floor pooling means 2h <= skip height, pad the odd row/col
            x = F.pad(x, (0, size[1] - x.shape[-1], 0, size[0] - x.shape[-2]))
        return self.conv(torch.cat([skip, x], dim=1))  # (B, C/2, *size)


class UNet(nn.Module):
    """Classic U-Net (Ronneberger et al. 2015) with BatchNorm (``norm="group"``: GroupNorm); any H, W >= 2**depth."""

    head_prefixes = ("head.",)

    def __init__(
        self,
        *,
        in_channels: int = 3,
        num_classes: int = 19,
        base_channels: int = 32,
        depth: int = 4,
        bilinear: bool = True,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"UNet depth must be >= 1, got {depth}")
        norm_layer(norm, 1)  # a bad name fails here, before any layer is built
        self.depth = depth
        widths = [base_channels * 2**i for i in range(depth + 1)]  # channels per level, bottleneck last
        self.stem = DoubleConv(in_channels, widths[0], norm)
        self.downs = nn.ModuleList(DoubleConv(widths[i], widths[i + 1], norm) for i in range(depth))
        self.ups = nn.ModuleList(Up(widths[i], bilinear=bilinear, norm=norm) for i in range(depth, 0, -1))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        if min(h, w) < 2**self.depth:
            raise ValueError(f"UNet of depth {self.depth} needs H, W >= {2**self.depth}, got {h}x{w}")
        x = self.stem(image)  # (B, c, H, W)
        skips = [x]
        for down in self.downs:
            x = down(F.max_pool2d(x, 2))  # level i: (B, c*2**i, H/2**i, W/2**i), floored
            skips.append(x)
        skips.pop()  # the bottleneck is x itself
        for up in self.ups:
            x = up(x, skips.pop())  # back up one level, halving channels
        return self.head(x)  # (B, num_classes, H, W)


def _check_one_source(weights_path: str | None, backbone_weights_path: str | None) -> None:
    if weights_path is not None and backbone_weights_path is not None:
        raise ValueError(
            f"give weights_path ({weights_path}) or backbone_weights_path ({backbone_weights_path}), not both: "
            "the whole-network weights would overwrite the backbone"
        )


class TorchvisionSegmenter(nn.Module):
    """A torchvision segmentation network's ``backbone`` and ``classifier`` registered directly, so this module's
    state_dict keys equal torchvision's and its released files load as they are; randomly initialised unless a
    path is given (``weights_path``: the whole network; ``backbone_weights_path``: an ImageNet backbone, read
    with ``backbone_file``'s ``load_weights`` arguments). Logits come back at the input size."""

    backbone_file: Mapping[str, Any] = {}  # load_weights arguments for an ImageNet backbone file
    network_file: Mapping[str, Any] = {}  # ... and for a whole-network file

    def __init__(self, net: nn.Module, weights_path: str | None, backbone_weights_path: str | None) -> None:
        super().__init__()
        _check_one_source(weights_path, backbone_weights_path)
        self.backbone = net.backbone
        self.classifier = net.classifier
        if backbone_weights_path is not None:
            load_weights(self.backbone, backbone_weights_path, **self.backbone_file)
        if weights_path is not None:
            load_weights(self, weights_path, **self.network_file)

    def features(self, image: torch.Tensor) -> Any:
        """What the classifier reads, from the backbone's output."""
        return self.backbone(image)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(self.features(image))  # (B, num_classes, H/8, W/8)
        # (B, num_classes, H, W)
        return F.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=False)


class DeepLabV3(TorchvisionSegmenter):
    """torchvision DeepLabV3-ResNet50 (output stride 8, no aux head).

    torchvision's released files load as they are (their ``aux_classifier.*`` is skipped).
    ``backbone_weights_path``: an ImageNet ResNet-50 state_dict (``fc.*`` is skipped).
    ImageNet backbones expect ImageNet-normalised inputs.
    """

    head_prefixes = ("classifier.4.",)  # the final 1x1 conv of DeepLabHead
    backbone_file = {"skip_prefixes": ("fc.",)}
    network_file = {"skip_prefixes": ("aux_classifier.",)}

    def __init__(
        self,
        *,
        num_classes: int = 19,
        weights_path: str | None = None,
        backbone_weights_path: str | None = None,
    ) -> None:
        net = deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False)
        super().__init__(net, weights_path, backbone_weights_path)

    def features(self, image: torch.Tensor) -> torch.Tensor:
        return self.backbone(image)["out"]  # (B, 2048, H/8, W/8)


class LRASPP(TorchvisionSegmenter):
    """torchvision LR-ASPP-MobileNetV3-Large; its classifier reads the backbone's
    {"low": (B, 40, H/8, W/8), "high": (B, 960, H/16, W/16)} as it is.

    ``backbone_weights_path``: an ImageNet MobileNetV3-Large state_dict; its ``features.*`` feed the backbone,
    the rest is ignored.
    """

    head_prefixes = ("classifier.low_classifier.", "classifier.high_classifier.")
    backbone_file = {"prefix": "features."}

    def __init__(
        self,
        *,
        num_classes: int = 19,
        weights_path: str | None = None,
        backbone_weights_path: str | None = None,
    ) -> None:
        net = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=num_classes)
        super().__init__(net, weights_path, backbone_weights_path)
