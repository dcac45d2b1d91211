"""The console a user reads: Lightning's product tips and its internal deprecation warnings are filtered, the
warnings and log lines about the user's run are not."""

from __future__ import annotations

import logging
import warnings

import lightning as L
import pytest
from lightning.pytorch.utilities._pytree import _tree_flatten
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn

from cyclesem.runtime.console import quiet_library_noise

RANK_ZERO = logging.getLogger("lightning.pytorch.utilities.rank_zero")  # where rank_zero_info logs


@pytest.fixture(autouse=True)
def restore_filters():
    """The filters are process-wide; the rest of the suite sees the console as it was."""
    logger_filters, warning_filters = list(RANK_ZERO.filters), list(warnings.filters)
    yield
    RANK_ZERO.filters[:] = logger_filters
    warnings.filters[:] = warning_filters


class Lines(logging.Handler):
    """The lines the logger hands to its handlers (after its filters), whatever pytest did to the root logger."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def build_trainer() -> None:
    L.Trainer(logger=False, accelerator="cpu", devices=1, enable_progress_bar=False, enable_model_summary=False,
              enable_checkpointing=False)


def test_lightning_tip_is_dropped_and_other_info_lines_stay() -> None:
    lines = Lines()
    RANK_ZERO.addHandler(lines)
    try:
        build_trainer()
        assert any("💡 Tip: For seamless cloud logging" in line for line in lines.lines)  # the noise is real

        lines.lines.clear()
        quiet_library_noise()
        quiet_library_noise()  # a sweep calls it once per job
        build_trainer()
        rank_zero_info("the reference segmenter is not cached yet")  # the project's own lines use this logger
    finally:
        RANK_ZERO.removeHandler(lines)
    assert not [line for line in lines.lines if "Tip" in line or "litlogger" in line]
    assert any(line.startswith("GPU available: ") for line in lines.lines)
    assert "the reference segmenter is not cached yet" in lines.lines
    assert len(RANK_ZERO.filters) == 1


def test_lightning_internal_deprecation_is_dropped_and_user_warnings_stay() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("always", append=True)  # everything not filtered shows, every time
        _tree_flatten(1)  # a leaf: lightning builds a LeafSpec
        assert [str(w.message) for w in caught if "LeafSpec" in str(w.message)]  # the noise is real

        caught.clear()
        quiet_library_noise()
        _tree_flatten(1)
        rank_zero_warn("reference.checkpoint=r.pt is set but data.paired is null: no translation score")
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated in the user's code", FutureWarning,
                      stacklevel=1)  # the same message from another module: not Lightning's, so it shows
        messages = [str(w.message) for w in caught]
    assert not [m for m in messages if m.startswith("`isinstance(treespec, LeafSpec)` is deprecated, use")]
    assert any("data.paired is null" in m for m in messages)
    assert any("in the user's code" in m for m in messages)
