"""The results figure (docs/results.md): one row per sample, source | translation | perfect translation | target |
prediction | ground truth."""

from __future__ import annotations

import numpy as np

from cyclesem.figure import make_figure
from tests.conftest import compose_config


def test_figure_has_a_row_per_sample_and_six_columns_with_the_paired_render(smoke_checkpoint, tmp_path):
    cfg = compose_config("figure", [f"ckpt_path={smoke_checkpoint}", "num_rows=3", "zoom=2", "device=cpu"])
    figure = make_figure(cfg)
    height, width = 2 * 32, 2 * 64  # the smoke pair's 32×64 images, doubled
    assert figure.dtype == np.uint8
    assert figure.shape == (16 + 1 + 3 * (height + 1) - 1, 6 * (width + 1) - 1, 3)
    source, translation, perfect = (figure[17 : 17 + height, i * (width + 1) : i * (width + 1) + width] for i in range(3))
    assert not np.array_equal(source, translation)
    # the paired render of the same scene: the same layout in the target's palette, not the source image again
    assert 0.02 < np.abs(perfect.astype(float) - source.astype(float)).mean() / 255
