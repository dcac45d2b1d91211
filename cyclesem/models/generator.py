"""CycleGAN ResNet generator (Johnson et al. 2016 / Zhu et al. 2017), used for ``gen_s2t`` and ``gen_t2s``.

Layout for ngf=64, n_blocks=9 (11,378,179 parameters):
    c7s1-64, d128, d256, 9 x R256, u128, u64, c7s1-3 -> tanh
Instance norm without affine parameters and no running statistics, so a
translated image depends only on itself, never on the batch it came in.

That norm also makes the plain network blind to an image's global brightness and colour cast: instance norm
removes any per-channel gain and offset of its input, and every path from input to output passes through one,
so ``G(a·x + c) = G(x)``. Two options beside the CycleGAN layout (``conf/scale/synthetic.yaml`` turns both
on; see docs/results.md#translation-quality for their measured effect):

- ``input_skip=True``: the last 7x7 conv also sees the raw input image, so absolute colours and fine
  detail reach the output directly and the network learns a correction of the input instead of re-drawing it;
- ``upsample="resize"``: nearest-neighbour upsampling + 3x3 conv instead of transposed convolution
  (Odena et al. 2016), which leaves no checkerboard pattern;
- ``residual=True``: the output conv predicts a correction ``z`` of the input in tanh's pre-activation space,
  ``G(x) = tanh(atanh(x) + z)``, and starts at zero, so the generator starts as the identity: a sharp image
  from the first step, which the adversarial loss then restyles (the plain layout starts as a blur and has to
  learn to draw the scene back before it can restyle it).
"""

from __future__ import annotations

import torch
from torch import nn

from cyclesem.models.init import init_gan_weights

N_DOWNSAMPLING = 2  # two stride-2 convs: spatial size must be divisible by 2**2
UPSAMPLING = ("transpose", "resize")
ATANH_LIMIT = 0.995  # residual mode: |x| is clamped below 1 before atanh (atanh(±1) = ±inf)


def upsampling_layer(mode: str, in_channels: int, out_channels: int) -> nn.Module:
    """(B, in, h, w) -> (B, out, 2h, 2w): a stride-2 transposed conv, or nearest resize + 3x3 conv."""
    if mode == "transpose":
        return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1,
                                  output_padding=1, bias=True)
    if mode == "resize":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                             nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=True))
    raise ValueError(f"upsample must be one of {UPSAMPLING}, got {mode!r}")


class ResnetBlock(nn.Module):
    """x + conv-norm-relu-conv-norm(x), reflection padded to avoid border artefacts."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3, bias=True),
            nn.InstanceNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3, bias=True),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)  # (B, C, h, w)


class ResnetGenerator(nn.Module):
    """Image-to-image translator; images in and out are in [-1, 1], shape (B, C, H, W) with H, W % 4 == 0."""

    def __init__(
        self,
        *,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        init_gain: float = 0.02,
        upsample: str = "transpose",
        input_skip: bool = False,
        residual: bool = False,
    ) -> None:
        super().__init__()
        upsampling_layer(upsample, 1, 1)  # a bad name fails here, before any layer is built
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        # bias=True everywhere: instance norm has no affine shift, CycleGAN keeps the conv bias
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, kernel_size=7, bias=True),
            nn.InstanceNorm2d(ngf),
            nn.ReLU(inplace=True),
        ]
        for i in range(N_DOWNSAMPLING):
            c = ngf * 2**i
            layers += [
                nn.Conv2d(c, 2 * c, kernel_size=3, stride=2, padding=1, bias=True),
                nn.InstanceNorm2d(2 * c),
                nn.ReLU(inplace=True),
            ]
        c = ngf * 2**N_DOWNSAMPLING
        layers += [ResnetBlock(c) for _ in range(n_blocks)]
        for i in range(N_DOWNSAMPLING):
            c = ngf * 2 ** (N_DOWNSAMPLING - i)
            layers += [upsampling_layer(upsample, c, c // 2), nn.InstanceNorm2d(c // 2), nn.ReLU(inplace=True)]
        if residual and in_channels != out_channels:
            raise ValueError(f"residual=True corrects the input image: in_channels ({in_channels}) must equal "
                             f"out_channels ({out_channels})")
        self.input_skip, self.residual = input_skip, residual
        # the output conv reads the features (B, ngf, H, W) and, with input_skip, the raw image beside them. In the
        # CycleGAN layout (neither option) the layers stay in one Sequential, so the parameter names are CycleGAN's
        # and older checkpoints load
        head = [nn.ReflectionPad2d(3),
                nn.Conv2d(ngf + (in_channels if input_skip else 0), out_channels, kernel_size=7, bias=True),
                nn.Identity() if residual else nn.Tanh()]
        plain = not (input_skip or residual)
        self.model = nn.Sequential(*layers, *head) if plain else nn.Sequential(*layers)
        self.head = None if plain else nn.Sequential(*head)
        init_gan_weights(self, gain=init_gain)
        if residual:  # z = 0: the identity at the start
            nn.init.zeros_(self.head[1].weight)
            nn.init.zeros_(self.head[1].bias)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        # image: (B, in_channels, H, W) -> stem (B, ngf, H, W) -> down (B, 4ngf, H/4, W/4)
        # -> residual blocks (B, 4ngf, H/4, W/4) -> up (B, ngf, H, W) [-> concat the image (B, ngf + 3, H, W)]
        # -> 7x7 conv + tanh (B, out_channels, H, W) in [-1, 1] (residual: tanh(atanh(image) + 7x7 conv))
        h, w = image.shape[-2:]
        factor = 2**N_DOWNSAMPLING
        if h % factor or w % factor:
            raise ValueError(
                f"ResnetGenerator needs height and width divisible by {factor}, got {h}x{w} "
                "(crop or resize the images to a multiple of 4)"
            )
        if self.head is None:
            return self.model(image)
        features = self.model(image)  # (B, ngf, H, W)
        out = self.head(torch.cat([features, image], dim=1) if self.input_skip else features)
        if self.residual:  # out is z, the correction of the image in pre-tanh space
            return torch.tanh(torch.atanh(image.clamp(-ATANH_LIMIT, ATANH_LIMIT)) + out)
        return out
