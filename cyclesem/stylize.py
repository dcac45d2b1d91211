"""Translate a folder of images with a checkpoint's generator, keeping relative paths and file names.

    python -m cyclesem.stylize ckpt_path=... input_dir=$GTA5_ROOT/images output_dir=gta5_as_cityscapes/images
"""

from __future__ import annotations

from pathlib import Path

import hydra
import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from rich.progress import track

from cyclesem.data.image_io import read_rgb
from cyclesem.data.visualize import save_png, to_uint8_image
from cyclesem.runtime.checkpoint import CheckpointError, build_module, load_checkpoint
from cyclesem.runtime.config import CONF_DIR
from cyclesem.runtime.device import resolve_device
from cyclesem.runtime.errors import exit_on_user_error
from cyclesem.runtime.inference import list_images, translate


@torch.no_grad()
def translate_image(generator: torch.nn.Module, image: np.ndarray, device: torch.device,
                    resize: tuple[int, int] | None = None) -> np.ndarray:
    """(H, W, 3) uint8 → (H', W', 3) uint8; reflection-padded to a multiple of 4 for the generator."""
    x = torch.from_numpy(image).permute(2, 0, 1).float().div(127.5).sub(1).unsqueeze(0).to(device)  # (1, 3, H, W)
    if resize is not None:
        x = F.interpolate(x, size=tuple(resize), mode="bilinear", align_corners=False)
    return to_uint8_image(translate(generator, x)[0])


def stylize(cfg: DictConfig) -> list[Path]:
    if cfg.direction not in ("s2t", "t2s"):
        raise ValueError(f"direction={cfg.direction!r} is not one of s2t, t2s")
    checkpoint = load_checkpoint(cfg.ckpt_path)
    module = build_module(checkpoint, cfg.ckpt_path)
    if not module.has_gan:
        raise CheckpointError(f"checkpoint {cfg.ckpt_path} is a baseline run: it has no generators to stylize with")
    device = resolve_device(cfg.device)
    generator = (module.gen_s2t if cfg.direction == "s2t" else module.gen_t2s).to(device).eval()
    input_dir, output_dir = Path(cfg.input_dir), Path(cfg.output_dir)
    if input_dir.resolve() == output_dir.resolve():
        raise ValueError("output_dir must differ from input_dir (stylize never overwrites its inputs)")
    written = []
    for path in track(list_images(input_dir), description=f"stylizing ({cfg.direction})"):
        out = output_dir / path.relative_to(input_dir).with_suffix(".png")
        save_png(translate_image(generator, read_rgb(path), device, cfg.resize), out)
        written.append(out)
    print(f"wrote {len(written)} images to {output_dir}")
    return written


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="stylize")
def main(cfg: DictConfig) -> None:
    with exit_on_user_error():
        stylize(cfg)


if __name__ == "__main__":
    main()
