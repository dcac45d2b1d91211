"""Train (or find in its cache) the warm-up CycleGAN that ``model.warm_start=true`` starts a run from, and print its
translation-score curve.

    python -m cyclesem.warmup seed=0                         # the synthetic pair's, seed 0 (conf/warmup_cyclegan/synthetic.yaml)
    python -m cyclesem.warmup seed=1 warmup.batches=40000    # another budget: another key, trained next to the first
    python -m cyclesem.warmup seed=0 warmup.patience=6       # stop after 6 evaluations without a better score
    python -m cyclesem.warmup seed=0 'model.gen_s2t.input_skip=true'   # the run's CycleGAN config is keyed

Training runs with the same data, model, scale, reference and seed find the same cache entry
(`python -m cyclesem.train method=cyclesem_warm seed=0`); see cyclesem/method/warmup.py and docs/warm_start.md.
"""

from __future__ import annotations

from typing import Any

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from cyclesem.method.warmup import (
    CURVE_FILE,
    CYCLEGAN_KEYS,
    RECORD_FILE,
    TRANSLATIONS_FILE,
    cyclegan_config,
    ensure_warmup,
)
from cyclesem.runtime.config import (
    CONF_DIR,
    ModelConfig,
    ReferenceConfig,
    WarmupConfig,
    plain_spec,
    validate_warmup,
)
from cyclesem.runtime.console import quiet_library_noise
from cyclesem.runtime.device import resolve_device
from cyclesem.runtime.errors import exit_on_user_error


def build_warmup(cfg: DictConfig) -> dict[str, Any]:
    """Render the pair if needed and ensure the warm-up of ``warmup.*`` and the run's CycleGAN; returns warmup.json."""
    if cfg.get("warmup") is None:
        raise ValueError("no warm-up to build: warmup is null for this data (conf/warmup_cyclegan/<data>.yaml)")
    validate_warmup(cfg.warmup)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    if cfg.data.get("prepare") is not None:
        instantiate(cfg.data.prepare)()
    device = resolve_device(cfg.device)
    # the CycleGAN keys alone: the rest of model.* refers to the trainer, which this app does not compose
    model = plain_spec(OmegaConf.masked_copy(cfg.model, [*CYCLEGAN_KEYS, "loss"]), ModelConfig)
    reference = plain_spec(cfg.reference, ReferenceConfig) if cfg.get("reference") is not None else None
    entry = ensure_warmup(plain_spec(cfg.warmup, WarmupConfig), cyclegan_config(model), reference, device,
                          batch_size=cfg.data.val_batch_size)
    record = entry.record
    print(f"warm-up {entry.key}: {entry.directory / RECORD_FILE}")
    training = record["training"]
    print(f"trained by `{training['command']}` on {training['device']} ({training['threads']} threads): "
          f"{record['batches_trained']} of {record['key_inputs']['warmup']['batches']} batches"
          f"{' (stopped early)' if record['stopped_early'] else ''} in {training['wall_time_s']:.0f} s on "
          f"{training['source_images']} source and {training['target_images']} target images (no labels)")
    if record["reference"] is not None:
        anchors = record["reference"]
        print(f"translation score against reference {anchors['key']}: floor {anchors['floor']:.4f}, ceiling "
              f"{anchors['ceiling'] if anchors['ceiling'] is None else round(anchors['ceiling'], 4)}")
    for point in record["curve"]:
        print(f"  batch {point['batch']:>7}: " + ", ".join(
            f"{k} {point[k]:.4f}" for k in ("translation_score", "translation_gain", "translation_l1", "g_cycle")
            if point.get(k) is not None))
    print(f"curve: {entry.directory / CURVE_FILE}")
    if (entry.directory / TRANSLATIONS_FILE).is_file():
        print(f"translations: {entry.directory / TRANSLATIONS_FILE}")
    return record


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="warmup")
def main(cfg: DictConfig) -> dict[str, Any]:
    quiet_library_noise()
    with exit_on_user_error():
        return build_warmup(cfg)


if __name__ == "__main__":
    main()
