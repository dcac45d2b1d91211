"""The fixed val samples: the same images after every validation, with predictions (CSV PNGs, W&B masks)."""

from __future__ import annotations

import numpy as np
import wandb
from PIL import Image

from cyclesem.train import train
from tests.conftest import compose_train


def test_the_same_val_images_are_logged_every_validation_as_png(tmp_path, data_dir):
    train(compose_train(["data.real_frac=0.5"], tmp_path, data_dir, logger="csv"))  # 2 epochs, val after each
    panels = sorted((tmp_path / "csv").rglob("val_samples/epoch*.png"))
    assert [p.name for p in panels] == ["epoch000.png", "epoch001.png"]
    first, second = (np.array(Image.open(p)) for p in panels)
    assert first.shape == second.shape  # 4 rows (the smoke val split): image | prediction | ground truth
    height, width = 32, 64
    image_column = slice(17, 17 + 4 * (height + 1)), slice(0, width)
    truth_column = slice(17, 17 + 4 * (height + 1)), slice(2 * (width + 1), 3 * (width + 1) - 1)
    assert np.array_equal(first[image_column], second[image_column])  # the same images …
    assert np.array_equal(first[truth_column], second[truth_column])  # … and ground truth every epoch


def test_val_samples_reach_wandb_as_masks(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    try:
        train(compose_train(["data.real_frac=0.5", "trainer.max_epochs=1", "model.log_images_every_n_steps=0"],
                            tmp_path, data_dir, logger="wandb"))
    finally:
        wandb.finish()
    (run,) = (tmp_path / "wandb").glob("offline-run-*")
    media = run / "files" / "media"
    assert len(list(media.rglob("samples_*.png"))) >= 4  # the train panels are off: these are the val samples
    assert len(list(media.rglob("*.mask.png"))) == 8  # prediction + ground truth for each of the 4 images
