"""A quiet console: the known noise of the libraries, filtered in one place and narrowly.

Each filter names one message and the module that emits it, so every other warning and log line — above all
those about the user's run (few workers, a missing reference, a non-finite step) — still shows. Add a filter
here only for a message that says nothing about the run and that the user cannot act on.
"""

from __future__ import annotations

import logging
import warnings

# Lightning's advertisements for its cloud products, logged at INFO from rank_zero_info whenever a Trainer is
# built without a LitLogger or a checkpoint is saved without litmodels
_LIGHTNING_TIPS = ("💡 Tip: For seamless cloud logging", "💡 Tip: For seamless cloud uploads")
_RANK_ZERO_LOGGER = "lightning.pytorch.utilities.rank_zero"

# (message regex, category, emitting module regex): deprecations inside a library, of APIs it calls itself
_LIBRARY_WARNINGS = (
    # torch deprecated its pytree LeafSpec; lightning 2.6 still builds one in its own _pytree, every step
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning, r"lightning\.pytorch\.utilities\._pytree"),
)


class _DropLightningTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_LIGHTNING_TIPS)


def quiet_library_noise() -> None:
    """Install the filters (idempotent: a sweep calls it once per job)."""
    for message, category, module in _LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    logger = logging.getLogger(_RANK_ZERO_LOGGER)
    if not any(isinstance(f, _DropLightningTips) for f in logger.filters):
        logger.addFilter(_DropLightningTips())
