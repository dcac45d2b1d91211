"""One entry wrapper for every command: a user's mistake is one line on stderr and exit status 2, whichever
command meets it, and a bug keeps its traceback."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
from hydra.core.hydra_config import HydraConfig

from cyclesem.runtime.errors import USER_ERRORS, exit_on_user_error
from tests.conftest import REPO, compose_config

PACKAGE = REPO / "cyclesem"
# the commands (python -m cyclesem.<name>) whose main() runs their work inside exit_on_user_error
COMMANDS = ("train", "evaluate", "stylize", "predict", "export", "figure", "translation_figure", "translation_worth",
            "reference", "warmup",
            "report/__main__", "bench/__main__", "gpu_check/__main__", "convert_checkpoint")
# error classes a user cannot fix by changing the command line
NOT_USER_ERRORS = {
    "CheckpointSaveError",  # the disk filled up mid-run: the run's metrics.json records it
    "CheckFailed",  # a GPU check that failed: gpu_check records it in its JSON and runs the next check
}


def error_classes() -> dict[str, str]:
    """Every ``class <Name>Error(...)`` in the package: name → module."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
                found[node.name] = ".".join(path.relative_to(REPO).with_suffix("").parts)
    return found


def test_every_error_class_of_the_package_is_a_user_error() -> None:
    classes = error_classes()
    assert {"ConfigError", "CheckpointError", "DatasetError", "ReferenceCacheError", "WeightsFileError",
            "ReportError"} <= set(classes)
    for name, module in classes.items():
        cls = getattr(importlib.import_module(module), name)
        assert issubclass(cls, USER_ERRORS) != (name in NOT_USER_ERRORS), f"{module}.{name}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_runs_its_work_inside_the_wrapper(command: str) -> None:
    tree = ast.parse((PACKAGE / f"{command}.py").read_text())
    main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")
    wrapped = [w for n in ast.walk(main) if isinstance(n, ast.With) for w in n.items
               if isinstance(w.context_expr, ast.Call) and getattr(w.context_expr.func, "id", "") == "exit_on_user_error"]
    assert wrapped, f"cyclesem/{command}.py main() does not use exit_on_user_error"
    handlers = [n for n in ast.walk(main) if isinstance(n, ast.ExceptHandler)]
    assert not handlers, f"cyclesem/{command}.py main() catches errors itself again"


def raise_in_wrapper(error: BaseException) -> None:
    with exit_on_user_error():
        raise error


def test_a_user_error_is_one_line_and_exit_2(capsys: pytest.CaptureFixture) -> None:
    from cyclesem.data.image_io import DatasetError
    from cyclesem.runtime.checkpoint import CheckpointError

    for error in (CheckpointError("checkpoint x.ckpt is not a Lightning checkpoint"),
                  DatasetError("cannot read image a.png: truncated"), FileNotFoundError("no such file b.png")):
        with pytest.raises(SystemExit) as exit_:
            raise_in_wrapper(error)
        assert exit_.value.code == 2
        assert capsys.readouterr().err == f"error: {error}\n"


def test_a_bug_keeps_its_traceback() -> None:
    with pytest.raises(RuntimeError, match="shape mismatch"):
        raise_in_wrapper(RuntimeError("shape mismatch"))
    with pytest.raises(KeyError):
        raise_in_wrapper(KeyError("x"))


def test_in_a_sweep_the_job_fails_and_hydra_runs_the_others(tmp_path: Path) -> None:
    from cyclesem.data.image_io import DatasetError

    hydra_config = HydraConfig.instance()
    before = hydra_config.cfg
    try:
        compose_config("train", ["hydra.mode=MULTIRUN"], tmp_path)
        with pytest.raises(DatasetError):
            raise_in_wrapper(DatasetError("cannot read image a.png"))
    finally:
        hydra_config.cfg = before

