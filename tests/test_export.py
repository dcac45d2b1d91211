"""export: the segmenter as ONNX (run in onnxruntime) and TorchScript, equal to PyTorch on the val images."""

from __future__ import annotations

import json

import numpy as np
import onnx  # the [export] extra, which `make` installs
import onnxruntime
import pytest
import torch

from cyclesem.data.image_io import read_rgb
from cyclesem.export import export
from cyclesem.runtime.inference import Preprocess, load_segmenter
from tests.conftest import compose_config, default_pair_root


@pytest.fixture(scope="module")
def val_images(data_dir):
    """The smoke pair's target val images as the segmenter takes them: (4, 3, 32, 64) in [-1, 1]."""
    paths = sorted((default_pair_root(data_dir) / "cityscapes" / "leftImg8bit" / "val").rglob("*.png"))
    preprocess = Preprocess(None)
    return torch.stack([preprocess(read_rgb(p)) for p in paths])


def run_export(ckpt, output, fmt):
    return export(compose_config("export", [f"ckpt_path={ckpt}", f"format={fmt}", f"output={output}"]))


def test_onnx_in_onnxruntime_equals_pytorch_on_the_val_images(smoke_checkpoint, val_images, tmp_path, data_dir):
    path = tmp_path / "segmenter.onnx"
    record = run_export(smoke_checkpoint, path, "onnx")
    assert record["max_abs_diff"] < 1e-4
    model = onnx.load(str(path))
    metadata = {p.key: p.value for p in model.metadata_props}
    assert "[-1, 1]" in metadata["input"] and json.loads(metadata["class_names"])[0] == "road"
    dims = [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "", "height", "width"]  # dynamic batch and image size, 3 channels

    segmenter, _ = load_segmenter(smoke_checkpoint)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    # the whole val split in one batch, one image alone, and an image size the export never saw
    other_size = torch.nn.functional.interpolate(val_images[:2], size=(40, 72), mode="bilinear")
    for batch in (val_images, val_images[:1], other_size):
        (onnx_logits,) = session.run(["logits"], {"image": batch.numpy()})
        with torch.no_grad():
            torch_logits = segmenter(batch).numpy()
        assert onnx_logits.shape == torch_logits.shape == (len(batch), 19, *batch.shape[-2:])
        assert np.abs(onnx_logits - torch_logits).max() < 1e-4


def test_torchscript_equals_pytorch_on_the_val_images(smoke_checkpoint, val_images, tmp_path):
    path = tmp_path / "segmenter.pt"
    record = run_export(smoke_checkpoint, path, "torchscript")
    assert record["max_abs_diff"] < 1e-4
    extra = {"cyclesem.json": ""}
    traced = torch.jit.load(str(path), _extra_files=extra)
    assert json.loads(extra["cyclesem.json"])["class_names"].startswith('["road"')
    segmenter, _ = load_segmenter(smoke_checkpoint)
    with torch.no_grad():
        for batch in (val_images, val_images[:1]):
            assert torch.allclose(traced(batch), segmenter(batch), atol=1e-4)


def test_unknown_format_is_refused(smoke_checkpoint, tmp_path):
    with pytest.raises(ValueError, match="format='tflite'"):
        run_export(smoke_checkpoint, tmp_path / "x", "tflite")
