"""Export a checkpoint's segmenter F_T for deployment: ONNX (dynamic batch, height and width) or TorchScript.

    python -m cyclesem.export ckpt_path=outputs/.../checkpoints/last.ckpt format=onnx output=segmenter.onnx

The exported network is the segmenter alone: input ``image``, float32 (B, 3, H, W), RGB scaled to [-1, 1]
(``x / 127.5 - 1``) and resized as the checkpoint's evaluation did (stored as ONNX metadata ``eval_resize``);
output ``logits``, float32 (B, 19, H, W), whose argmax over dim 1 is the Cityscapes trainId. After writing, the
file is loaded back (onnxruntime for ONNX, when installed: ``pip install -e '.[export]'``) and compared with
PyTorch at two input sizes and batch sizes.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig
from torch import nn

import cyclesem
from cyclesem.data.labels import CLASS_NAMES
from cyclesem.runtime.config import CONF_DIR
from cyclesem.runtime.errors import MissingExtraError, exit_on_user_error
from cyclesem.runtime.inference import eval_resize, load_segmenter

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
INPUT_NAME, OUTPUT_NAME = "image", "logits"
FALLBACK_SIZE = (256, 512)  # the traced example when the checkpoint evaluated at native size
INPUT_SPEC = "float32 (B, 3, H, W), RGB scaled to [-1, 1]: x / 127.5 - 1"
OUTPUT_SPEC = f"float32 (B, {len(CLASS_NAMES)}, H, W) logits; argmax over dim 1 = Cityscapes trainId"


def default_output(ckpt_path: str | Path, fmt: str) -> Path:
    ckpt_path = Path(ckpt_path)
    return ckpt_path.with_name(f"{ckpt_path.stem}.segmenter{FORMATS[fmt]}")


def export_onnx(segmenter: nn.Module, example: torch.Tensor, output: Path, metadata: dict[str, str],
                opset: int) -> None:
    import onnx  # the [export] extra

    dynamic = {0: "batch", 2: "height", 3: "width"}
    # tracing warns that the segmenters' Python size checks become constants, and about its own deprecation
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the TorchScript-based exporter: no onnxscript needed, and dynamic axes by name
        torch.onnx.export(segmenter, (example,), str(output), dynamo=False, opset_version=opset,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: dynamic, OUTPUT_NAME: dynamic})
    model = onnx.load(str(output))
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, str(output))


def export_torchscript(segmenter: nn.Module, example: torch.Tensor, output: Path, metadata: dict[str, str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(segmenter, example)
        torch.jit.save(traced, str(output), _extra_files={"cyclesem.json": json.dumps(metadata)})


def run_exported(path: Path, fmt: str, image: torch.Tensor) -> torch.Tensor:
    """Logits (B, C, H, W) of the exported file for ``image`` (B, 3, H, W): onnxruntime or torch.jit."""
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: image.numpy()})[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.load(str(path))(image).detach()


def _onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


@torch.no_grad()
def export(cfg: DictConfig) -> dict[str, Any]:
    if cfg.format not in FORMATS:
        raise ValueError(f"format={cfg.format!r}: expected one of {', '.join(FORMATS)}")
    segmenter, checkpoint = load_segmenter(cfg.ckpt_path)
    resize = eval_resize(checkpoint)
    height, width = tuple(cfg.example_size) if cfg.example_size is not None else resize or FALLBACK_SIZE
    output = Path(cfg.output) if cfg.output is not None else default_output(cfg.ckpt_path, cfg.format)
    output.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "input": INPUT_SPEC, "output": OUTPUT_SPEC, "class_names": json.dumps(list(CLASS_NAMES)),
        "eval_resize": json.dumps(list(resize) if resize is not None else None),
        "checkpoint": str(cfg.ckpt_path), "cyclesem_version": cyclesem.__version__,
    }
    example = torch.rand(2, 3, height, width) * 2 - 1  # (2, 3, H, W) in [-1, 1]
    if cfg.format == "onnx":
        try:
            export_onnx(segmenter, example, output, metadata, cfg.opset)
        except ImportError:
            raise MissingExtraError("format=onnx needs the onnx package: pip install -e '.[export]'") from None
    else:
        export_torchscript(segmenter, example, output, metadata)
    record: dict[str, Any] = {"output": str(output), "format": cfg.format, "example_size": [height, width]}
    if cfg.check and (cfg.format != "onnx" or _onnxruntime_available()):
        # another batch size and another image size than the traced example: the axes really are dynamic
        checks = [torch.rand(1, 3, height, width) * 2 - 1, torch.rand(3, 3, height + 8, width + 16) * 2 - 1]
        record["max_abs_diff"] = max(float((run_exported(output, cfg.format, x) - segmenter(x)).abs().max())
                                     for x in checks)
    print(f"wrote {output} ({cfg.format}; input {INPUT_NAME}: {INPUT_SPEC}; output {OUTPUT_NAME}: {OUTPUT_SPEC})")
    if "max_abs_diff" in record:
        print(f"max |exported - PyTorch| = {record['max_abs_diff']:.2e} at batch 1 and 3, "
              f"{height}x{width} and {height + 8}x{width + 16}")
    return record


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="export")
def main(cfg: DictConfig) -> None:
    with exit_on_user_error():
        export(cfg)


if __name__ == "__main__":
    main()
