"""History of generated images for the discriminators (Shrivastava et al. 2017, as used by CycleGAN).

Showing D a mix of current and past fakes keeps it from chasing the generator's latest mode. Unlike
CycleGAN's pool, the coin flips come from a private ``torch.Generator`` so a run can be reproduced and a
resumed run continues exactly (the generator state is part of :meth:`ImagePool.state_dict`).
"""

from __future__ import annotations

import torch
from torch import Tensor


class ImagePool:
    """Buffer of up to ``size`` past images; ``size=0`` disables it.

    ``seed=None`` seeds from ``torch.initial_seed()``, so ``seed_everything`` makes the pool reproducible;
    give the two pools of a CycleGAN different seeds if their swap decisions should not coincide.
    """

    def __init__(self, size: int = 50, seed: int | None = None) -> None:
        if size < 0:
            raise ValueError(f"image pool size must be >= 0; got {size}")
        self.size = size
        self._images: list[Tensor] = []  # each (C, H, W), detached
        self._generator = torch.Generator()
        self._generator.manual_seed(torch.initial_seed() if seed is None else seed)

    def __len__(self) -> int:
        return len(self._images)

    def query(self, images: Tensor) -> Tensor:
        """Return a batch (B, C, H, W) mixing ``images`` with stored ones; the result is detached
        (except with ``size=0``, where ``images`` comes back as given).

        While the pool is filling, each image is stored and returned as is. Once full, each image is,
        with probability 0.5, swapped for a random stored one (which it replaces in the pool), else
        returned as is.
        """
        if self.size == 0:
            return images
        if images.ndim != 4:
            raise ValueError(f"image pool expects a batch (B, C, H, W); got {tuple(images.shape)}")
        if self._images and images.shape[1:] != self._images[0].shape:
            raise ValueError(
                f"image pool holds images of shape {tuple(self._images[0].shape)}; "
                f"got a batch of {tuple(images.shape[1:])}"
            )
        if self._images and self._images[0].device != images.device:  # restored from a checkpoint (CPU tensors)
            self._images = [stored.to(images.device) for stored in self._images]
        returned = []
        coins = {"generator": self._generator, "device": self._generator.device}  # on the CPU, whatever the images'
        for image in images.detach():  # (C, H, W)
            if len(self._images) < self.size:
                self._images.append(image.clone())
                returned.append(image)
            elif torch.rand(1, **coins).item() > 0.5:
                index = int(torch.randint(self.size, (1,), **coins).item())
                returned.append(self._images[index].to(dtype=image.dtype))  # stored under another precision?
                self._images[index] = image.clone()
            else:
                returned.append(image)
        return torch.stack(returned)

    def state_dict(self) -> dict:
        """The stored images (N, C, H, W) on their device, and the coin generator's state."""
        # (N, C, H, W); an empty pool (a baseline's, or before the first discriminator step) on the CPU
        images = torch.stack(self._images) if self._images else torch.empty(0, device="cpu")
        return {"size": self.size, "images": images, "generator": self._generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        if state["size"] != self.size:
            raise ValueError(
                f"image pool state was saved with size {state['size']}; this pool has size {self.size}"
            )
        images = state["images"]
        self._images = [image.clone() for image in images] if images.numel() else []
        self._generator.set_state(state["generator"])
