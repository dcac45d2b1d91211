"""What the GTA5 and Cityscapes loaders share: decode a pair, map label ids → trainIds, transform.

Subclasses only find the files; an item is always
``{"image": (3, H, W) float in [-1, 1], "label": (H, W) long trainIds (255 = ignore), "name": str}``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from cyclesem.data.image_io import DatasetError, image_size, read_label_ids, read_rgb
from cyclesem.data.labels import ID_TO_TRAIN_ID, IGNORE_INDEX, VALID_LABEL_IDS, unknown_label_ids
from cyclesem.data.transforms import normalize_to_tensor

# lookup: is this byte a Cityscapes label id? (a whole-image check costs one gather, no np.unique)
_KNOWN_LABEL_ID = np.zeros(256, dtype=bool)
_KNOWN_LABEL_ID[sorted(VALID_LABEL_IDS)] = True

Transform = Callable[..., dict[str, Any]]


class UnknownLabelIdsError(DatasetError):
    """A label PNG holds values that are not Cityscapes label ids (e.g. trainIds or a colour image)."""


def read_train_ids_checked(label_path: Path) -> np.ndarray:
    """Label PNG → ``(H, W) uint8`` trainIds; ids outside the Cityscapes table raise :class:`DatasetError`."""
    label_ids = read_label_ids(label_path)  # (H, W) uint8 label ids
    if not _KNOWN_LABEL_ID[label_ids].all():
        raise UnknownLabelIdsError(
            f"label {label_path} holds ids {unknown_label_ids(label_ids)} that are not Cityscapes label ids "
            f"(expected ids in {min(VALID_LABEL_IDS)}..{max(VALID_LABEL_IDS)}; is this a trainId or colour image?)"
        )
    return ID_TO_TRAIN_ID[label_ids]  # (H, W) uint8 trainIds


def missing_label_error(dataset: str, missing: Sequence[tuple[Path, Path]]) -> DatasetError:
    """One error for every image whose label file is absent, naming the first few."""
    shown = "; ".join(f"{image} (expected {label})" for image, label in missing[:3])
    more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
    return DatasetError(f"{dataset}: {len(missing)} image(s) without a label: {shown}{more}")


class LabeledImageDataset(Dataset):
    """Image/label pairs → segmentation items. ``samples`` is ``[(image_path, label_path)]``.

    ``labeled=False`` never opens the label files (they need not exist): the label is all 255,
    the unlabelled-target setting. With ``keep_label_resolution`` the transform sees the image
    only and the label keeps its size on disk, so evaluation compares at label resolution.
    """

    def __init__(
        self,
        samples: Sequence[tuple[Path, Path]],
        names: Sequence[str],
        *,
        transform: Transform | None = None,
        keep_label_resolution: bool = False,
        labeled: bool = True,
    ) -> None:
        if len(samples) != len(names):
            raise ValueError(f"{len(samples)} samples but {len(names)} names")
        self.samples: list[tuple[Path, Path]] = list(samples)
        self.names: list[str] = list(names)
        self.transform = transform
        self.keep_label_resolution = keep_label_resolution
        self.labeled = labeled

    def __len__(self) -> int:
        return len(self.samples)

    def read_train_ids(self, index: int) -> np.ndarray:
        """The label alone as ``(H, W) uint8`` trainIds, no image decode (for class-frequency counts)."""
        image_path, label_path = self.samples[index]
        if not self.labeled:
            width, height = image_size(image_path)
            return np.full((height, width), IGNORE_INDEX, dtype=np.uint8)
        return read_train_ids_checked(label_path)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image_path, label_path = self.samples[index]
        image = read_rgb(image_path)  # (H, W, 3) uint8
        if self.labeled:
            train_ids = read_train_ids_checked(label_path)  # (H, W) uint8
            if train_ids.shape != image.shape[:2]:
                raise DatasetError(
                    f"image {image_path} is {image.shape[1]}x{image.shape[0]} but its label {label_path} "
                    f"is {train_ids.shape[1]}x{train_ids.shape[0]}"
                )
        else:
            train_ids = np.full(image.shape[:2], IGNORE_INDEX, dtype=np.uint8)

        if self.transform is None:
            image_tensor = normalize_to_tensor(image)
        elif self.keep_label_resolution:
            image_tensor = self._image_from(self.transform(image=image))
        else:
            out = self.transform(image=image, mask=train_ids)
            image_tensor = self._image_from(out)
            train_ids = out["mask"]
        label = torch.as_tensor(train_ids).long()  # (H, W) trainIds, 255 = ignore
        return {"image": image_tensor, "label": label, "name": self.names[index]}

    def _image_from(self, out: dict[str, Any]) -> torch.Tensor:
        image = out["image"]
        if not torch.is_tensor(image) or image.dtype != torch.float32:
            raise TypeError(
                "the transform must return a float (3, H, W) tensor image; end it with A.Normalize and "
                "ToTensorV2 (see cyclesem.data.transforms.train_transform / eval_transform)"
            )
        return image
