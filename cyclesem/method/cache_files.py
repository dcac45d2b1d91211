"""Files of the on-disk caches built once and shared by runs (the reference segmenter, the warm-up CycleGAN):
atomic writes, the JSON form their keys hash, and the command line and machine that built an entry (also what a
study's job record says of its machine)."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch


def plain(node: Any) -> Any:
    """A JSON round trip: what a cache's JSON record will hold (tuples → lists, numbers as JSON writes them)."""
    return json.loads(json.dumps(node, sort_keys=True, default=str))


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write `path` through a temporary file in its directory and ``os.replace``: a reader (or a process killed
    mid-write) never leaves or sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_record(path: Path, what: str, error: type[Exception]) -> dict[str, Any] | None:
    """A cache entry's JSON record; None when it is absent (never built, or interrupted: the record is written
    last). One that cannot be read as a JSON object raises `error` naming the file: delete the entry to rebuild it,
    since silently training over it would hide whatever damaged the cache."""
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise error(f"cached {what} {path} is unreadable ({type(err).__name__}: {err}): delete {path.parent} to "
                    "rebuild it") from None
    if not isinstance(record, dict):
        raise error(f"cached {what} {path} is not a JSON object: delete {path.parent} to rebuild it")
    return record


def write_json(path: Path, record: Any) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(record, indent=2).encode()))


def command_line() -> str:
    """This process's command line, as ``python -m cyclesem.<app> ...`` for the package's entry points."""
    script = Path(sys.argv[0]).resolve()
    try:
        head = "python -m " + ".".join(script.relative_to(Path(__file__).resolve().parents[2]).with_suffix("").parts)
    except ValueError:
        head = script.name
    return " ".join([head, *sys.argv[1:]])


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else what platform reports): float results on a CPU can
    differ between CPU models, so a record says which one computed it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_record() -> dict[str, Any]:
    """Which hardware computed a run: the same seed and thread count reproduce a run's scores exactly only on
    the same CPU model and kernel set (experiments/real_frac_study/README.md, chunk 9)."""
    return {"cpu": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
