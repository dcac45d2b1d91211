"""GTA5 (Richter et al., "Playing for Data", 2016): the labelled synthetic source domain.

Layout: ``ROOT/images/NNNNN.png`` (RGB) and ``ROOT/labels/NNNNN.png`` (Cityscapes label ids).
A few hundred published pairs have an image and label of different sizes; they are skipped
(with one warning) rather than resized, since no resize makes such a label line up.
``python -m cyclesem.data.prepare gta5 ROOT`` writes a split file of the pairs worth keeping.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from cyclesem.data.image_io import DatasetError, image_size
from cyclesem.data.segmentation_dataset import LabeledImageDataset, Transform, missing_label_error

LAYOUT = "ROOT/images/NNNNN.png (RGB) + ROOT/labels/NNNNN.png (uint8 Cityscapes label ids)"
_HOW_TO_FIX = "set GTA5_ROOT / data.source.root or use data=synthetic"


def find_gta5_pairs(root: str | Path, *, require_labels: bool = True) -> list[tuple[Path, Path]]:
    """Every ``images/*.png`` with the path its label should have (which may not exist), sorted by name."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"GTA5 root {root} does not exist; expected {LAYOUT}; {_HOW_TO_FIX}")
    images_dir, labels_dir = root / "images", root / "labels"
    for folder in (images_dir, labels_dir) if require_labels else (images_dir,):
        if not folder.is_dir():
            raise DatasetError(
                f"GTA5 root {root} has no {folder.name}/ folder; expected {LAYOUT}; {_HOW_TO_FIX}"
            )
    images = sorted(images_dir.glob("*.png"))
    if not images:
        raise DatasetError(f"GTA5: no *.png images in {images_dir}; expected {LAYOUT}; {_HOW_TO_FIX}")
    return [(image, labels_dir / image.name) for image in images]


def read_split_file(path: str | Path) -> list[str]:
    """Stems listed in a split file: one ``00001`` or ``00001.png`` per line, ``#`` starts a comment."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DatasetError(f"GTA5 split file {path} does not exist")
    stems = []
    for line in path.read_text().splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            name = Path(entry).name
            stems.append(name[: -len(".png")] if name.endswith(".png") else name)
    if not stems:
        raise DatasetError(f"GTA5 split file {path} lists no images")
    return stems


def _select(pairs: list[tuple[Path, Path]], split_file: str | Path) -> list[tuple[Path, Path]]:
    by_stem = {image.stem: (image, label) for image, label in pairs}
    wanted = sorted(set(read_split_file(split_file)))
    unknown = [stem for stem in wanted if stem not in by_stem]
    if unknown:
        images_dir = pairs[0][0].parent
        raise DatasetError(
            f"GTA5 split file {split_file} names {len(unknown)} image(s) not in {images_dir}: "
            f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}"
        )
    return [by_stem[stem] for stem in wanted]


def _size_mismatches(
    pairs: Sequence[tuple[Path, Path]],
) -> list[tuple[Path, tuple[int, int], tuple[int, int]]]:
    # header reads only: a few ms per pair even for the full 25k-image set
    mismatched = []
    for image, label in pairs:
        image_wh, label_wh = image_size(image), image_size(label, kind="label")
        if image_wh != label_wh:
            mismatched.append((image, image_wh, label_wh))
    return mismatched


class GTA5Dataset(LabeledImageDataset):
    """GTA5 pairs as segmentation items (see :class:`LabeledImageDataset`); ``name`` is the file stem."""

    def __init__(
        self,
        root: str | Path,
        *,
        split_file: str | Path | None = None,
        transform: Transform | None = None,
        keep_label_resolution: bool = False,
        on_size_mismatch: Literal["warn", "error"] = "warn",
        labeled: bool = True,
    ) -> None:
        if on_size_mismatch not in ("warn", "error"):
            raise ValueError(f"on_size_mismatch must be 'warn' or 'error', got {on_size_mismatch!r}")
        self.root = Path(root).expanduser()
        pairs = find_gta5_pairs(self.root, require_labels=labeled)
        if split_file is not None:
            pairs = _select(pairs, split_file)
        if labeled:
            missing = [(image, label) for image, label in pairs if not label.is_file()]
            if missing:
                raise missing_label_error(f"GTA5 root {self.root}", missing)
            pairs = self._without_size_mismatches(pairs, on_size_mismatch)
        super().__init__(
            pairs,
            [image.stem for image, _ in pairs],
            transform=transform,
            keep_label_resolution=keep_label_resolution,
            labeled=labeled,
        )

    def _without_size_mismatches(
        self, pairs: list[tuple[Path, Path]], on_size_mismatch: Literal["warn", "error"]
    ) -> list[tuple[Path, Path]]:
        mismatched = _size_mismatches(pairs)
        if not mismatched:
            return pairs
        shown = ", ".join(
            f"{image.stem} (image {iw}x{ih}, label {lw}x{lh})" for image, (iw, ih), (lw, lh) in mismatched[:3]
        )
        more = f" and {len(mismatched) - 3} more" if len(mismatched) > 3 else ""
        message = (
            f"GTA5 root {self.root}: {len(mismatched)} of {len(pairs)} pairs have image and label of different "
            f"sizes: {shown}{more}"
        )
        if on_size_mismatch == "error":
            raise DatasetError(message)
        warnings.warn(
            f"{message}; skipping them (write a clean split with `python -m cyclesem.data.prepare gta5 ROOT`)",
            stacklevel=3,
        )
        bad = {image for image, _, _ in mismatched}
        kept = [pair for pair in pairs if pair[0] not in bad]
        if not kept:
            raise DatasetError(f"GTA5 root {self.root}: no pairs left after skipping size mismatches")
        return kept
