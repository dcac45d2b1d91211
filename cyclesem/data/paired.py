"""Source images next to a known rendering of the same scene in another style, and the source labels.

The synthetic pair writes each GTA5-layout frame twice — ``gta5/images`` and
``gta5_as_cityscapes/images`` — so a translation ``gen_s2t(source_image)`` can be compared
with the true ``paired_image`` (translation L1), and the source label beside it lets a fixed
target-domain segmenter score the translation (the FCN-score, ``translation_score``). The images
and the label of an item go through the same geometric transform, otherwise the comparison
measures the crop, not the translation. Without paired renders (real GTA5) an item has the
source image and label only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset

from cyclesem.data.gta5 import read_split_file
from cyclesem.data.image_io import DatasetError, read_rgb
from cyclesem.data.segmentation_dataset import read_train_ids_checked
from cyclesem.data.transforms import normalize_to_tensor

# albumentations replays every image-target transform on this key with the same random draw
_PAIRED_TARGET = {"paired_image": "image"}


class PairedImages(Dataset):
    """Items ``{"source_image": (3, H, W), "paired_image": (3, H, W), "label": (H, W), "name": str}``.

    Images are in [-1, 1]; ``label`` holds trainIds (255 = ignore) read from ``label_dir`` (GTA5 layout: Cityscapes
    label ids, mapped as `GTA5Dataset` maps them) and is present only with a ``label_dir``; ``paired_image`` only
    with a ``paired_dir``. Items are the ``*.png`` names present in every given folder, sorted, of those a
    ``split_file`` lists if one is given (one stem a line, as `cyclesem.data.prepare gta5` writes it: real GTA5's
    broken pairs are never scored); ``limit`` keeps the first ones. A ``transform`` (albumentations ``Compose``)
    gets ``paired_image`` registered as a second image target and the label as its mask (nearest neighbour).
    """

    def __init__(
        self,
        source_dir: str | Path,
        paired_dir: str | Path | None,
        *,
        label_dir: str | Path | None = None,
        transform: A.Compose | None = None,
        limit: int | None = None,
        split_file: str | Path | None = None,
    ) -> None:
        if paired_dir is None and label_dir is None:
            raise ValueError("paired images: give a paired_dir, a label_dir or both")
        self.source_dir = Path(source_dir).expanduser()
        self.paired_dir = Path(paired_dir).expanduser() if paired_dir is not None else None
        self.label_dir = Path(label_dir).expanduser() if label_dir is not None else None
        folders = [f for f in (self.source_dir, self.paired_dir, self.label_dir) if f is not None]
        for folder in folders:
            if not folder.is_dir():
                raise DatasetError(f"paired images: folder {folder} does not exist")
        shared = sorted(set.intersection(*({p.name for p in folder.glob("*.png")} for folder in folders)))
        if split_file is not None:
            listed = {f"{stem}.png" for stem in read_split_file(split_file)}
            shared = [name for name in shared if name in listed]
        if not shared:
            where = " and ".join(map(str, folders)) if len(folders) == 2 else ", ".join(map(str, folders))
            raise DatasetError(f"paired images: no *.png file name is in {'both' if len(folders) == 2 else 'all of'} "
                               f"{where}")
        if limit is not None:
            if limit < 1:
                raise ValueError(f"limit must be positive, got {limit}")
            shared = shared[:limit]
        self.file_names: list[str] = shared
        self.transform = transform
        if transform is not None:
            transform.add_targets(_PAIRED_TARGET)

    def __len__(self) -> int:
        return len(self.file_names)

    def __getitem__(self, index: int) -> dict[str, Any]:
        file_name = self.file_names[index]
        source_path = self.source_dir / file_name
        inputs = {"image": read_rgb(source_path)}  # (H, W, 3) uint8
        if self.paired_dir is not None:
            paired_path = self.paired_dir / file_name
            inputs["paired_image"] = _same_size(read_rgb(paired_path), inputs["image"], "paired images",
                                                source_path, paired_path)  # (H, W, 3) uint8
        if self.label_dir is not None:
            label_path = self.label_dir / file_name
            inputs["mask"] = _same_size(read_train_ids_checked(label_path), inputs["image"], "image and label",
                                        source_path, label_path)  # (H, W) uint8 trainIds
        if self.transform is None:
            out = {k: normalize_to_tensor(v) if k != "mask" else v for k, v in inputs.items()}
        else:
            out = self.transform(**inputs)
            if not all(torch.is_tensor(out[k]) for k in inputs if k != "mask"):
                raise TypeError(
                    "the transform must end with A.Normalize and ToTensorV2 (see cyclesem.data.transforms)"
                )
        item = {"source_image": out["image"], "name": Path(file_name).stem}
        if "paired_image" in out:
            item["paired_image"] = out["paired_image"]
        if "mask" in out:
            item["label"] = torch.as_tensor(out["mask"]).long()  # (H, W) trainIds, 255 = ignore
        return item


def _same_size(array: np.ndarray, source: np.ndarray, what: str, source_path: Path, path: Path) -> np.ndarray:
    if array.shape[:2] != source.shape[:2]:
        raise DatasetError(
            f"{what} differ in size: {source_path} is {source.shape[1]}x{source.shape[0]}, "
            f"{path} is {array.shape[1]}x{array.shape[0]}"
        )
    return array
