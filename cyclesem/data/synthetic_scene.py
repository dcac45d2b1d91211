"""Geometry of the procedural street scenes behind the synthetic domain pair.

A pinhole camera looks down a straight street. Every surface is ray-cast into a z-buffer: the
ground plane (road, sidewalks, grass), planes parallel to the street (façades, hedges, walls,
fences, vehicle flanks, parked bicycles) and upright billboards facing the camera (vehicles from
behind, people, poles, lights, signs, trees). A pixel keeps its trainId, an instance number, a
sub-part code (window, lane marking, ...) and its surface coordinates in metres, so the appearance
(``synthetic.py``) shades and textures it in either domain's style without touching the labels.

World: X lateral (m, + right of the camera), Y height above the ground, z depth along the street.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from cityscapesscripts.helpers.labels import name2label

from cyclesem.data.labels import CLASS_NAMES, IGNORE_INDEX, train_ids_to_label_ids

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
class SceneGeometry:
    """Distribution of one domain's scene layouts (the geometric part of the domain shift)."""

    horizon: tuple[float, float]  # mean, std of the horizon row, as a fraction of the image height
    focal: tuple[float, float]  # mean, std of the focal length, as a fraction of the image width
    camera_height: tuple[float, float]  # mean, std, metres
    lateral: tuple[float, float]  # range of the camera's offset from the road centre, metres
    object_scale: float  # size of vehicles and people relative to the source
    ego_hood: float  # probability of the ego vehicle's bonnet at the bottom (label id 1, ignored)


# the game is often shot from the pavement with a wide lens; the city from a car, a bit higher, longer lens
SOURCE_GEOMETRY = SceneGeometry((0.44, 0.05), (0.75, 0.06), (1.4, 0.25), (-4.5, 3.0), 1.0, 0.0)
TARGET_GEOMETRY = SceneGeometry((0.38, 0.04), (0.85, 0.05), (1.7, 0.12), (-2.5, 0.5), 1.1, 0.5)


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
class _Camera:
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


class _Canvas:
    """A z-buffer holding every per-pixel layer of a SceneLayout."""

    def __init__(self, cam: _Camera):
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

    def ground(self, street: _Street) -> None:
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


def _camera(rng: np.random.Generator, geometry: SceneGeometry, height: int, width: int) -> _Camera:
    horizon = float(np.clip(rng.normal(*geometry.horizon), 0.2, 0.7))
    return _Camera(height, width, f=width * max(0.3, rng.normal(*geometry.focal)),
                   cx=width * (0.5 + rng.normal(0, 0.04)), horizon=height * horizon,
                   cam_h=max(0.8, rng.normal(*geometry.camera_height)))


@dataclass(frozen=True)
class _Street:
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


def _street(rng: np.random.Generator, geometry: SceneGeometry) -> _Street:
    half = rng.uniform(3.0, 7.5)
    grass = np.where(rng.random(2) < 0.4, rng.uniform(1.0, 4.0, 2), 0.0)
    return _Street(centre=-rng.uniform(*geometry.lateral), half=half, walk=tuple(rng.uniform(1.5, 4.5, 2)),
                   grass=tuple(grass), outer=tuple(rng.choice([TERRAIN, SIDEWALK], 2)), two_way=half > 4.5,
                   crossing=rng.uniform(6, 40) if rng.random() < 0.25 else np.inf, end=rng.uniform(40, 150))


def _windows(rng: np.random.Generator, top: float) -> Mask2D:
    """Window grid of one building on its façade coordinates (along, up); windows stay `building`."""
    floor, pitch, sill = rng.uniform(2.8, 3.8), rng.uniform(1.8, 3.5), rng.uniform(0.5, 1.0)
    width, tall = pitch * rng.uniform(0.35, 0.7), (floor - sill) * rng.uniform(0.45, 0.8)
    shift = rng.uniform(0, 9)
    shop = rng.random() < 0.4

    def parts(along: np.ndarray, up: np.ndarray) -> np.ndarray:
        level = up % floor
        win = (level > sill) & (level < sill + tall) & (up > floor) & (up < top - 0.6)
        win &= (along + shift) % pitch < width
        win |= shop & (up > 0.3) & (up < 2.6) & ((along + shift) % pitch < 0.85 * pitch)
        return np.where(win, WINDOW, PLAIN).astype(np.uint8)
    return parts


def _wobble(rng: np.random.Generator, base: float, amp: float) -> Callable[[np.ndarray], np.ndarray]:
    k, phase = rng.uniform(0.5, 3.0, 2), rng.uniform(0, 6.3, 2)
    return lambda t: base + amp * (np.sin(k[0] * t + phase[0]) + 0.5 * np.sin(3.1 * k[1] * t + phase[1]))


