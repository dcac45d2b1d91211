"""What the synthetic scenes are made of: the label, sub-part and facing codes a rendered pixel holds, the
rendered `SceneLayout`, and the `Street` whose cross-section classifies the ground plane.

World: X lateral (m, + right of the camera), Y height above the ground, z depth along the street.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from cityscapesscripts.helpers.labels import name2label

from cyclesem.data.labels import CLASS_NAMES, train_ids_to_label_ids

SYNTHETIC_CLASSES: tuple[int, ...] = tuple(CLASS_NAMES.index(name) for name in (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "bicycle"))  # the ones rendered
(ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEGETATION, TERRAIN, SKY, PERSON, RIDER, CAR,
 TRUCK, BUS, TRAIN, BICYCLE) = SYNTHETIC_CLASSES

# sub-parts: same label as their object, own colour in each style
PLAIN, WINDOW, MARKING, KERB, GLASS, TYRE, LAMP, SIGN_FACE, SKIN, LEGS, TRUNK, RAIL, EGO = range(13)
NUM_PARTS = 13
# which way a surface faces, for directional light
SKY_FACE, GROUND_FACE, FACES_RIGHT, FACES_LEFT, FACES_CAMERA = range(5)

Mask2D = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (surface u, surface v) -> array


@dataclass(frozen=True)
class SceneLayout:
    """One rendered scene; all arrays (H, W)."""

    train_ids: np.ndarray  # uint8, 255 where ignored (ego vehicle)
    instances: np.ndarray  # int32, 0 = sky
    parts: np.ndarray  # uint8 sub-part codes
    u: np.ndarray  # float32 surface coordinates in metres (screen coordinates for the sky)
    v: np.ndarray
    depth: np.ndarray  # float32 metres, inf for the sky
    facing: np.ndarray  # uint8
    horizon: float  # row of the horizon

    def label_ids(self) -> np.ndarray:
        """Cityscapes label ids (H, W) uint8 as written to the label PNGs."""
        ids = train_ids_to_label_ids(self.train_ids)
        ids[self.parts == EGO] = name2label["ego vehicle"].id
        return ids


@dataclass(frozen=True)
class Street:
    """Cross-section and extent of one street; classifies the ground plane."""

    centre: float  # X of the road centre
    half: float  # road half-width
    walk: tuple[float, float]  # sidewalk width, left and right
    grass: tuple[float, float]  # grass strip beyond each sidewalk (0 = none)
    outer: tuple[int, int]  # ground class beyond that
    two_way: bool  # dashed centre line
    crossing: float  # depth of a zebra crossing (inf = none)
    end: float  # depth where the street ends

    def green_end(self, side: int) -> float:
        k = (side + 1) // 2
        return self.centre + side * (self.half + self.walk[k] + self.grass[k])

    def classify(self, lateral: np.ndarray, z: np.ndarray, pixel: np.ndarray) -> tuple[np.ndarray, ...]:
        """Ground classes and markings; pixel = metres per pixel, so far lines stay one pixel wide."""
        left, a = lateral < 0, np.abs(lateral)
        walk, grass = np.where(left, *self.walk), np.where(left, *self.grass)
        ids = np.where(a < self.half, ROAD, np.where(a < self.half + walk, SIDEWALK, np.where(
            a < self.half + walk + grass, TERRAIN, np.where(left, *self.outer)))).astype(np.uint8)
        thin = np.maximum(0.07, 0.5 * pixel)
        marking = (np.abs(a - (self.half - 0.3)) < thin) | (self.two_way & (a < thin) & (z % 9 < 4.5))
        marking |= (z > self.crossing) & (z < self.crossing + 3) & (lateral % 1.0 < 0.5)
        parts = np.where((a < self.half) & marking, MARKING, np.where(
            (a >= self.half) & (a < self.half + np.maximum(0.15, pixel)), KERB, PLAIN))
        return ids, parts.astype(np.uint8)
