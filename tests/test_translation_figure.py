"""The real-fraction study's image figure: source | each checkpoint's translation | perfect translation | real
target, one row per source image; checkpoints without a translator, missing or trained on other data are refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclesem.data.visualize import evenly_spaced
from cyclesem.method.module import CHECKPOINT_KEY
from cyclesem.runtime.checkpoint import CheckpointError, load_checkpoint, stored_data_config
from cyclesem.runtime.config import ConfigError
from cyclesem.runtime.preflight import preflight
from cyclesem.train import train
from cyclesem.translation_figure import make_translation_figure, translation_figure
from tests.conftest import REPO, compose_config, compose_train

TITLE = 16 + 1  # image_grid's title strip and its separator
FAST = ["trainer.max_epochs=1", "trainer.limit_train_batches=1", "test_checkpoint=last", "run_test=false"]  # 1 batch


@pytest.fixture(scope="module")
def cyclegan_checkpoint(tmp_path_factory, data_dir) -> Path:
    record = train(compose_train(["method=cyclegan", "data.real_frac=0.5", *FAST], tmp_path_factory.mktemp("gan"),
                                 data_dir))
    return Path(record["last_checkpoint"])


@pytest.fixture(scope="module")
def baseline_checkpoint(tmp_path_factory, data_dir) -> Path:
    record = train(compose_train(["method=baseline", "data.real_frac=0.5", *FAST], tmp_path_factory.mktemp("base"),
                                 data_dir))
    return Path(record["last_checkpoint"])


def figure_config(checkpoints: dict[str, Path], *overrides: str):
    mapping = ", ".join(f"{label}: '{path}'" for label, path in checkpoints.items())
    return compose_config("translation_figure", [f"checkpoints={{{mapping}}}", "device=cpu", *overrides])


def column(figure: np.ndarray, row: int, col: int, size: tuple[int, int]) -> np.ndarray:
    top, left = TITLE + row * (size[0] + 1), col * (size[1] + 1)
    return figure[top : top + size[0], left : left + size[1]]


def test_figure_has_a_column_per_checkpoint_and_the_paired_render(smoke_checkpoint, cyclegan_checkpoint, tmp_path):
    size = (32, 64)  # the smoke pair's own size: the perfect column is then the render's pixels exactly
    output = tmp_path / "figures" / "translations.png"
    cfg = figure_config({"cyclesem": smoke_checkpoint, "cyclegan": cyclegan_checkpoint}, "num_samples=3",
                        f"panel_size=[{size[0]},{size[1]}]", f"output={output}")
    assert translation_figure(cfg) == output
    figure = np.asarray(Image.open(output).convert("RGB"))
    rows, columns = 3, 5  # source | cyclesem | cyclegan | perfect translation | real target
    assert figure.shape == (TITLE + rows * (size[0] + 1) - 1, columns * (size[1] + 1) - 1, 3)

    data = stored_data_config(load_checkpoint(smoke_checkpoint))
    names = sorted(p.name for p in Path(data["source"]["root"], "images").glob("*.png"))
    for row, index in enumerate(evenly_spaced(rows, len(names))):
        source, cyclesem, cyclegan, perfect = (column(figure, row, col, size) for col in range(4))
        assert np.array_equal(source, np.asarray(Image.open(Path(data["source"]["root"], "images", names[index]))))
        assert not np.array_equal(cyclesem, source) and not np.array_equal(cyclegan, source)
        assert not np.array_equal(cyclesem, cyclegan)  # each column is its own checkpoint's generator
        assert np.array_equal(perfect, np.asarray(Image.open(Path(data["paired"]["paired_dir"], names[index]))))


def test_panel_size_sets_the_figure_size(smoke_checkpoint):
    figure = make_translation_figure(figure_config({"cyclesem": smoke_checkpoint}, "num_samples=2",
                                                   "panel_size=[48,80]"))
    assert figure.shape == (TITLE + 2 * 49 - 1, 4 * 81 - 1, 3)  # source | cyclesem | perfect | real target


def test_a_checkpoint_without_generators_is_refused(smoke_checkpoint, baseline_checkpoint):
    cfg = figure_config({"cyclesem": smoke_checkpoint, "baseline": baseline_checkpoint})
    with pytest.raises(CheckpointError, match=r"checkpoints\.baseline: checkpoint .*last\.ckpt is a baseline run.*"
                                              r"expected a method with a translator \(cyclesem, cyclegan\)"):
        make_translation_figure(cfg)
    # the entry point: one line naming the checkpoint, exit status 2, no traceback
    proc = subprocess.run([sys.executable, "-m", "cyclesem.translation_figure",
                           f"checkpoints={{cyclesem: '{smoke_checkpoint}', baseline: '{baseline_checkpoint}'}}",
                           "device=cpu", "output=never.png"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "checkpoints.baseline" in proc.stderr and "Traceback" not in proc.stderr
    assert not (REPO / "never.png").exists()


def test_a_missing_checkpoint_is_named(smoke_checkpoint, tmp_path):
    missing = tmp_path / "missing.ckpt"
    cfg = figure_config({"cyclesem": smoke_checkpoint, "cyclegan": missing})
    with pytest.raises(CheckpointError, match=r"checkpoints\.cyclegan: checkpoint .*missing\.ckpt does not exist"):
        make_translation_figure(cfg)
    with pytest.raises(ConfigError, match=r"checkpoints\.cyclegan=.*missing\.ckpt does not exist"):
        preflight(cfg, "translation_figure")


def test_checkpoints_trained_on_other_data_are_refused(smoke_checkpoint, tmp_path):
    checkpoint = load_checkpoint(smoke_checkpoint)
    checkpoint[CHECKPOINT_KEY]["data_config"]["source"]["root"] = str(tmp_path / "other" / "gta5")
    other = tmp_path / "other.ckpt"
    torch.save(checkpoint, other)
    cfg = figure_config({"cyclesem": smoke_checkpoint, "other": other})
    with pytest.raises(ValueError, match=r"checkpoints\.cyclesem and checkpoints\.other were trained on different "
                                         r"data: data\.source\.root"):
        make_translation_figure(cfg)


def test_checkpoints_must_be_a_mapping(smoke_checkpoint):
    cfg = compose_config("translation_figure", [f"checkpoints=['{smoke_checkpoint}']"])
    with pytest.raises(ValueError, match=r"expected a mapping of column label to checkpoint path"):
        make_translation_figure(cfg)
