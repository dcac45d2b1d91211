"""The z-buffer that procedural street scenes are ray-cast into (the codes its pixels hold: ``layout``).

Every surface is one of three kinds: the ground plane, a plane parallel to the street (X = const) or an
upright billboard facing the camera (z = const). A pixel keeps its trainId, an instance number, a sub-part
code (window, lane marking, ...), its surface coordinates in metres, its depth and which way it faces.

World: X lateral (m, + right of the camera), Y height above the ground, z depth along the street.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cyclesem.data.labels import IGNORE_INDEX
from cyclesem.data.synthetic.layout import (
    EGO,
    FACES_CAMERA,
    FACES_LEFT,
    FACES_RIGHT,
    GROUND_FACE,
    PLAIN,
    SKY,
    Mask2D,
    SceneLayout,
    Street,
)


@dataclass(frozen=True)
class Camera:
    height: int
    width: int
    f: float  # pixels
    cx: float  # column of the vanishing point
    horizon: float  # row of the vanishing point
    cam_h: float  # metres above the ground

    def col(self, X: float, z: float) -> float:
        return self.cx + self.f * X / z

    def row(self, Y: float, z: float) -> float:
        return self.horizon + self.f * (self.cam_h - Y) / z


def _span(a: float, b: float, n: int, at_least_one: bool) -> slice | None:
    """Pixels whose centres lie in [a, b), clipped to [0, n); thin objects keep at least one pixel."""
    lo, hi = int(np.ceil(a - 0.5)), int(np.ceil(b - 0.5))
    if hi <= lo and at_least_one:
        lo = int(np.floor((a + b) / 2))
        hi = lo + 1
    lo, hi = max(lo, 0), min(hi, n)
    return slice(lo, hi) if hi > lo else None


class Canvas:
    """A z-buffer holding every per-pixel layer of a SceneLayout."""

    def __init__(self, cam: Camera):
        self.cam, self.count = cam, 0
        h, w = cam.height, cam.width
        self.py = (np.arange(h, dtype=np.float32) + 0.5)[:, None]  # (H, 1) pixel-centre rows
        self.px = (np.arange(w, dtype=np.float32) + 0.5)[None, :]  # (1, W)
        self.train_ids = np.full((h, w), SKY, np.uint8)
        self.instances = np.zeros((h, w), np.int32)
        self.parts = np.zeros((h, w), np.uint8)
        # the sky has no surface: its texture coordinates are the screen's
        self.u = np.broadcast_to(self.px * (8.0 / w), (h, w)).astype(np.float32)
        self.v = np.broadcast_to(self.py * (8.0 / w), (h, w)).astype(np.float32)
        self.depth = np.full((h, w), np.inf, np.float32)
        self.facing = np.zeros((h, w), np.uint8)

    def instance(self) -> int:
        self.count += 1
        return self.count

    def paint(self, rs: slice, cs: slice, mask: np.ndarray, z, train_id, inst: int, part, u, v, facing: int):
        win = mask & (z < self.depth[rs, cs])  # (h', w')
        if not win.any():
            return
        for layer, value in ((self.depth, z), (self.train_ids, train_id), (self.instances, inst),
                             (self.parts, part), (self.u, u), (self.v, v), (self.facing, facing)):
            layer[rs, cs][win] = np.broadcast_to(value, win.shape)[win]

    def frontal(self, X0: float, X1: float, Y0: float, Y1: float, z: float, train_id: int, inst: int,
                part: int = PLAIN, shape: Mask2D | None = None, parts: Mask2D | None = None) -> None:
        """The box [X0, X1] × [Y0, Y1] of the upright plane at depth z, optionally cut by shape(X, Y)."""
        cam = self.cam
        rs = _span(cam.row(Y1, z), cam.row(Y0, z), cam.height, True)
        cs = _span(cam.col(X0, z), cam.col(X1, z), cam.width, True)
        if rs is None or cs is None:
            return
        X = (self.px[:, cs] - cam.cx) * (z / cam.f)  # (1, w')
        Y = cam.cam_h - (self.py[rs] - cam.horizon) * (z / cam.f)  # (h', 1)
        X, Y = np.broadcast_arrays(X, Y)  # (h', w') views
        mask = np.ones((rs.stop - rs.start, cs.stop - cs.start), bool) if shape is None else shape(X, Y)
        part = part if parts is None else parts(X, Y)
        self.paint(rs, cs, mask, z, train_id, inst, part, X, Y, FACES_CAMERA)

    def side(self, X: float, z0: float, z1: float, Y0: float, Y1: float, train_id: int, inst: int,
             shape: Mask2D | None = None, parts: Mask2D | None = None) -> None:
        """The plane X = const between depths z0..z1 and heights Y0..Y1, optionally cut by shape(z, Y)."""
        cam = self.cam
        z0 = max(z0, 0.3)
        if z1 <= z0 or abs(X) < 0.05:  # behind the camera, or seen edge-on
            return
        c0, c1 = sorted((cam.col(X, z0), cam.col(X, z1)))
        top, bottom = min(cam.row(Y1, z0), cam.row(Y1, z1)), max(cam.row(Y0, z0), cam.row(Y0, z1))
        rs = _span(top, bottom, cam.height, False)
        cs = _span(c0, c1, cam.width, False)
        if rs is None or cs is None:
            return
        with np.errstate(divide="ignore", invalid="ignore"):  # the vanishing point's column never meets it
            z = X * cam.f / (self.px[:, cs] - cam.cx)  # (1, w') where each column's ray meets the plane
            Y = cam.cam_h - (self.py[rs] - cam.horizon) * z / cam.f  # (h', w')
        mask = (z >= z0) & (z <= z1) & (Y >= Y0) & (Y <= Y1)
        if shape is not None:
            mask &= shape(z, Y)
        self.paint(rs, cs, mask, z, train_id, inst, PLAIN if parts is None else parts(z, Y), z, Y,
                   FACES_RIGHT if X < 0 else FACES_LEFT)

    def ground(self, street: Street) -> None:
        """The ground plane below the horizon, classified by the street's cross-section."""
        cam = self.cam
        rs = _span(cam.horizon + 0.3, cam.height, cam.height, False)  # rows at the horizon: ~infinitely far
        if rs is None:
            return
        z = cam.f * cam.cam_h / (self.py[rs] - cam.horizon)  # (h', 1)
        lateral = (self.px - cam.cx) * z / cam.f - street.centre  # (h', W) metres from the road centre
        train_ids, parts = street.classify(lateral, np.broadcast_to(z, lateral.shape), z / cam.f)
        everywhere = np.ones(lateral.shape, bool)
        self.paint(rs, slice(0, cam.width), everywhere, z, train_ids, self.instance(), parts, lateral, z,
                   GROUND_FACE)

    def ego_hood(self, fraction: float) -> None:
        """The bonnet of the recording car, curved, in front of everything."""
        cam = self.cam
        reach = fraction * cam.height * (1 - 0.6 * (self.px / cam.width * 2 - 1) ** 2)  # (1, W) rows covered
        mask = self.py > cam.height - reach  # (H, W)
        self.paint(slice(0, cam.height), slice(0, cam.width), mask, 0.01, IGNORE_INDEX, self.instance(), EGO,
                   self.px * (8.0 / cam.width), self.py * (8.0 / cam.width), FACES_CAMERA)

    def layout(self) -> SceneLayout:
        return SceneLayout(self.train_ids, self.instances, self.parts, self.u, self.v, self.depth,
                           self.facing, self.cam.horizon)
