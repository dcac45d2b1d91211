"""Weight initialisation for the GAN networks (CycleGAN's ``init_weights('normal')``)."""

from __future__ import annotations

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.instancenorm import _InstanceNorm

_NORMS = (_BatchNorm, _InstanceNorm, nn.GroupNorm, nn.LayerNorm)


def init_gan_weights(module: nn.Module, gain: float = 0.02) -> nn.Module:
    """Draw conv/linear weights from N(0, gain), affine norm scales from N(1, gain), all biases 0.

    Works in place and returns ``module`` so it can wrap a constructor (e.g. as a Hydra ``_target_``).
    The small gain keeps the initial generator close to a smooth map and the
    discriminator close to uninformative, which is what the CycleGAN recipe was tuned for.
    """
    if gain <= 0:
        raise ValueError(f"init gain must be > 0, got {gain}")
    for m in module.modules():
        if isinstance(m, (_ConvNd, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, _NORMS) and getattr(m, "weight", None) is not None:
            # instance norm here is affine=False, so this only touches BatchNorm-style layers
            nn.init.normal_(m.weight, 1.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module
