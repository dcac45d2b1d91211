"""Source images next to a known rendering of the same scene in another style.

The synthetic pair writes each GTA5-layout frame twice — ``gta5/images`` and
``gta5_as_cityscapes/images`` — so a translation ``gen_s2t(source_image)`` can be compared
with the true ``paired_image``. Both images of an item go through the same geometric
transform, otherwise the comparison measures the crop, not the translation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import albumentations as A
import torch
from torch.utils.data import Dataset

from cyclesem.data.image_io import DatasetError, read_rgb
from cyclesem.data.transforms import normalize_to_tensor

# albumentations replays every image-target transform on this key with the same random draw
_PAIRED_TARGET = {"paired_image": "image"}


class PairedImages(Dataset):
    """Items ``{"source_image": (3, H, W), "paired_image": (3, H, W), "name": str}`` in [-1, 1].

    Pairs are the ``*.png`` names present in both folders, sorted; ``limit`` keeps the first ones.
    A ``transform`` (albumentations ``Compose``) gets ``paired_image`` registered as a second image target.
    """

    def __init__(
        self,
        source_dir: str | Path,
        paired_dir: str | Path,
        *,
        transform: A.Compose | None = None,
        limit: int | None = None,
    ) -> None:
        self.source_dir, self.paired_dir = Path(source_dir).expanduser(), Path(paired_dir).expanduser()
        for folder in (self.source_dir, self.paired_dir):
            if not folder.is_dir():
                raise DatasetError(f"paired images: folder {folder} does not exist")
        shared = sorted(
            {p.name for p in self.source_dir.glob("*.png")} & {p.name for p in self.paired_dir.glob("*.png")}
        )
        if not shared:
            raise DatasetError(
                f"paired images: no *.png file name is in both {self.source_dir} and {self.paired_dir}"
            )
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
        source_path, paired_path = self.source_dir / file_name, self.paired_dir / file_name
        source, paired = read_rgb(source_path), read_rgb(paired_path)  # (H, W, 3) uint8 each
        if source.shape != paired.shape:
            raise DatasetError(
                f"paired images differ in size: {source_path} is {source.shape[1]}x{source.shape[0]}, "
                f"{paired_path} is {paired.shape[1]}x{paired.shape[0]}"
            )
        if self.transform is None:
            source_tensor, paired_tensor = normalize_to_tensor(source), normalize_to_tensor(paired)
        else:
            out = self.transform(image=source, paired_image=paired)
            source_tensor, paired_tensor = out["image"], out["paired_image"]
            if not (torch.is_tensor(source_tensor) and torch.is_tensor(paired_tensor)):
                raise TypeError(
                    "the transform must end with A.Normalize and ToTensorV2 (see cyclesem.data.transforms)"
                )
        return {"source_image": source_tensor, "paired_image": paired_tensor, "name": Path(file_name).stem}
