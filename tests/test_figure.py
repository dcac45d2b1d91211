"""The README's results figure: one row per sample, source | translation | target | prediction | ground truth."""

from __future__ import annotations

import numpy as np

from cyclesem.figure import make_figure
from tests.conftest import compose_config


def test_figure_has_a_row_per_sample_and_five_columns(smoke_checkpoint, tmp_path):
    cfg = compose_config("figure", [f"ckpt_path={smoke_checkpoint}", "num_rows=3", "zoom=2", "device=cpu"])
    figure = make_figure(cfg)
    height, width = 2 * 32, 2 * 64  # the smoke pair's 32×64 images, doubled
    assert figure.dtype == np.uint8
    assert figure.shape == (16 + 1 + 3 * (height + 1) - 1, 5 * (width + 1) - 1, 3)
    source = figure[17 : 17 + height, :width]
    translation = figure[17 : 17 + height, width + 1 : 2 * width + 1]
    assert not np.array_equal(source, translation)
