"""Check a GTA5 or Cityscapes download; write a clean GTA5 split file.

    python -m cyclesem.data.prepare gta5 ROOT [--out split.txt] [--keep-pavement] [--workers N]
    python -m cyclesem.data.prepare cityscapes ROOT [--workers N]

Every pair is decoded in full and checked for: a missing label, an unreadable or truncated
image/label, image and label of different sizes, label ids outside the Cityscapes table.
The class pixel frequencies of the usable pairs are printed (they motivate class weights).

For GTA5 the usable pairs are written, one stem a line, to ``ROOT/split_clean.txt`` (or
``--out``); ``GTA5Dataset(root, split_file=...)`` reads it. By default the split also drops
scenes shot from the pavement rather than the road (an open issue of the source report),
found from the labels alone:

    in the bottom-centre region of the label — the bottom 25 % of rows, the middle 50 % of
    columns, i.e. the ground just in front of the camera — sidewalk pixels cover more than
    40 % of the region AND outnumber road pixels.

``--keep-pavement`` keeps those scenes. A training run with ``data.source_filter=pavement`` writes the same split
(:func:`ensure_pavement_free_split`: ``ROOT/split_no_pavement.txt``, as ``--out ROOT/split_no_pavement.txt``
would) and reads its source images through it. Exit status: 0 when the split was written (gta5) or
every pair is usable (cityscapes), 1 when nothing usable was found (gta5) or some
Cityscapes pair is broken, 2 with a one-line error when the root or its layout is missing
(then nothing is written).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from cyclesem.data.cityscapes import LABELED_SPLITS, cityscapes_name, find_cityscapes_pairs
from cyclesem.data.gta5 import find_gta5_pairs
from cyclesem.data.image_io import DatasetError, read_rgb
from cyclesem.data.labels import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES
from cyclesem.data.segmentation_dataset import UnknownLabelIdsError, read_train_ids_checked

ROAD, SIDEWALK = CLASS_NAMES.index("road"), CLASS_NAMES.index("sidewalk")
PAVEMENT_SIDEWALK_SHARE = 0.40

MISSING_LABEL = "missing label"
UNREADABLE = "unreadable file"
SIZE_MISMATCH = "image/label size mismatch"
UNKNOWN_IDS = "label ids outside the table"
PAVEMENT = "shot from the pavement"
NO_PAVEMENT_SPLIT = "split_no_pavement.txt"  # data.source_filter=pavement: ROOT/<this>


def is_pavement_scene(train_ids: np.ndarray) -> bool:
    """The pavement rule of the module docstring, on an ``(H, W)`` trainId label."""
    height, width = train_ids.shape
    region = train_ids[height - max(1, height // 4) :, width // 4 : width - width // 4]  # ground ahead
    sidewalk = int(np.count_nonzero(region == SIDEWALK))
    road = int(np.count_nonzero(region == ROAD))
    return sidewalk > PAVEMENT_SIDEWALK_SHARE * region.size and sidewalk > road


@dataclass(frozen=True)
class PairCheck:
    name: str
    problem: str | None = None  # one of the reason constants, None when usable
    detail: str = ""
    class_pixels: np.ndarray | None = None  # (NUM_CLASSES + 1,) trainId pixel counts, last = ignore
    pavement: bool = False


def check_pair(pair: tuple[str, Path, Path]) -> PairCheck:
    """Decode one ``(name, image, label)`` pair and say what, if anything, is wrong with it."""
    name, image_path, label_path = pair
    if not label_path.is_file():
        return PairCheck(name, MISSING_LABEL, f"no {label_path}")
    try:
        image = read_rgb(image_path)  # (H, W, 3)
    except DatasetError as err:
        return PairCheck(name, UNREADABLE, str(err))
    try:
        train_ids = read_train_ids_checked(label_path)  # (H, W)
    except UnknownLabelIdsError as err:
        return PairCheck(name, UNKNOWN_IDS, str(err))
    except DatasetError as err:
        return PairCheck(name, UNREADABLE, str(err))
    if train_ids.shape != image.shape[:2]:
        (ih, iw), (lh, lw) = image.shape[:2], train_ids.shape
        return PairCheck(name, SIZE_MISMATCH, f"image {iw}x{ih}, label {lw}x{lh}")
    counts = np.bincount(train_ids.ravel(), minlength=256)
    class_pixels = np.append(counts[:NUM_CLASSES], counts[IGNORE_INDEX])
    return PairCheck(name, class_pixels=class_pixels, pavement=is_pavement_scene(train_ids))


@dataclass
class Report:
    """The result of checking one dataset (split)."""

    dataset: str
    root: Path
    checks: list[PairCheck] = field(default_factory=list)

    @property
    def usable(self) -> list[PairCheck]:
        return [c for c in self.checks if c.problem is None]

    def kept(self, *, keep_pavement: bool) -> list[str]:
        return [c.name for c in self.usable if keep_pavement or not c.pavement]

    def dropped(self, *, keep_pavement: bool) -> dict[str, list[PairCheck]]:
        """Reason → pairs dropped for it (pavement scenes only when not kept)."""
        by_reason: dict[str, list[PairCheck]] = {}
        for check in self.checks:
            reason = check.problem or (PAVEMENT if check.pavement and not keep_pavement else None)
            if reason is not None:
                by_reason.setdefault(reason, []).append(check)
        return by_reason

    def class_pixels(self, *, keep_pavement: bool = True) -> np.ndarray:
        """``(NUM_CLASSES + 1,)`` pixel counts over the kept pairs; the last entry counts ignore."""
        counts = [c.class_pixels for c in self.usable if keep_pavement or not c.pavement]
        return np.sum(counts, axis=0) if counts else np.zeros(NUM_CLASSES + 1, dtype=np.int64)


def _run_checks(
    dataset: str, root: Path, pairs: Sequence[tuple[str, Path, Path]], workers: int, console: Console | None
) -> Report:
    report = Report(dataset, root)
    with Progress(console=console or Console(), transient=True) as progress:
        task = progress.add_task(f"checking {dataset}", total=len(pairs))
        # one process skips the pool start-up, which dominates on small sets
        pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
        try:
            results = pool.map(check_pair, pairs, chunksize=16) if pool else map(check_pair, pairs)
            for check in results:
                report.checks.append(check)
                progress.advance(task)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
    return report


def check_gta5(root: str | Path, *, workers: int = 1, console: Console | None = None) -> Report:
    """Check every GTA5 pair under ``root``; raises :class:`DatasetError` when the layout is missing."""
    pairs = [(image.stem, image, label) for image, label in find_gta5_pairs(root)]
    return _run_checks("GTA5", Path(root), pairs, workers, console)


def check_cityscapes(
    root: str | Path, split: str, *, workers: int = 1, console: Console | None = None
) -> Report:
    """Check every Cityscapes pair of ``split``; raises :class:`DatasetError` when the layout is missing."""
    pairs = [(cityscapes_name(image), image, label) for image, label in find_cityscapes_pairs(root, split)]
    return _run_checks(f"Cityscapes {split}", Path(root), pairs, workers, console)


def write_split(report: Report, path: Path, *, keep_pavement: bool) -> int:
    """Write the kept stems of ``report`` to ``path``; returns how many."""
    kept = report.kept(keep_pavement=keep_pavement)
    dropped = report.dropped(keep_pavement=keep_pavement)
    reasons = ", ".join(f"{len(checks)} {reason}" for reason, checks in dropped.items()) or "none"
    header = [
        "# written by `python -m cyclesem.data.prepare gta5`",
        f"# {len(kept)} of {len(report.checks)} pairs kept; dropped: {reasons}",
    ]
    path.write_text("\n".join(header + kept) + "\n")
    return len(kept)


def ensure_pavement_free_split(root: str | Path, *, workers: int = 1) -> Path:
    """``ROOT/split_no_pavement.txt``: the usable GTA5-layout pairs under ``root`` without the scenes shot from the
    pavement, as ``python -m cyclesem.data.prepare gta5 ROOT --out ROOT/split_no_pavement.txt`` writes it. Written
    once (atomically: side-by-side jobs may race) and read after; the synthetic pair's file goes with its folder
    when the pair is re-rendered. Raises :class:`DatasetError` when the layout is missing, nothing is left or the
    folder is read-only."""
    root = Path(root).expanduser()
    path = root / NO_PAVEMENT_SPLIT
    if path.is_file():
        return path
    report = check_gta5(root, workers=workers, console=Console(quiet=True))
    if not report.kept(keep_pavement=False):
        raise DatasetError(f"data.source_filter=pavement: no usable pair under {root} is left without the scenes "
                           "shot from the pavement")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write_split(report, tmp, keep_pavement=False)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise DatasetError(
            f"data.source_filter=pavement cannot write {path} ({err.strerror or err}): write the split elsewhere with "
            f"`python -m cyclesem.data.prepare gta5 {root} --out FILE` and set data.source.split_file=FILE "
            "data.source_filter=none") from None
    return path


def print_report(report: Report, console: Console, *, keep_pavement: bool = True) -> None:
    kept = report.kept(keep_pavement=keep_pavement)
    console.print(
        f"[bold]{report.dataset}[/] {report.root}: {len(report.checks)} pairs, {len(kept)} kept",
        soft_wrap=True,
    )
    dropped = report.dropped(keep_pavement=keep_pavement)
    if dropped:
        table = Table(title=f"{report.dataset}: dropped pairs")
        for column in ("reason", "pairs", "first examples"):
            table.add_column(column)
        for reason, checks in dropped.items():
            examples = "; ".join(f"{c.name} {c.detail}".strip() for c in checks[:3])
            table.add_row(reason, str(len(checks)), examples)
        console.print(table)
    pavement = sum(c.pavement for c in report.usable)
    if pavement and keep_pavement:
        console.print(f"{pavement} scene(s) shot from the pavement kept (--keep-pavement)", soft_wrap=True)
    pixels = report.class_pixels(keep_pavement=keep_pavement)
    total = max(int(pixels.sum()), 1)
    table = Table(title=f"{report.dataset}: class pixel frequencies")
    for column in ("trainId", "class", "pixels", "share %"):
        table.add_column(column, justify="right" if column != "class" else "left")
    names = [*CLASS_NAMES, "ignore"]
    for train_id, (name, count) in enumerate(zip(names, pixels, strict=True)):
        label = str(train_id) if train_id < NUM_CLASSES else str(IGNORE_INDEX)
        table.add_row(label, name, f"{int(count):,}", f"{100 * count / total:.2f}")
    console.print(table)


def _gta5(args: argparse.Namespace, console: Console) -> int:
    root = Path(args.root).expanduser()
    out = Path(args.out).expanduser() if args.out else root / "split_clean.txt"
    find_gta5_pairs(root)  # a missing root fails here, before the --out check names a folder inside it
    if not out.parent.is_dir():
        raise DatasetError(f"cannot write the split file: folder {out.parent} does not exist")
    report = check_gta5(root, workers=args.workers, console=console)
    print_report(report, console, keep_pavement=args.keep_pavement)
    if not report.kept(keep_pavement=args.keep_pavement):
        console.print(f"no usable GTA5 pairs under {root}; no split file written", soft_wrap=True)
        return 1
    count = write_split(report, out, keep_pavement=args.keep_pavement)
    console.print(f"wrote {count} names to {out}", soft_wrap=True)
    return 0


def _cityscapes(args: argparse.Namespace, console: Console) -> int:
    root = Path(args.root).expanduser()
    reports = [
        check_cityscapes(root, split, workers=args.workers, console=console) for split in LABELED_SPLITS
    ]
    for report in reports:
        print_report(report, console)
    return 0 if all(len(r.usable) == len(r.checks) for r in reports) else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cyclesem.data.prepare", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="dataset", required=True)
    default_workers = min(8, os.cpu_count() or 1)
    gta5 = commands.add_parser("gta5", help="check GTA5 pairs and write a clean split file")
    gta5.add_argument("root", help="GTA5 root holding images/ and labels/")
    gta5.add_argument("--out", help="split file to write (default ROOT/split_clean.txt)")
    gta5.add_argument("--keep-pavement", action="store_true", help="keep scenes shot from the pavement")
    gta5.add_argument("--workers", type=int, default=default_workers, help="decoding processes")
    cityscapes = commands.add_parser("cityscapes", help="check Cityscapes train and val pairs")
    cityscapes.add_argument("root", help="Cityscapes root holding leftImg8bit/ and gtFine/")
    cityscapes.add_argument("--workers", type=int, default=default_workers, help="decoding processes")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console()
    try:
        return _gta5(args, console) if args.dataset == "gta5" else _cityscapes(args, console)
    except DatasetError as err:
        # plain print: a one-line message, not wrapped to the terminal width
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
