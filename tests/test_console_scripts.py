"""The cyclesem-<name> console scripts are the `python -m cyclesem.<name>` apps, and each answers --help."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

APPS = ("train", "evaluate", "stylize", "predict", "export", "report", "bench", "convert_checkpoint", "gpu_check")
ARGPARSE_APPS = {"report": "sweep_dir", "convert_checkpoint": "source"}  # argparse apps → an argument their usage names


def script_name(app: str) -> str:
    return f"cyclesem-{app.replace('_', '-')}"


def test_pyproject_maps_each_script_to_its_module_main():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    # a subpackage app (report, bench) has its main in __main__.py, as `python -m cyclesem.<app>` runs it
    assert scripts == {script_name(app): f"cyclesem.{app}{'.__main__' if (REPO / 'cyclesem' / app).is_dir() else ''}:main"
                       for app in APPS}


@pytest.mark.parametrize("app", APPS)
def test_console_script_answers_help(app, tmp_path):
    script = script_name(app)
    # the venv's bin directory even when it is not on PATH (pytest run as .venv/bin/python -m pytest)
    path = shutil.which(script) or shutil.which(script, path=str(Path(sys.executable).parent))
    assert path is not None, f"{script} is not installed: run `make install` (pip install -e '.[dev,cluster,export]')"
    proc = subprocess.run([path, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    if app in ARGPARSE_APPS:
        assert proc.stdout.startswith("usage: ") and ARGPARSE_APPS[app] in proc.stdout
    else:  # Hydra's app help, with the composed config of that entry point found from any working directory
        assert f"{app} is powered by Hydra" in proc.stdout and "== Config ==" in proc.stdout
    assert list(tmp_path.iterdir()) == []  # --help writes nothing
