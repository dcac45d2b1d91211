"""Evaluate a checkpoint's segmenter on the target val split: fwIoU, mIoU, per-class IoU, pixel accuracy; and,
where the data has a paired set, its translation G_S→T: translation_l1, translation_score and translation_gain with
the reference segmenter the training run used (read from its cache, never trained here).

    python -m cyclesem.evaluate ckpt_path=outputs/.../checkpoints/last.ckpt [save_predictions=true]
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.progress import track
from rich.table import Table

from cyclesem.data.labels import CLASS_NAMES
from cyclesem.data.visualize import colorize, save_label_png, save_png
from cyclesem.method.metrics import SegmentationMetrics
from cyclesem.method.reference_segmenter import translation_reference
from cyclesem.method.translation_eval import translation_scores
from cyclesem.report.tables import percent
from cyclesem.runtime.checkpoint import (
    build_module,
    load_checkpoint,
    stored_data_config,
    stored_reference_config,
)
from cyclesem.runtime.config import CONF_DIR, ConfigError, DataConfig
from cyclesem.runtime.device import resolve_device
from cyclesem.runtime.errors import exit_on_user_error
from cyclesem.study.run_record import write_metrics


def _save_predictions(predictions: torch.Tensor, names: list[str], output_dir: Path, color: bool,
                      label_ids: bool) -> None:
    for prediction, name in zip(predictions.cpu().numpy().astype("uint8"), names, strict=True):
        if color:
            save_png(colorize(prediction), output_dir / "color" / f"{name}.png")
        if label_ids:  # the official evaluator matches `<city>_<seq>_<frame>*.png` and wants label ids
            save_label_png(prediction, output_dir / "labelIds" / f"{name}_pred_labelIds.png", as_label_ids=True)


@torch.no_grad()
def evaluate(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    if cfg.split not in ("val", "test"):
        raise ConfigError(f"split={cfg.split!r} is out of range: expected val or test")
    checkpoint = load_checkpoint(cfg.ckpt_path)
    if cfg.get("data") is not None:  # data=...: composed without the train schema, which supplies its _target_
        data_config = OmegaConf.merge(OmegaConf.structured(DataConfig), OmegaConf.to_container(cfg.data, resolve=True))
    else:
        data_config = OmegaConf.create(stored_data_config(checkpoint))
    datamodule = instantiate(data_config, val_batch_size=cfg.batch_size)
    datamodule.prepare_data()
    datamodule.setup("test" if cfg.split == "test" else "validate")
    loaders = datamodule.test_dataloader() if cfg.split == "test" else datamodule.val_dataloader()
    loader = loaders[0]
    device = resolve_device(cfg.device)
    reference_config = stored_reference_config(checkpoint)
    reference = translation_reference(reference_config, datamodule.paired_set, device, batch_size=cfg.batch_size,
                                      train=False) if cfg.translation else None
    if cfg.translation and reference_config is not None and reference is None:
        print(f"no cached translation reference under {reference_config['cache_dir']}: no translation_score "
              "(build it with `python -m cyclesem.reference`)")
    module = build_module(checkpoint, cfg.ckpt_path, reference=reference)
    segmenter = module.segmenter.to(device).eval()
    metrics = SegmentationMetrics(len(CLASS_NAMES)).to(device)
    for batch in track(loader, description="evaluating"):
        image, label = batch["image"].to(device), batch["label"].to(device)
        logits = segmenter(image)  # (B, C, h, w)
        metrics.update(logits, label)
        if cfg.save_predictions or cfg.save_label_ids:
            up = torch.nn.functional.interpolate(logits, size=label.shape[-2:], mode="bilinear", align_corners=False)
            _save_predictions(up.argmax(1), list(batch["name"]), output_dir / "predictions",
                              cfg.save_predictions, cfg.save_label_ids)
    scores = metrics.compute()
    record = {
        "checkpoint": str(cfg.ckpt_path),
        "split": datamodule.split_name(cfg.split),
        "num_images": len(loader.dataset),
        **{k: float(scores[k]) for k in ("fwIoU", "mIoU", "pixel_acc")},
        "per_class_iou": {n: float(v) for n, v in zip(CLASS_NAMES, scores["per_class_iou"], strict=True)},
    }
    if cfg.translation and module.has_gan and len(loaders) > 1:
        record.update(translation_scores(module, track(loaders[1], description="scoring translations"), device))
    write_metrics(output_dir, record)
    table = Table(title=f"{cfg.ckpt_path} on {record['num_images']} images of {record['split']}")
    table.add_column("class")
    table.add_column("IoU", justify="right")
    for name, value in record["per_class_iou"].items():
        table.add_row(name, percent(None if math.isnan(value) else value))  # nan: absent from truth and prediction
    for key in ("fwIoU", "mIoU", "pixel_acc"):
        table.add_row(f"[bold]{key}", f"[bold]{percent(record[key])}")
    for key in ("translation_score", "translation_gain"):
        if key in record:
            table.add_row(f"[bold]{key}", f"[bold]{percent(record[key])}")
    if "translation_l1" in record:
        table.add_row("[bold]translation_l1", f"[bold]{record['translation_l1']:.3f}")
    Console().print(table)
    print(f"metrics: {output_dir / 'metrics.json'}")
    return record


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="evaluate")
def main(cfg: DictConfig) -> dict[str, Any]:
    with exit_on_user_error():
        return evaluate(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
