"""predict: a folder of images of any size → label ids (equal to evaluate's), colours and overlays."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from cyclesem.data.image_io import DatasetError
from cyclesem.evaluate import evaluate
from cyclesem.predict import predict
from cyclesem.runtime.checkpoint import CheckpointError
from tests.conftest import compose_config, default_pair_root


@pytest.fixture
def input_dir(tmp_path, data_dir):
    """The smoke pair's 4 val images in their city folders, plus two source images at other sizes (png, jpg)."""
    root = tmp_path / "in"
    val = default_pair_root(data_dir) / "cityscapes" / "leftImg8bit" / "val"
    shutil.copytree(val, root / "val")
    sources = sorted((default_pair_root(data_dir) / "gta5" / "images").glob("*.png"))
    Image.open(sources[0]).resize((80, 40)).save(root / "wide.png")
    (root / "other").mkdir()
    Image.open(sources[1]).resize((56, 24)).save(root / "other" / "small.jpg")
    return root


def run_predict(ckpt, input_dir, output_dir, *overrides):
    cfg = compose_config("predict", [f"ckpt_path={ckpt}", f"input_dir={input_dir}", f"output_dir={output_dir}",
                                     "device=cpu", *overrides], output_dir)
    return predict(cfg)


def test_predict_writes_three_outputs_per_image_and_evaluates_label_ids(smoke_checkpoint, input_dir, tmp_path,
                                                                          data_dir):
    out = tmp_path / "out"
    result = run_predict(smoke_checkpoint, input_dir, out, "batch_size=3")
    inputs = sorted(p for p in input_dir.rglob("*") if p.suffix in (".png", ".jpg"))
    assert len(inputs) == 6 and len({Image.open(p).size for p in inputs}) == 3  # sizes differ
    assert sorted(result["written"]) == sorted(str(p.relative_to(input_dir).with_suffix(".png")) for p in inputs)
    for path in inputs:
        relative = path.relative_to(input_dir).with_suffix(".png")
        size = Image.open(path).size
        label_ids, colour, overlay = (Image.open(out / folder / relative) for folder in ("labelIds", "color", "overlay"))
        assert label_ids.mode == "L" and colour.mode == overlay.mode == "RGB"
        assert label_ids.size == colour.size == overlay.size == size
        assert set(np.unique(np.array(label_ids)).tolist()) <= {7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25,
                                                               26, 27, 28, 31, 32, 33}

    # the same images through evaluate (the val loader, the stored data config): the same label ids
    eval_dir = tmp_path / "eval"
    evaluate(compose_config("evaluate", [f"ckpt_path={smoke_checkpoint}", f"paths.data_dir={data_dir}",
                                         "save_label_ids=true", "device=cpu", "split=val"], eval_dir), eval_dir)
    evaluated = sorted((eval_dir / "predictions" / "labelIds").glob("*_pred_labelIds.png"))
    assert len(evaluated) == 4
    for saved in evaluated:
        name = saved.name.replace("_pred_labelIds.png", "")
        city = name.split("_")[0]
        predicted = out / "labelIds" / "val" / city / f"{name}_leftImg8bit.png"
        assert np.array_equal(np.array(Image.open(predicted)), np.array(Image.open(saved))), name


def test_predict_resize_brings_predictions_back_to_image_size(smoke_checkpoint, input_dir, tmp_path):
    out = tmp_path / "out"
    run_predict(smoke_checkpoint, input_dir, out, "resize=[48,96]", "outputs=[label_ids]")
    assert not (out / "color").exists() and not (out / "overlay").exists()
    assert Image.open(out / "labelIds" / "wide.png").size == (80, 40)
    assert Image.open(out / "labelIds" / "other" / "small.png").size == (56, 24)


def test_unreadable_image_is_skipped_with_a_warning_or_stops(smoke_checkpoint, input_dir, tmp_path, capsys):
    (input_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    result = run_predict(smoke_checkpoint, input_dir, tmp_path / "out")
    assert result["skipped"] == [str(input_dir / "broken.png")] and len(result["written"]) == 6
    assert "warning: skipping cannot read image" in capsys.readouterr().err
    with pytest.raises(DatasetError, match="broken.png"):
        run_predict(smoke_checkpoint, input_dir, tmp_path / "out2", "on_error=stop")


def test_checkpoint_without_a_segmenter_is_refused(smoke_checkpoint, input_dir, tmp_path):
    checkpoint = torch.load(smoke_checkpoint, map_location="cpu", weights_only=True)
    checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("segmenter.")}
    stripped = tmp_path / "no_segmenter.ckpt"
    torch.save(checkpoint, stripped)
    with pytest.raises(CheckpointError, match="holds no segmenter"):
        run_predict(stripped, input_dir, tmp_path / "out")


def test_empty_folder_is_an_error(smoke_checkpoint, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no .png/.jpg images"):
        run_predict(smoke_checkpoint, tmp_path / "empty", tmp_path / "out")


def test_evaluate_composes_and_runs_with_another_data_config(smoke_checkpoint, tmp_path, data_dir):
    """evaluate data=gta5_cityscapes (the dataset moved, or another one): used to stop at ${seed}."""
    # the val split: data=gta5_cityscapes scores Cityscapes' val split for both split=val and split=test
    stored = evaluate(compose_config("evaluate", [f"ckpt_path={smoke_checkpoint}", f"paths.data_dir={data_dir}",
                                                  "split=val"], tmp_path / "a"), tmp_path / "a")
    moved = tmp_path / "moved"
    shutil.copytree(default_pair_root(data_dir) / "cityscapes", moved)
    cfg = compose_config("evaluate", [f"ckpt_path={smoke_checkpoint}", "data=gta5_cityscapes",
                                      f"data.target_train.root={moved}", "data.target_val.transform.resize=null"],
                         tmp_path / "b")
    other = evaluate(cfg, tmp_path / "b")
    assert other["num_images"] == stored["num_images"] == 4
    assert other["mIoU"] == pytest.approx(stored["mIoU"], abs=1e-6)
