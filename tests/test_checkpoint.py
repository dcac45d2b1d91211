"""Reading checkpoints back, including those written before the module moved to cyclesem.method."""

from __future__ import annotations

import torch

from cyclesem.method.from_config import instantiate_module
from cyclesem.method.module import CHECKPOINT_KEY
from cyclesem.runtime.checkpoint import build_module
from cyclesem.train import to_plain
from tests.conftest import compose_train


def test_checkpoint_naming_the_old_module_path_still_loads(tmp_path, data_dir):
    cfg = compose_train([], tmp_path, data_dir)
    module = instantiate_module(cfg.model)
    model_config = {**to_plain(cfg.model), "_target_": "cyclesem.module.CycleSemModule"}  # before method/
    checkpoint = {"state_dict": module.state_dict(), CHECKPOINT_KEY: {"model_config": model_config}}
    rebuilt = build_module(checkpoint)
    for key, value in module.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[key], value), key
