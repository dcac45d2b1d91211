"""Train (or find in its cache) the translation score's reference segmenter and print its anchors.

    python -m cyclesem.reference                        # the synthetic pair's reference (conf/reference/synthetic.yaml)
    python -m cyclesem.reference reference.batches=3000 # another config: another key, trained next to the first
    python -m cyclesem.reference data=gta5_cityscapes   # GTA5 → Cityscapes: trained on Cityscapes train
    python -m cyclesem.reference data=gta5_cityscapes reference.checkpoint=PATH   # or weights trained elsewhere

Training runs find the same cache entry (same reference.* and data.*); see cyclesem/method/reference_segmenter.py.
"""

from __future__ import annotations

from typing import Any

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from cyclesem.method.reference_segmenter import RECORD_FILE, ensure_anchors, ensure_reference
from cyclesem.runtime.config import CONF_DIR, ReferenceConfig, plain_spec
from cyclesem.runtime.console import quiet_library_noise
from cyclesem.runtime.device import resolve_device
from cyclesem.runtime.errors import exit_on_user_error


def build_reference(cfg: DictConfig) -> dict[str, Any]:
    """Render the pair if needed, ensure the reference and its anchors on ``data.paired``; returns reference.json."""
    if cfg.get("reference") is None or (cfg.reference.get("checkpoint") is None
                                        and cfg.reference.get("train_set") is None):
        raise ValueError("no reference to build: reference.checkpoint and reference.train_set are both null "
                         "(expected a train_set to train on, as conf/reference/<data>.yaml has, or a checkpoint)")
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    if cfg.data.get("prepare") is not None:
        instantiate(cfg.data.prepare)()
    device = resolve_device(cfg.device)
    # through the train schema's node, as a training run composes it: the same spec, so the same cache key
    entry = ensure_reference(plain_spec(cfg.reference, ReferenceConfig), device)
    if cfg.data.get("paired") is not None:
        ensure_anchors(entry, instantiate(cfg.data.paired)(), device, batch_size=cfg.data.val_batch_size)
    record = entry.record
    print(f"reference {entry.key}: {entry.directory / RECORD_FILE}")
    if "training" in record:
        training = record["training"]
        print(f"trained by `{training['command']}` on {training['device']} ({training['threads']} threads): "
              f"{training['batches']} batches in {training['wall_time_s']:.0f} s; val mIoU "
              f"{training.get('val_mIoU', float('nan')):.4f} on {training.get('val_images', 0)} images")
    else:
        print(f"weights: {record['checkpoint']}")
    for anchor in record["anchors"].values():
        ceiling = f"{anchor['ceiling']:.4f}" if "ceiling" in anchor else "— (no paired renders)"
        print(f"anchors on {anchor['images']} paired scenes ({anchor['first']}..{anchor['last']}, "
              f"{anchor['image_size'][0]}x{anchor['image_size'][1]}): floor {anchor['floor']:.4f}, ceiling {ceiling}")
    return record


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="reference")
def main(cfg: DictConfig) -> dict[str, Any]:
    quiet_library_noise()
    with exit_on_user_error():
        return build_reference(cfg)


if __name__ == "__main__":
    main()
