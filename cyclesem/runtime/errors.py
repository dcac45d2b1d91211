"""What every command does with a mistake its user can fix: one line on stderr that names it, exit status 2.

A mistake is a config value out of range, a missing or unreadable file (dataset, checkpoint, weights, cache), a
checkpoint of the wrong kind, an extra that is not installed: the errors below, whose messages name the thing
and what was expected. Anything else is a bug and keeps its traceback. One tuple, so that no command forgets
one (the commands' own copies had drifted apart).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from cyclesem.data.image_io import DatasetError
from cyclesem.runtime.config import ConfigError

EXIT_USER_ERROR = 2  # what argparse and the config checks exit with


class MissingExtraError(ImportError):
    """An optional dependency the command needs (an extra of pyproject.toml) is not installed."""


# Every error class of the package is one of these (tests/test_errors.py checks): ConfigError, DatasetError and,
# through ValueError, CheckpointError with its subclasses, WeightsFileError, ReferenceCacheError, ReportError;
# ValueError also covers the checks that raise it directly (a format name, a knob out of range); FileExistsError
# an output a command never overwrites (convert_checkpoint's target); PermissionError a file or folder the user
# cannot read or write. The classes are not imported one by one so that a command that needs no checkpoint
# (report) does not import Lightning.
USER_ERRORS: tuple[type[Exception], ...] = (ConfigError, DatasetError, MissingExtraError, FileNotFoundError,
                                            FileExistsError, PermissionError, ValueError)


def _in_sweep() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Around the work of a command's ``main``: a user error prints ``error: <message>`` on stderr and exits
    with status 2, without a traceback. In a Hydra sweep (``-m``) the error is raised on, so that Hydra
    records that job as failed and runs the others.

    A context manager rather than a decorator: ``@hydra.main`` names a job after the file of the function it
    decorates, which a wrapper function would change."""
    try:
        yield
    except USER_ERRORS as err:
        if _in_sweep():
            raise
        print(f"error: {err}", file=sys.stderr)  # plain print: one line, not wrapped to the terminal width
        raise SystemExit(EXIT_USER_ERROR) from None
