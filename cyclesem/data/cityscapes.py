"""Cityscapes (Cordts et al. 2016): the real target domain.

Layout: ``ROOT/leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png`` and
``ROOT/gtFine/{split}/{city}/{stem}_gtFine_labelIds.png``. The labelled splits are train
(2975) and val (500); Cityscapes' own test labels are withheld (placeholder files), so with the real dataset
``split="test"`` needs ``labeled=False``. The embedded synthetic pair has a labelled held-out test split.
"""

from __future__ import annotations

from pathlib import Path

from cyclesem.data.image_io import DatasetError
from cyclesem.data.segmentation_dataset import LabeledImageDataset, Transform, missing_label_error

SPLITS = ("train", "val", "test")
LABELED_SPLITS = ("train", "val")  # of the real Cityscapes
IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
LAYOUT = (
    f"ROOT/leftImg8bit/{{split}}/{{city}}/*{IMAGE_SUFFIX} + ROOT/gtFine/{{split}}/{{city}}/*{LABEL_SUFFIX}"
)
_HOW_TO_GET = (
    "download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip from https://www.cityscapes-dataset.com "
    "and set CITYSCAPES_ROOT / data.target_train.root (data.target_val.root follows it), or use data=synthetic"
)


def cityscapes_name(image_path: Path) -> str:
    """``frankfurt_000000_000294`` for ``.../frankfurt_000000_000294_leftImg8bit.png``."""
    return image_path.name[: -len(IMAGE_SUFFIX)]


def find_cityscapes_pairs(root: str | Path, split: str) -> list[tuple[Path, Path]]:
    """Every image of ``split`` with the path its label should have (which may not exist), sorted by name."""
    if split not in SPLITS:
        raise ValueError(f"Cityscapes split must be one of {SPLITS}, got {split!r}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"Cityscapes root {root} does not exist; expected {LAYOUT}; {_HOW_TO_GET}")
    split_dir = root / "leftImg8bit" / split
    if not split_dir.is_dir():
        raise DatasetError(
            f"Cityscapes root {root} has no leftImg8bit/{split}/ folder; expected {LAYOUT}; {_HOW_TO_GET}"
        )
    images = sorted(split_dir.glob(f"*/*{IMAGE_SUFFIX}"), key=cityscapes_name)
    if not images:
        raise DatasetError(
            f"Cityscapes: no *{IMAGE_SUFFIX} images in {split_dir}/{{city}}/; expected {LAYOUT}"
        )
    label_dir = root / "gtFine" / split
    return [
        (image, label_dir / image.parent.name / f"{cityscapes_name(image)}{LABEL_SUFFIX}") for image in images
    ]


class CityscapesDataset(LabeledImageDataset):
    """Cityscapes pairs as segmentation items (see :class:`LabeledImageDataset`); ``name`` is the frame stem."""

    def __init__(
        self,
        root: str | Path,
        *,
        split: str = "train",
        transform: Transform | None = None,
        keep_label_resolution: bool = False,
        labeled: bool = True,
    ) -> None:
        self.root = Path(root).expanduser()
        self.split = split
        pairs = find_cityscapes_pairs(self.root, split)
        if labeled:
            missing = [(image, label) for image, label in pairs if not label.is_file()]
            if missing:
                raise missing_label_error(f"Cityscapes {split} in {self.root}", missing)
        super().__init__(
            pairs,
            [cityscapes_name(image) for image, _ in pairs],
            transform=transform,
            keep_label_resolution=keep_label_resolution,
            labeled=labeled,
        )
