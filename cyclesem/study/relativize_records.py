"""Rewrite committed records so that they name no machine's folders; no score changes.

Records written before the runs stored portable paths (``cyclesem.study.run_record.portable_path``) hold the
absolute paths of the machine that ran them: the checkpoint a study job scored (``test_checkpoint``), the
splits it scored and selected on, a ``paths.data_dir=…`` override, a script's ``out`` folder. This rewrites
every string of every ``*.json`` under the given folders:

- a path inside a run directory (``…/<run>/checkpoints/best-epoch047.ckpt``, also inside
  ``best val/mIoU (…)``) → relative to the run: ``checkpoints/best-epoch047.ckpt``;
- a path inside one of the ``--checkout`` folders (the repository checkouts the records were made in) →
  relative to it: ``data/synthetic/cityscapes/val``; also the value of a ``key=/path`` override.

Only strings change, and a file is written back only if one did, in its own layout (indent, key order, final
newline). A path it cannot place is reported and the file left as it was; exit status 1 then. Idempotent.
Run once on the committed records:

    python -m cyclesem.study.relativize_records experiments --checkout /work/main --checkout /work/wt-study
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# an absolute path where a token starts: the whole string, after "(" (test_checkpoint) or "=" (an override)
ABSOLUTE = re.compile(r"(?:^|(?<=[\s(=]))/[^\s()]+")
# a run directory's checkpoint: everything before "checkpoints/" is the run directory
RUN_FILE = re.compile(r"^/.*?/(checkpoints/[^/]+)$")


def relative_path(path: str, checkouts: Sequence[Path]) -> str | None:
    """``path`` relative to its run directory or to a checkout; None when it is in neither."""
    if match := RUN_FILE.match(path):
        return match.group(1)
    for checkout in checkouts:
        if Path(path).is_relative_to(checkout):
            return Path(path).relative_to(checkout).as_posix()
    return None


def relativize(value: Any, checkouts: Sequence[Path], unplaced: list[str]) -> Any:
    """A copy of a JSON value with every absolute path in its strings made relative (see the module)."""
    if isinstance(value, dict):
        return {k: relativize(v, checkouts, unplaced) for k, v in value.items()}
    if isinstance(value, list):
        return [relativize(v, checkouts, unplaced) for v in value]
    if not isinstance(value, str):
        return value  # numbers, booleans, None: the scores are never touched

    def replace(match: re.Match) -> str:
        relative = relative_path(match.group(0), checkouts)
        if relative is None:
            unplaced.append(match.group(0))
            return match.group(0)
        return relative

    return ABSOLUTE.sub(replace, value)


def layout(text: str) -> dict[str, Any]:
    """json.dumps arguments that write ``text``'s own layout back."""
    second = text.splitlines()[1] if text.count("\n") > 1 else ""
    return {"indent": len(second) - len(second.lstrip(" ")) or None}


def rewrite(path: Path, checkouts: Sequence[Path]) -> tuple[bool, list[str]]:
    """Rewrite one file in place; (whether it changed, the absolute paths it could not place)."""
    text = path.read_text()
    record = json.loads(text)
    unplaced: list[str] = []
    new = relativize(record, checkouts, unplaced)
    if unplaced or new == record:
        return False, unplaced
    path.write_text(json.dumps(new, **layout(text)) + ("\n" if text.endswith("\n") else ""))
    return True, []


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cyclesem.study.relativize_records", description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="folders whose *.json files are rewritten")
    parser.add_argument("--checkout", action="append", default=[], type=Path,
                        help="a repository checkout the records were made in (repeatable)")
    args = parser.parse_args(argv)
    changed, failed = 0, 0
    for folder in args.folders:
        for path in sorted(folder.rglob("*.json")):
            done, unplaced = rewrite(path, args.checkout)
            changed += done
            if unplaced:
                failed += 1
                print(f"{path}: cannot place {', '.join(sorted(set(unplaced)))} (add its --checkout)", file=sys.stderr)
    print(f"rewrote {changed} records; {failed} left as they were")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
