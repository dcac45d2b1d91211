"""PatchGAN discriminator (Isola et al. 2017), used for ``disc_s`` and ``disc_t``.

With n_layers=3 each output logit sees a 70x70 input patch; with ndf=64 the
network has 2,764,737 parameters. It returns one real/fake logit per patch, so
the GAN loss averages over patches and the discriminator judges texture and
style rather than global layout.
"""

from __future__ import annotations

import torch
from torch import nn

from cyclesem.models.init import init_gan_weights

KERNEL = 4
PADDING = 1
MAX_CHANNEL_MULT = 8


class PatchDiscriminator(nn.Module):
    """(B, in_channels, H, W) image -> (B, 1, H/2**n_layers - 2, W/2**n_layers - 2) patch logits."""

    def __init__(
        self, *, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, init_gain: float = 0.02
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.n_layers = n_layers
        # first layer has no norm: normalising raw pixels would throw away the colour statistics being judged
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, KERNEL, stride=2, padding=PADDING),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, MAX_CHANNEL_MULT)
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, KERNEL, stride=2, padding=PADDING, bias=True),
                nn.InstanceNorm2d(ndf * mult),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        prev, mult = mult, min(2**n_layers, MAX_CHANNEL_MULT)
        layers += [
            nn.Conv2d(ndf * prev, ndf * mult, KERNEL, stride=1, padding=PADDING, bias=True),
            nn.InstanceNorm2d(ndf * mult),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * mult, 1, KERNEL, stride=1, padding=PADDING),
        ]
        self.model = nn.Sequential(*layers)
        init_gan_weights(self, gain=init_gain)

    def min_input_size(self) -> int:
        """Smallest side length that still yields one patch (each stride-2 conv halves, each k4 s1 conv drops 1)."""
        return 3 * 2**self.n_layers

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        # image: (B, C, H, W) -> n_layers stride-2 convs (B, ndf*mult, H/2**n, W/2**n)
        # -> two k4 s1 p1 convs, each shrinking by 1 -> (B, 1, H/2**n - 2, W/2**n - 2)
        h, w = image.shape[-2:]
        if min(h, w) < self.min_input_size():
            raise ValueError(
                f"PatchDiscriminator with n_layers={self.n_layers} needs inputs of at least "
                f"{self.min_input_size()}x{self.min_input_size()}, got {h}x{w}"
            )
        return self.model(image)
