"""CycleGAN ResNet generator (Johnson et al. 2016 / Zhu et al. 2017), used for ``gen_s2t`` and ``gen_t2s``.

Layout for ngf=64, n_blocks=9 (11,378,179 parameters):
    c7s1-64, d128, d256, 9 x R256, u128, u64, c7s1-3 -> tanh
Instance norm without affine parameters and no running statistics, so a
translated image depends only on itself, never on the batch it came in.
"""

from __future__ import annotations

import torch
from torch import nn

from cyclesem.models.init import init_gan_weights

N_DOWNSAMPLING = 2  # two stride-2 convs: spatial size must be divisible by 2**2


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
    ) -> None:
        super().__init__()
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
            layers += [
                nn.ConvTranspose2d(
                    c, c // 2, kernel_size=3, stride=2, padding=1, output_padding=1, bias=True
                ),
                nn.InstanceNorm2d(c // 2),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, kernel_size=7, bias=True), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        init_gan_weights(self, gain=init_gain)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        # image: (B, in_channels, H, W) -> stem (B, ngf, H, W) -> down (B, 4ngf, H/4, W/4)
        # -> residual blocks (B, 4ngf, H/4, W/4) -> up (B, ngf, H, W) -> (B, out_channels, H, W) in [-1, 1]
        h, w = image.shape[-2:]
        factor = 2**N_DOWNSAMPLING
        if h % factor or w % factor:
            raise ValueError(
                f"ResnetGenerator needs height and width divisible by {factor}, got {h}x{w} "
                "(crop or resize the images to a multiple of 4)"
            )
        return self.model(image)
