"""Shared fixtures: a tiny synthetic pair rendered once per session, and Hydra composition helpers."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import cyclesem.runtime.config  # noqa: F401  (registers the structured config schema `train_schema`)

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """paths.data_dir for tests; the smoke preset renders its 32×64 synthetic pair here once."""
    return tmp_path_factory.mktemp("data")


def compose_config(config_name: str, overrides: list[str], output_dir: Path | None = None) -> DictConfig:
    """Compose like the entry point does, with the hydra node set so `${hydra:...}` resolves."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    if output_dir is not None:
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(output_dir)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):  # what the task function receives: no hydra node
        del cfg["hydra"]
    return cfg


def compose_train(overrides: list[str], output_dir: Path, data_dir: Path, logger: str = "none") -> DictConfig:
    return compose_config("train", ["+experiment=smoke", f"logger={logger}", f"paths.data_dir={data_dir}",
                                    *overrides], output_dir)


def epoch_values_from_csv(run_dir: Path, key: str) -> dict[int, float]:
    """The CSV logger's value of `key` per epoch (the last row of each epoch that has one)."""
    values = {}
    for path in sorted(run_dir.glob("csv/*/metrics.csv")):  # one version per start (a resume is the second)
        with open(path) as handle:
            for row in csv.DictReader(handle):
                if row.get(key):
                    values[int(row["epoch"])] = float(row[key])
    return values


@pytest.fixture
def fresh_dynamo():
    """torch.compile state reset before and after the test: dynamo's per-code-object frame cache outlives a
    module, so a network class compiled by an earlier test at other shapes would be recompiled here with
    dynamic shapes (automatic dynamic), a different and less tested inductor path than a user's run takes."""
    import torch

    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.fixture(scope="session")
def smoke_checkpoint(tmp_path_factory, data_dir) -> Path:
    """last.ckpt of a 2-epoch cyclesem smoke run at 50 % real data, shared by the inference tests."""
    from cyclesem.train import train

    record = train(compose_train(["data.real_frac=0.5"], tmp_path_factory.mktemp("smoke_run"), data_dir))
    return Path(record["last_checkpoint"])
