"""Drawers of the things in a synthetic street: trees, vehicles, people, bicycles, poles, lights and signs.

Each draws one object into a ``Canvas`` at world position (X, z) as billboards facing the camera and, where
it shows one, a flank on the plane X = const; sizes in metres (see ``layout`` for the axes).
"""

from __future__ import annotations

import numpy as np

from cyclesem.data.synthetic.canvas import Canvas
from cyclesem.data.synthetic.layout import (
    BICYCLE,
    BUS,
    CAR,
    GLASS,
    LAMP,
    LEGS,
    LIGHT,
    PERSON,
    PLAIN,
    POLE,
    SIGN,
    SIGN_FACE,
    SKIN,
    TRAIN,
    TRUCK,
    TRUNK,
    TYRE,
    VEGETATION,
    Mask2D,
)


def draw_tree(cv: Canvas, rng: np.random.Generator, X: float, z: float) -> None:
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


def draw_vehicle(cv: Canvas, rng: np.random.Generator, kind: int, X: float, z: float, scale: float) -> None:
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


def draw_person(cv: Canvas, rng: np.random.Generator, X: float, z: float, scale: float, kind: int = PERSON,
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


def draw_bicycle(cv: Canvas, X: float, z: float) -> None:
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


def draw_pole(cv: Canvas, rng: np.random.Generator, X: float, z: float, side: int) -> None:
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


def _traffic_light(cv: Canvas, rng: np.random.Generator, X: float, bottom: float, z: float) -> None:
    head, lit = cv.instance(), rng.integers(3)  # one of three lamps is on
    cv.frontal(X - 0.18, X + 0.18, bottom, bottom + 0.95, z - 0.05, LIGHT, head)
    lamp = bottom + 0.08 + 0.28 * lit
    cv.frontal(X - 0.1, X + 0.1, lamp, lamp + 0.22, z - 0.1, LIGHT, head, LAMP)


def _sign_shape(form: int, cx: float, top: float, size: float) -> Mask2D | None:
    cy = top - size / 2
    return (lambda x, y: np.hypot(x - cx, y - cy) <= size / 2, None,  # round, square
            lambda x, y: np.abs(x - cx) <= (top - y) / 2 + 0.02,  # triangle, point down
            lambda x, y: np.abs(x - cx) + np.abs(y - cy) <= size / 2 + 0.02)[form]  # diamond