def _rails(post: float) -> Mask2D:
    return lambda u, v: np.where((u % post < 0.12) | (v % 0.5 < 0.08), RAIL, PLAIN).astype(np.uint8)


def _roadside(cv: _Canvas, rng: np.random.Generator, st: _Street, side: int) -> None:
    """Façades, tree groups and gaps along one side, with walls, fences or hedges in front."""
    facade, z = st.green_end(side) + side * rng.uniform(0.0, 2.0), rng.uniform(-5.0, 4.0)
    while z < st.end:
        z1 = min(z + rng.uniform(8, 35), st.end)
        kind = rng.choice(3, p=[0.65, 0.22, 0.13])  # building, trees, gap
        if kind == 0:
            h = rng.uniform(5, 24)
            X = facade + side * rng.uniform(0, 1.5)
            cv.side(X, z, z1, 0, h, BUILDING, cv.instance(), parts=_windows(rng, h))
        elif kind == 1:
            for tz in rng.uniform(max(z, 2), z1, rng.integers(1, 4)):
                _tree(cv, rng, facade + side * rng.uniform(0.0, 3.0), tz)
            if rng.random() < 0.5:
                h = rng.uniform(4, 12)
                X = facade + side * rng.uniform(3, 8)  # set back behind the trees
                cv.side(X, z, z1, 0, h, BUILDING, cv.instance(), parts=_windows(rng, h))
        fence_x, r = st.green_end(side) + side * 0.2, rng.random()
        if r < 0.12:
            cv.side(fence_x, z, z1, 0, rng.uniform(0.8, 2.5), WALL, cv.instance())
        elif r < 0.24:
            rails = _rails(rng.uniform(1.5, 3.0))
            cv.side(fence_x, z, z1, 0, rng.uniform(1.0, 1.8), FENCE, cv.instance(), parts=rails)
        elif r < 0.36:
            top = _wobble(rng, rng.uniform(0.9, 1.7), 0.12)
            cv.side(fence_x, z, z1, 0, 2.2, VEGETATION, cv.instance(), shape=lambda u, v, t=top: v <= t(u))
        z = z1 + (rng.uniform(2, 6) if rng.random() < 0.25 else 0.0)


def _far_end(cv: _Canvas, rng: np.random.Generator, st: _Street) -> None:
    r = rng.random()
    if r < 0.45:
        h = rng.uniform(6, 20)
        cv.frontal(-300, 300, 0, h, st.end, BUILDING, cv.instance(), parts=_windows(rng, h))
    elif r < 0.85:
        top = _wobble(rng, rng.uniform(3, 10), 1.5)
        cv.frontal(-300, 300, 0, 20, st.end, VEGETATION, cv.instance(), shape=lambda x, y: y <= top(x / 4))


def _tree(cv: _Canvas, rng: np.random.Generator, X: float, z: float) -> None:
    inst, trunk, rx = cv.instance(), rng.uniform(1.6, 3.0), rng.uniform(1.0, 2.8)
    ry, k = rx * rng.uniform(0.8, 1.4), rng.integers(4, 9)  # crown radii, lobes
    phase, wob = rng.uniform(0, 6.3), rng.uniform(0.08, 0.2)
    cy = trunk + ry
    cv.frontal(X - 0.14, X + 0.14, 0, cy, z, VEGETATION, inst, TRUNK)
    cv.frontal(X - 1.25 * rx, X + 1.25 * rx, cy - 1.25 * ry, cy + 1.25 * ry, z - 0.05, VEGETATION, inst,
               shape=lambda x, y: np.hypot((x - X) / rx, (y - cy) / ry)
               <= 1 + wob * np.sin(k * np.arctan2(y - cy, x - X) + phase))


# width, height, length (m)
_VEHICLE_SIZES = {CAR: (1.8, 1.45, 4.3), TRUCK: (2.4, 3.4, 7.5), BUS: (2.55, 3.1, 11.0),
                  TRAIN: (2.65, 3.4, 22.0)}


