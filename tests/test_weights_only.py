"""A checkpoint cannot run code: every command that takes a checkpoint or weights file refuses one holding objects
other than weights, in one line naming the file, exit code 2, and the object's code never runs."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO
from tests.payload_helpers import write_payload

NO_PREFLIGHT = "~hydra.callbacks.preflight"  # through the command's own load and main() wrapper
# command → its arguments; {ckpt} is the crafted file
COMMANDS = {
    "evaluate": ["cyclesem.evaluate", "ckpt_path={ckpt}", "hydra.run.dir={tmp}/run"],
    "predict": ["cyclesem.predict", "ckpt_path={ckpt}", "input_dir={tmp}/images", "output_dir={tmp}/run"],
    "export": ["cyclesem.export", "ckpt_path={ckpt}", "output={tmp}/run/segmenter.onnx"],
    "stylize": ["cyclesem.stylize", "ckpt_path={ckpt}", "input_dir={tmp}/images", "output_dir={tmp}/run"],
    "figure": ["cyclesem.figure", "ckpt_path={ckpt}", "output={tmp}/run/samples.png"],
    "translation_figure": ["cyclesem.translation_figure", "checkpoints={{crafted: '{ckpt}'}}",
                           "output={tmp}/run/translations.png"],
    "reference": ["cyclesem.reference", "data=gta5_cityscapes", "reference.checkpoint={ckpt}",
                  "paths.data_dir={tmp}/run"],
    "train ckpt_path": ["cyclesem.train", "+experiment=smoke", "logger=none", "paths.data_dir={data}",
                        "ckpt_path={ckpt}", "hydra.run.dir={tmp}/run"],
    "train ckpt_path=last": ["cyclesem.train", "+experiment=smoke", "logger=none", "paths.data_dir={data}",
                             "ckpt_path=last", "hydra.run.dir={tmp}/resumed"],
    "train reference.checkpoint": ["cyclesem.train", "+experiment=smoke", "logger=none", "paths.data_dir={data}",
                                   "reference.checkpoint={ckpt}", "hydra.run.dir={tmp}/run"],
}
# As a user runs them, the pre-flight check refuses the file before Hydra makes a run directory (train has no other
# wrapper: that is its refusal); with the check removed, the command's own load and main() wrapper refuse it. The
# reference command has no pre-flight check. The nested payload's loads are covered in tests/test_checkpoint.py.
CASES = [
    ("evaluate", "top", []), ("evaluate", "nested", [NO_PREFLIGHT]),
    *((command, "top", [NO_PREFLIGHT]) for command in ("predict", "export", "stylize", "figure", "translation_figure")),
    ("reference", "nested", []),
    ("train ckpt_path", "top", []), ("train ckpt_path=last", "nested", []), ("train reference.checkpoint", "top", []),
]


@pytest.mark.parametrize(("command", "payload", "extra"), CASES, ids=[f"{c}-{p}-{len(e)}" for c, p, e in CASES])
def test_a_checkpoint_holding_code_is_refused_in_one_line_and_never_runs(command, payload, extra, tmp_path, data_dir):
    marker = tmp_path / "payload_ran"
    crafted = write_payload(payload, tmp_path, data_dir, marker)
    (tmp_path / "images").mkdir()
    Image.fromarray(np.zeros((32, 64, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    resumed = tmp_path / "resumed" / "checkpoints" / "last.ckpt"  # an interrupted run whose resume point was swapped
    resumed.parent.mkdir(parents=True)
    resumed.write_bytes(crafted.read_bytes())
    before = set(tmp_path.rglob("*"))
    module, *args = COMMANDS[command]
    args = [a.format(ckpt=crafted, tmp=tmp_path, data=data_dir) for a in args] + extra
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "disabled"}
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert not marker.exists(), f"{command} ran the payload in {crafted.name}"
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    shown = resumed if command == "train ckpt_path=last" else crafted
    assert f"{shown} holds objects other than weights (posix.system)" in lines[0], lines[0]
    assert f"python -m cyclesem.convert_checkpoint {shown} " in lines[0]
    written = set(tmp_path.rglob("*")) - before
    if command != "reference" and not extra:  # refused before Hydra made a run directory
        assert sorted(written) == []
    else:  # nothing but Hydra's own record of the run: no outputs, no reference cache entry
        assert [p for p in written if p.is_file() and ".hydra" not in p.parts and p.suffix != ".log"] == []
        assert not (tmp_path / "run" / "reference").exists()
