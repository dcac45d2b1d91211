"""Building `CycleSemModule` from a ``model`` config: a composed one (`cyclesem.train`) or the plain copy a
checkpoint stores (`cyclesem.runtime.checkpoint`)."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate

from cyclesem.method.module import CycleSemModule


def instantiate_module(model_config: Any, **from_data: Any) -> CycleSemModule:
    """Hydra-instantiate the module; `from_data` are the numbers train.build derives from the data (class
    weights, the stylized-loss weight). For the baseline the CycleGAN networks are not even built."""
    skipped = {} if model_config.get("style_transfer", True) else dict.fromkeys(CycleSemModule.GAN_KEYS)
    return instantiate(model_config, _convert_="object", **skipped, **from_data)
