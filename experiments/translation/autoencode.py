"""How fast can a generator even copy its input? Each variant learns the identity on 200 source images (L1,
Adam 2e-4, betas (0.5, 0.999), batch 4, 300 steps, one thread): no GAN, no cycle, just reconstruction.

    python experiments/translation/autoencode.py plain skip unet > experiments/translation/autoencode.txt

plain: ResnetGenerator(ngf=16, n_blocks=4) as conf/scale/synthetic.yaml builds it; skip: the same with
input_skip=True; unet: the segmenter's U-Net (GroupNorm) with 3 outputs and tanh. Prints the mean training L1 of
each 50 steps and the final L1 on 32 images.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cyclesem.models.generator import ResnetGenerator
from cyclesem.models.segmenter import UNet


def network(name: str) -> torch.nn.Module:
    if name == "unet":
        return torch.nn.Sequential(UNet(num_classes=3, base_channels=16, depth=4, norm="group"), torch.nn.Tanh())
    return ResnetGenerator(ngf=16, n_blocks=4, input_skip=name == "skip")


def main() -> None:
    torch.set_num_threads(1)
    root = Path(os.environ.get("CYCLESEM_DATA_DIR", "data")) / "synthetic/gta5/images"
    x = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in sorted(root.glob("*.png"))[:200]])
    images = torch.from_numpy(x.astype(np.float32)).permute(0, 3, 1, 2) / 127.5 - 1  # (200, 3, H, W)
    print(f"mean |x| (the L1 of predicting 0): {images.abs().mean().item():.4f}")
    for name in sys.argv[1:]:
        torch.manual_seed(0)
        net = network(name)
        opt = torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999))
        rng, losses, started = np.random.default_rng(0), [], time.time()
        for step in range(1, 301):
            batch = images[rng.integers(len(images), size=4)]
            loss = (net(batch) - batch).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if step % 50 == 0:
                print(f"{name} step {step}: train L1 {np.mean(losses[-50:]):.4f} ({time.time() - started:.0f} s)")
        with torch.no_grad():
            print(f"{name} final L1 on 32 images: {(net(images[:32]) - images[:32]).abs().mean().item():.4f}")


if __name__ == "__main__":
    main()
