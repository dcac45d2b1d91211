"""Reading checkpoints back, including those written before the module moved to cyclesem.method; every read is
weights-only."""

from __future__ import annotations

import ast
import re

import pytest
import torch

from cyclesem.method.from_config import instantiate_module
from cyclesem.method.module import CHECKPOINT_KEY
from cyclesem.models.segmenter import UNet, load_weights
from cyclesem.models.weights_file import UnsafeCheckpointError, load_weights_only
from cyclesem.runtime.checkpoint import AtomicCheckpointIO, CheckpointError, build_module, load_checkpoint
from cyclesem.runtime.config import ConfigError
from cyclesem.runtime.inference import load_segmenter
from cyclesem.runtime.preflight import check_checkpoint, check_checkpoint_map, check_reference
from cyclesem.train import to_plain, train
from cyclesem.translation_figure import load_translator
from tests.conftest import REPO, compose_train
from tests.payload_helpers import write_payload


def test_checkpoint_naming_the_old_module_path_still_loads(tmp_path, data_dir):
    cfg = compose_train([], tmp_path, data_dir)
    module = instantiate_module(cfg.model)
    model_config = {**to_plain(cfg.model), "_target_": "cyclesem.module.CycleSemModule"}  # before method/
    checkpoint = {"state_dict": module.state_dict(), CHECKPOINT_KEY: {"model_config": model_config}}
    rebuilt = build_module(checkpoint)
    for key, value in module.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[key], value), key


@pytest.fixture
def payloads(tmp_path, data_dir):
    marker = tmp_path / "payload_ran"
    yield {kind: write_payload(kind, tmp_path, data_dir, marker) for kind in ("top", "nested")}
    assert not marker.exists(), "a load ran the payload"


@pytest.mark.parametrize("payload", ["top", "nested"])
def test_every_loader_refuses_a_file_holding_code_unread(payload, payloads, tmp_path, data_dir):
    crafted = payloads[payload]
    holds = f"{crafted} holds objects other than weights (posix.system)"
    loaders = {
        "load_checkpoint": lambda: load_checkpoint(crafted),
        "load_segmenter (predict, export)": lambda: load_segmenter(crafted),
        "load_translator (translation_figure)": lambda: load_translator("crafted", crafted),
        "load_weights (reference, pretrained weights)": lambda: load_weights(UNet(base_channels=4, depth=2), crafted),
        "Lightning's resume (AtomicCheckpointIO)": lambda: AtomicCheckpointIO().load_checkpoint(crafted),
    }
    for name, load in loaders.items():
        with pytest.raises(UnsafeCheckpointError, match=re.escape(holds)) as err:
            load()
        assert isinstance(err.value, CheckpointError), name  # what the commands' main() wrappers catch
        assert "python -m cyclesem.convert_checkpoint" in str(err.value) and "\n" not in str(err.value), name
    checks = {"ckpt_path": lambda: check_checkpoint(str(crafted)),
              "checkpoints.crafted": lambda: check_checkpoint_map({"crafted": str(crafted)}),
              "reference.checkpoint": lambda: check_reference({"checkpoint": str(crafted)})}
    for key, check in checks.items():
        with pytest.raises(ConfigError, match=re.escape(f"{key}: checkpoint {holds}")):
            check()


def test_a_resume_through_lightning_is_weights_only(payloads, tmp_path, data_dir):
    """train() with the pre-flight check bypassed: Lightning's own load of ckpt_path refuses the file."""
    cfg = compose_train([f"ckpt_path={payloads['nested']}", "reference=none"], tmp_path / "run", data_dir)
    with pytest.raises(UnsafeCheckpointError, match="nested.ckpt holds objects other than weights"):
        train(cfg)


def test_own_checkpoints_load_weights_only(smoke_checkpoint):
    """Everything a resume needs is tensors and plain containers: model config, RNG states, image pools, optimizer
    and loop states, the data stream's position (the resumable loaders' states)."""
    checkpoint = load_weights_only(smoke_checkpoint)
    state = checkpoint[CHECKPOINT_KEY]
    assert state["model_config"]["_target_"] == "cyclesem.method.module.CycleSemModule"
    streams = state["ranks"][0]  # rank 0's (the only rank's) pools and random states
    assert torch.is_tensor(streams["rng"]["torch"]) and torch.is_tensor(streams["pools"]["source"]["images"])
    fit_loop = checkpoint["loops"]["fit_loop"]
    assert fit_loop["epoch_progress"]["current"]["processed"] == 2 and len(checkpoint["optimizer_states"]) == 3
    assert [stream["epoch"] for stream in fit_loop["state_dict"]["combined_loader"]] == [1, 1]  # source, target


def _unrestricted_load(node: ast.AST) -> bool:
    """A pickle.load(s), or a torch.load without weights_only=True."""
    if not isinstance(node, ast.Call):
        return False
    name = ast.unparse(node.func)
    weights_only = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                       for k in node.keywords)
    return name in ("pickle.load", "pickle.loads") or (name == "torch.load" and not weights_only)


def test_the_only_unrestricted_load_in_the_package_is_the_trusted_conversion_command():
    unrestricted = [str(path.relative_to(REPO)) for path in sorted((REPO / "cyclesem").rglob("*.py"))
                    for node in ast.walk(ast.parse(path.read_text())) if _unrestricted_load(node)]
    assert unrestricted == ["cyclesem/convert_checkpoint.py"]
