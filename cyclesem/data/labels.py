"""The Cityscapes label space, taken from ``cityscapesscripts`` rather than retyped.

GTA5 labels use Cityscapes label ids, so one id → trainId table serves both domains.
"""

from __future__ import annotations

import numpy as np
from cityscapesscripts.helpers.labels import labels as _CS_LABELS

IGNORE_INDEX = 255

# the 19 training classes, ordered by trainId
_TRAIN_LABELS = sorted(
    (lab for lab in _CS_LABELS if 0 <= lab.trainId < IGNORE_INDEX and not lab.ignoreInEval),
    key=lambda lab: lab.trainId,
)
NUM_CLASSES = len(_TRAIN_LABELS)  # 19
CLASS_NAMES: tuple[str, ...] = tuple(lab.name for lab in _TRAIN_LABELS)
CLASS_COLORS: np.ndarray = np.array([lab.color for lab in _TRAIN_LABELS], dtype=np.uint8)  # (19, 3)
TRAIN_ID_TO_LABEL_ID: np.ndarray = np.array([lab.id for lab in _TRAIN_LABELS], dtype=np.uint8)  # (19,)

# label ids that appear in Cityscapes / GTA5 label PNGs (0..33); -1 (license plate) is never written
VALID_LABEL_IDS: frozenset[int] = frozenset(lab.id for lab in _CS_LABELS if lab.id >= 0)

# 256-entry lookup: label id → trainId (255 for ignored ids and for ids outside the table)
ID_TO_TRAIN_ID: np.ndarray = np.full(256, IGNORE_INDEX, dtype=np.uint8)
for _lab in _CS_LABELS:
    if _lab.id >= 0:
        ID_TO_TRAIN_ID[_lab.id] = _lab.trainId if 0 <= _lab.trainId < IGNORE_INDEX else IGNORE_INDEX


def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map a label-id image (H, W) to trainIds (H, W), ignored ids → 255."""
    return ID_TO_TRAIN_ID[label_ids]


def train_ids_to_label_ids(train_ids: np.ndarray) -> np.ndarray:
    """Map trainIds (H, W) back to Cityscapes label ids for the official evaluator; 255 → 0 (unlabeled)."""
    lut = np.zeros(256, dtype=np.uint8)
    lut[:NUM_CLASSES] = TRAIN_ID_TO_LABEL_ID
    return lut[train_ids]


def unknown_label_ids(label_ids: np.ndarray) -> list[int]:
    """Ids present in ``label_ids`` that are not Cityscapes label ids (sorted)."""
    present = np.unique(label_ids)
    return [int(v) for v in present if int(v) not in VALID_LABEL_IDS]