def _vehicle(cv: _Canvas, rng: np.random.Generator, kind: int, X: float, z: float, scale: float) -> None:
    """Seen from behind, with the flank that faces the camera and wheels on it."""
    w, h, length = np.array(_VEHICLE_SIZES[kind]) * scale * rng.uniform(0.92, 1.08)
    inst, hw, car = cv.instance(), w / 2, kind == CAR
    waist = 0.62 * h if car else 0.12 * h  # cars: body below, narrower cabin above

    def glass(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if car:
            band = (y > waist + 0.05 * h) & (y < 0.93 * h)
        else:
            band = (y > 0.62 * h) & (y < 0.9 * h) & (kind in (BUS, TRAIN))
        return np.where(band & (np.abs(x - X) < 0.7 * hw), GLASS, PLAIN).astype(np.uint8)
    cv.frontal(X - hw, X + hw, 0.2 * h, waist if car else h, z, kind, inst, parts=None if car else glass)
    if car:
        cv.frontal(X - 0.8 * hw, X + 0.8 * hw, waist, h, z, kind, inst, parts=glass)
    for sgn in (-1, 1):
        lamp = sorted((X + sgn * (hw - 0.05), X + sgn * (hw - 0.35)))
        tyre = sorted((X + sgn * (hw - 0.03), X + sgn * (hw - 0.33)))
        cv.frontal(*lamp, 0.4 * h, 0.5 * h, z - 0.01, kind, inst, LAMP)
        cv.frontal(*tyre, 0, 0.2 * h + 0.05, z + 0.3, kind, inst, TYRE)
    flank = X - hw if X - hw > 0.3 else X + hw if X + hw < -0.3 else None
    if flank is None:
        return
    r, hubs = 0.33 * scale, (z + 0.18 * length, z + 0.82 * length)

    def wheels(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return ((u - hubs[0]) ** 2 + (v - r) ** 2 < r * r) | ((u - hubs[1]) ** 2 + (v - r) ** 2 < r * r)

    def cabin_glass(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        window = (u > z + 0.25 * length) & (u < z + 0.72 * length) & (v < 0.93 * h)
        return np.where(window, GLASS, PLAIN).astype(np.uint8)
    cv.side(flank, z, z + length, 0, waist if car else h, kind, inst,
            shape=lambda u, v: (v > 0.2 * h) | wheels(u, v),  # the road shows between the wheels
            parts=lambda u, v: np.where(wheels(u, v), TYRE, PLAIN if car else glass(X, v)).astype(np.uint8))
    if car:
        cv.side(flank - np.sign(flank) * 0.2 * hw, z + 0.15 * length, z + 0.8 * length, waist, h, kind, inst,
                parts=cabin_glass)


def _person(cv: _Canvas, rng: np.random.Generator, X: float, z: float, scale: float, kind: int = PERSON,
            base: float = 0.0) -> None:
    """Legs, torso, head: one to a few pixels wide at the default size."""
    inst, tall, hw = cv.instance(), rng.uniform(1.55, 1.9) * scale, rng.uniform(0.2, 0.26) * scale
    hip, neck = base + 0.47 * tall, base + 0.83 * tall
    for sgn in (-1, 1):
        cv.frontal(*sorted((X + sgn * 0.03, X + sgn * 0.18)), base, hip, z, kind, inst, LEGS)
    cv.frontal(X - hw, X + hw, hip, neck, z, kind, inst)
    cy = (neck + base + tall) / 2
    cv.frontal(X - 0.11, X + 0.11, neck, base + tall, z, kind, inst, SKIN,
               shape=lambda x, y: ((x - X) / 0.12) ** 2 + ((y - cy) / 0.1) ** 2 <= 1.2)


def _near_segment(p: np.ndarray, q: np.ndarray, a: tuple, b: tuple, t: np.ndarray) -> np.ndarray:
    dp, dq = b[0] - a[0], b[1] - a[1]
    s = np.clip(((p - a[0]) * dp + (q - a[1]) * dq) / (dp * dp + dq * dq), 0, 1)
    return np.hypot(p - a[0] - s * dp, q - a[1] - s * dq) < t


def _bicycle(cv: _Canvas, X: float, z: float) -> None:
    """Side view on the plane X = const: two rings and a frame, never thinner than about a pixel."""
    r, f = 0.34, cv.cam.f
    hubs = ((z + r, r), (z + 1.6 - r, r))
    seat, bars = (z + 0.65, 0.9), (z + 1.15, 1.0)
    frame = ((hubs[0], seat), (seat, bars), (bars, hubs[1]), (hubs[0], (z + 0.8, r)), ((z + 0.8, r), seat))

    def shape(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        t = np.maximum(0.04, 0.5 * u / f)
        m = np.abs(np.hypot(u - hubs[0][0], v - r) - r) < t
        m |= np.abs(np.hypot(u - hubs[1][0], v - r) - r) < t
        for a, b in frame:
            m |= _near_segment(u, v, a, b, t)
        return m
    cv.side(X, z, z + 1.6, 0, 1.1, BICYCLE, cv.instance(), shape=shape)


def _pole(cv: _Canvas, rng: np.random.Generator, X: float, z: float, side: int) -> None:
    """A street lamp, traffic light, sign post or bare pole at the kerb."""
    kind, w = rng.choice(4, p=[0.25, 0.3, 0.35, 0.1]), rng.uniform(0.12, 0.2)
    h = (rng.uniform(6.5, 9), rng.uniform(3.5, 5.5), rng.uniform(2.4, 3.3), rng.uniform(2.5, 5))[kind]
    inst = cv.instance()
    cv.frontal(X - w / 2, X + w / 2, 0, h, z, POLE, inst)
    if kind == 0:  # lamp arm reaching over the road
        cv.frontal(*sorted((X, X - side * rng.uniform(1.0, 2.5))), h - 0.15, h, z, POLE, inst)
    elif kind == 1:
        _traffic_light(cv, rng, X, h, z)
        if rng.random() < 0.4:  # and one hanging over the road from an arm
            reach = rng.uniform(2.0, 4.5)
            cv.frontal(*sorted((X, X - side * reach)), h + 0.8, h + 0.92, z, POLE, inst)
            _traffic_light(cv, rng, X - side * reach, h - 0.15, z)
    elif kind == 2:
        for k in range(1 + int(rng.random() < 0.3)):  # one or two signs stacked
            size, top = rng.uniform(0.5, 0.8), h - k * 0.85
            cv.frontal(X - size / 2, X + size / 2, top - size, top, z - 0.05, SIGN, cv.instance(), SIGN_FACE,
                       shape=_sign_shape(rng.integers(4), X, top, size))


def _traffic_light(cv: _Canvas, rng: np.random.Generator, X: float, bottom: float, z: float) -> None:
    head, lit = cv.instance(), rng.integers(3)  # one of three lamps is on
    cv.frontal(X - 0.18, X + 0.18, bottom, bottom + 0.95, z - 0.05, LIGHT, head)
    lamp = bottom + 0.08 + 0.28 * lit
    cv.frontal(X - 0.1, X + 0.1, lamp, lamp + 0.22, z - 0.1, LIGHT, head, LAMP)


def _sign_shape(form: int, cx: float, top: float, size: float) -> Mask2D | None:
    cy = top - size / 2
    return (lambda x, y: np.hypot(x - cx, y - cy) <= size / 2, None,  # round, square
            lambda x, y: np.abs(x - cx) <= (top - y) / 2 + 0.02,  # triangle, point down
            lambda x, y: np.abs(x - cx) + np.abs(y - cy) <= size / 2 + 0.02)[form]  # diamond


def sample_scene(rng: np.random.Generator, geometry: SceneGeometry, height: int, width: int) -> SceneLayout:
    """Draw one street scene of a domain's geometry and ray-cast it at height × width pixels."""
    cam = _camera(rng, geometry, height, width)
    cv, st, scale = _Canvas(cam), _street(rng, geometry), geometry.object_scale
    cv.ground(st)
    for side in (-1, 1):
        _roadside(cv, rng, st, side)
    _far_end(cv, rng, st)
    for side in (-1, 1):
        k, near = (side + 1) // 2, min(st.end, 80)
        for z in np.arange(rng.uniform(2, 20), near, rng.uniform(8, 25)):  # kerb-side poles
            _pole(cv, rng, st.centre + side * (st.half + rng.uniform(0.3, 0.7)), z, side)
        if rng.random() < 0.5:  # street trees on the sidewalk's outer edge
            for z in np.arange(rng.uniform(2, 15), near, rng.uniform(7, 15)):
                _tree(cv, rng, st.centre + side * (st.half + st.walk[k] - 0.6), z)
        if rng.random() < 0.25:  # parked bicycles
            for z in rng.uniform(3, 30, rng.integers(1, 4)):
                _bicycle(cv, st.centre + side * (st.half + st.walk[k] - 0.4), z)
    for _ in range(rng.integers(0, 9)):
        kind = rng.choice([CAR, TRUCK, BUS, TRAIN], p=[0.81, 0.08, 0.07, 0.04])  # trains: trams, rare
        parked, side = rng.random() < 0.35, rng.choice([-1, 1])
        lateral = side * (st.half - 1.1) if parked else rng.uniform(1.2 - st.half, st.half - 1.2)
        if kind == TRAIN:
            lateral = rng.uniform(-1.0, 1.0)  # on tracks in the middle of the road
        _vehicle(cv, rng, kind, st.centre + lateral, 3.5 + min(rng.exponential(18), st.end), scale)
    for _ in range(rng.poisson(3.5)):
        side, crossing = rng.choice([-1, 1]), rng.random() < 0.1
        walk = st.walk[(side + 1) // 2]
        lateral = rng.uniform(-st.half, st.half) if crossing else side * (st.half + rng.uniform(0.3, walk))
        _person(cv, rng, st.centre + lateral, rng.uniform(3, min(st.end, 45)), scale)
    for _ in range(int(rng.random() < 0.35) * rng.integers(1, 3)):  # cyclists in the road's edge
        side, z = rng.choice([-1, 1]), rng.uniform(4, 35)
        X = st.centre + side * (st.half - rng.uniform(0.5, 1.2))
        _bicycle(cv, X, z)
        _person(cv, rng, X, z + 0.7, scale, RIDER, base=0.55)
    if rng.random() < geometry.ego_hood:
        cv.ego_hood(rng.uniform(0.07, 0.14))
    return cv.layout()
