"""What the GPU check's JSON record holds beside the checks' figures: the machine, the file's name, a failure
in one line with where in cyclesem it was raised, and values made strict JSON."""

from __future__ import annotations

import contextlib
import math
import platform
import re
import subprocess
import traceback
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch

from cyclesem.method.cache_files import cpu_model

SCHEMA_VERSION = 1
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # cyclesem/, one folder above this file


def error_location(err: BaseException) -> str | None:
    """file:line of the innermost frame inside cyclesem: where a device bug surfaces."""
    inside = [frame for frame in traceback.extract_tb(err.__traceback__)
              if Path(frame.filename).resolve().is_relative_to(PACKAGE_DIR)]
    if not inside:
        return None
    frame = inside[-1]
    return f"{Path(frame.filename).resolve().relative_to(PACKAGE_DIR.parent)}:{frame.lineno}"


def one_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0] if lines else ''}"[:500]


def nvidia_driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def machine(mode: str) -> dict[str, Any]:
    """The device and the software stack the checks ran on."""
    info: dict[str, Any] = {
        "cpu": cpu_model(), "python": platform.python_version(), "torch": torch.__version__,
        "lightning": version("lightning"), "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    }
    if mode == "gpu":
        properties = torch.cuda.get_device_properties(0)
        nccl = None
        with contextlib.suppress(Exception):  # torch built without NCCL
            nccl = ".".join(str(v) for v in torch.cuda.nccl.version())
        info.update(device=torch.cuda.get_device_name(0), device_count=torch.cuda.device_count(),
                    capability=f"{properties.major}.{properties.minor}",
                    memory_gib=round(properties.total_memory / 2**30, 1), driver=nvidia_driver(), nccl=nccl)
    else:
        info.update(device="cpu", device_count=0, threads=torch.get_num_threads())
    return info


def output_path(directory: Path, device: str, now: datetime) -> Path:
    """<device name>_<date>.json, with the time added when that name is taken (a committed result stays)."""
    slug = re.sub(r"[^a-z0-9]+", "-", device.lower()).strip("-") or "device"
    path = directory / f"{slug}_{now:%Y-%m-%d}.json"
    return path if not path.exists() else directory / f"{slug}_{now:%Y-%m-%d_%H%M%S}.json"


def json_safe(value: Any, work_dir: Path | None = None) -> Any:
    """nan and inf as strings (the file stays strict JSON and a non-finite loss stays visible), and the
    temporary work dir as ``<work_dir>`` (a committed record holds no path of the machine that wrote it)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str) and work_dir is not None:
        return value.replace(str(work_dir), "<work_dir>")
    if isinstance(value, dict):
        return {k: json_safe(v, work_dir) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, work_dir) for v in value]
    return value
