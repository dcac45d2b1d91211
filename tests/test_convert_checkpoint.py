"""python -m cyclesem.convert_checkpoint: a trusted checkpoint that no longer loads weights-only becomes one that
does, with the same weights and config as plain data; what has no plain form is named and nothing is written."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from cyclesem.convert_checkpoint import main
from cyclesem.method.from_config import instantiate_module
from cyclesem.method.module import CHECKPOINT_KEY
from cyclesem.method.options import SemanticClassifier
from cyclesem.models.weights_file import UnsafeCheckpointError
from cyclesem.runtime.checkpoint import build_module, load_checkpoint
from cyclesem.train import to_plain
from tests.conftest import compose_train


def test_an_old_checkpoint_is_refused_with_the_command_that_converts_it(tmp_path, data_dir, capsys):
    cfg = compose_train([], tmp_path / "compose", data_dir)
    module = instantiate_module(cfg.model)
    old = tmp_path / "old.ckpt"  # as an older writer might have stored its config: objects, not plain data
    torch.save({"state_dict": module.state_dict(),
                CHECKPOINT_KEY: {"model_config": cfg.model,  # a DictConfig
                                 "classifier": SemanticClassifier.frozen, "run_dir": Path("outputs/run"),
                                 "rng": {"numpy_keys": np.arange(4, dtype=np.uint32), "pos": np.int64(3)}}}, old)
    with pytest.raises(UnsafeCheckpointError, match=r"old\.ckpt holds objects other than weights "
                       r"\(omegaconf\.dictconfig\.DictConfig\).*`python -m cyclesem\.convert_checkpoint "
                       rf"{tmp_path}/old\.ckpt {tmp_path}/old\.weights\.ckpt`"):
        load_checkpoint(old)

    assert main([str(old), str(tmp_path / "old.weights.ckpt")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["converted cyclesem.model_config: DictConfig -> dict",
                       "converted cyclesem.classifier: SemanticClassifier -> str",
                       "converted cyclesem.run_dir: PosixPath -> str",
                       "converted cyclesem.rng.numpy_keys: ndarray -> Tensor",
                       "converted cyclesem.rng.pos: int64 -> int",
                       f"wrote {tmp_path}/old.weights.ckpt: loads weights-only"]
    converted = load_checkpoint(tmp_path / "old.weights.ckpt")  # weights-only
    state = converted[CHECKPOINT_KEY]
    assert state["model_config"] == OmegaConf.to_container(cfg.model, resolve=True) == to_plain(cfg.model)
    assert (state["classifier"], state["run_dir"], state["rng"]["pos"]) == ("frozen", "outputs/run", 3)
    assert torch.equal(state["rng"]["numpy_keys"], torch.tensor([0, 1, 2, 3], dtype=torch.uint32))
    rebuilt = build_module(converted)
    for key, value in module.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[key], value), key


def test_an_object_without_a_plain_form_is_named_and_nothing_is_written(tmp_path, capsys):
    torch.save({"state_dict": {"w": torch.ones(2)}, "meta": {"took": datetime.timedelta(hours=1)}}, tmp_path / "a.ckpt")
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path / "a.ckpt"), str(tmp_path / "b.ckpt")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: meta.took is a datetime.timedelta, which has no plain form") and err.count("\n") == 1
    assert not (tmp_path / "b.ckpt").exists()
    (tmp_path / "b.ckpt").write_bytes(b"someone's file")
    torch.save({"state_dict": {"w": torch.ones(2)}}, tmp_path / "plain.ckpt")
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path / "plain.ckpt"), str(tmp_path / "b.ckpt")])
    assert exit_.value.code == 2  # never overwrites
    assert "b.ckpt exists" in capsys.readouterr().err and (tmp_path / "b.ckpt").read_bytes() == b"someone's file"
