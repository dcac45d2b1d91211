"""FLOPs of one training batch per method at the gta5_study's scale (512×512 crops, batch 1 + 1, CycleGAN-size
networks, the U-Net of conf/scale/gta5_cityscapes.yaml), forward + backward, as torch's FlopCounterMode counts them.

    python experiments/gta5_study/flops.py > experiments/gta5_study/flops.txt

The CycleGAN steps are counted with the benchmark's own code (cyclesem/bench/steps.py) at 128×128 on the CPU and
scaled by 16: every network is fully convolutional, so its count grows with the pixels (checked here on the U-Net,
counted at both sizes on the meta device). The U-Net alone, per image, gives the segmenter-only methods.
"""

import contextlib

import torch
from torch.utils.flop_counter import FlopCounterMode

from cyclesem.bench.steps import BenchSettings, build_module, count_step_flops, variant_named
from cyclesem.method.harness import random_batch
from cyclesem.models.segmenter import UNet

SMALL, FULL = 128, 512
ADAM = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 2e-4}


def unet() -> UNet:
    return UNet(num_classes=19, base_channels=64, depth=4, norm="group")


def unet_flops(size: int) -> int:
    """Forward + backward of the U-Net on one size × size image (meta device: shapes only)."""
    segmenter = unet().to("meta")
    with FlopCounterMode(display=False) as counter:
        segmenter(torch.randn(1, 3, size, size, device="meta")).sum().backward()
    return counter.get_total_flops()


def step_flops(name: str) -> tuple[int, int]:
    """(whole step, the U-Net's share) of the benchmark's `name` step at SMALL × SMALL on the CPU."""
    settings = BenchSettings(height=SMALL, width=SMALL, seg_base_channels=64, seg_depth=4, optimizer_g=ADAM,
                             optimizer_seg=ADAM)
    variant = variant_named(name)
    module = build_module(settings, variant)
    module.segmenter = unet()  # group norm, as the study's (norm layers count no FLOPs either way)
    batch = random_batch(1, SMALL, SMALL)
    return count_step_flops(module, lambda: variant.step(module, batch), contextlib.nullcontext, False)


scale = (FULL / SMALL) ** 2
per_image = unet_flops(FULL)
print(f"U-Net forward + backward, one image: {unet_flops(SMALL) / 1e9:.1f} GFLOP at {SMALL}², "
      f"{per_image / 1e9:.1f} GFLOP at {FULL}² (× {per_image / unet_flops(SMALL):.2f})")
joint, joint_segmenter = step_flops("joint")
gan, _ = step_flops("cyclegan")  # generators and discriminators only
print(f"cyclesem step at {SMALL}²: {joint / 1e9:.1f} GFLOP (U-Net {joint_segmenter / 1e9:.1f}); "
      f"CycleGAN without the U-Net: {gan / 1e9:.1f} GFLOP")
methods = {
    "cyclesem": joint * scale,
    "cyclegan": gan * scale + 2 * per_image,  # + the U-Net on the stylized and the real image
    "baseline": 2 * per_image,  # one GTA5 and one Cityscapes image
    "target_only": per_image,  # one Cityscapes image
}
print(f"per batch at {FULL}×{FULL}, batch 1 + 1:")
for method, flops in methods.items():
    print(f"  {method:<12} {flops / 1e12:6.2f} TFLOP")
