"""Shared fixtures: a tiny synthetic pair rendered once per session, and Hydra composition helpers."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import cyclesem.runtime.config  # noqa: F401  (registers the structured config schema `train_schema`)
from tests.data.conftest import write_cityscapes_pair, write_gta5_pair

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"


def default_pair_params() -> tuple[float, float]:
    """conf/data/synthetic.yaml's (pavement_share, palette_shift): the pair a run with the default data renders."""
    from omegaconf import OmegaConf

    prepare = OmegaConf.load(CONF_DIR / "data" / "synthetic.yaml").prepare
    return float(prepare.pavement_share), float(prepare.palette_shift)


def default_pair_root(data_dir: Path) -> Path:
    """Where a run with the default data config (the smoke preset too) renders its synthetic pair under `data_dir`:
    the folder named by its palette shift (the calibrated pair's, synthetic_palette0.25)."""
    from cyclesem.data.synthetic.pair import pair_dir_name

    return data_dir / pair_dir_name(*default_pair_params())


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """paths.data_dir for tests; the smoke preset renders its 32×64 synthetic pair here once."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture
def gta5_root(tmp_path: Path) -> Path:
    """GTA5 layout (tests/data/conftest.py): three clean pairs 00001..00003 (16×32), written out of order."""
    root = tmp_path / "gta5"
    for seed, stem in enumerate(["00003", "00001", "00002"]):
        write_gta5_pair(root, stem, seed=seed)
    return root


@pytest.fixture
def cityscapes_root(tmp_path: Path) -> Path:
    """Cityscapes layout (tests/data/conftest.py): train: two cities, three frames; val: one frame. 16×32, standard
    labels."""
    root = tmp_path / "cityscapes"
    write_cityscapes_pair(root, "train", "zurich", "000001_000019", seed=1)
    write_cityscapes_pair(root, "train", "aachen", "000000_000019", seed=2)
    write_cityscapes_pair(root, "train", "aachen", "000001_000019", seed=3)
    write_cityscapes_pair(root, "val", "lindau", "000000_000019", seed=4)
    return root


def real_layout_overrides(gta5_root: Path, cityscapes_root: Path) -> list[str]:
    """``data=gta5_cityscapes`` on the real-layout fixtures: 16×32 images resized to 32×64 (the PatchGAN needs 32
    pixels), 32×32 crops, N = 3 (the fixtures hold 3 GTA5 and 3 Cityscapes train pairs) and tiny networks."""
    return ["data=gta5_cityscapes", f"data.source.root={gta5_root}", f"data.target_train.root={cityscapes_root}",
            "data.num_labeled=3", "data.num_workers=0", "data.pin_memory=false", "data.val_batch_size=1",
            "data.source.transform.resize=[32,64]", "data.source.transform.crop=[32,32]",
            "data.target_train.transform.resize=[32,64]", "data.target_train.transform.crop=[32,32]",
            "data.target_val.transform.resize=[32,64]", "model.segmenter.base_channels=4", "model.segmenter.depth=2",
            "model.gen_s2t.ngf=4", "model.gen_s2t.n_blocks=1", "model.disc_s.ndf=4"]


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


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """Every test starts with the thread count the suite started with: a command run in-process sets torch's
    (the study presets' threads=1), and a model's numerics depend on it, so a leaked count would make a later
    test's result depend on which tests ran before it."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
