"""Geometry of the procedural street scenes behind the synthetic domain pair.

A pinhole camera looks down a straight street. Every surface is ray-cast into a z-buffer
(``canvas``): the ground plane (road, sidewalks, grass), planes parallel to the street (façades,
hedges, walls, fences, vehicle flanks, parked bicycles) and upright billboards facing the camera (vehicles
from behind, people, poles, lights, signs, trees; drawn by ``objects``). A pixel keeps its
trainId, an instance number, a sub-part code (window, lane marking, ...) and its surface coordinates in
metres, so the appearance (``style``) shades and textures it in either domain's style without
touching the labels. This module lays out the street and places everything along it.

World: X lateral (m, + right of the camera), Y height above the ground, z depth along the street.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from cyclesem.data.synthetic.canvas import Camera, Canvas
from cyclesem.data.synthetic.layout import (
    BUILDING,
    BUS,
    CAR,
    FENCE,
    PLAIN,
    RAIL,
    RIDER,
    SIDEWALK,
    TERRAIN,
    TRAIN,
    TRUCK,
    VEGETATION,
    WALL,
    WINDOW,
    Mask2D,
    SceneLayout,
    Street,
)
from cyclesem.data.synthetic.objects import draw_bicycle, draw_person, draw_pole, draw_tree, draw_vehicle


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


def _camera(rng: np.random.Generator, geometry: SceneGeometry, height: int, width: int) -> Camera:
    horizon = float(np.clip(rng.normal(*geometry.horizon), 0.2, 0.7))
    return Camera(height, width, f=width * max(0.3, rng.normal(*geometry.focal)),
                  cx=width * (0.5 + rng.normal(0, 0.04)), horizon=height * horizon,
                  cam_h=max(0.8, rng.normal(*geometry.camera_height)))


def _street(rng: np.random.Generator, geometry: SceneGeometry) -> Street:
    half = rng.uniform(3.0, 7.5)
    grass = np.where(rng.random(2) < 0.4, rng.uniform(1.0, 4.0, 2), 0.0)
    return Street(centre=-rng.uniform(*geometry.lateral), half=half, walk=tuple(rng.uniform(1.5, 4.5, 2)),
                  grass=tuple(grass), outer=tuple(rng.choice([TERRAIN, SIDEWALK], 2)), two_way=half > 4.5,
                  crossing=rng.uniform(6, 40) if rng.random() < 0.25 else np.inf, end=rng.uniform(40, 150))


def _on_the_pavement(rng: np.random.Generator, st: Street) -> Street:
    """The street re-centred so the camera stands on one sidewalk, widened to 3.5–6 m, a third to two thirds
    of the way across it: the ground just ahead is pavement (GTA5's scenes shot from the pavement)."""
    side = rng.choice([-1, 1])
    k = (side + 1) // 2
    walk = list(st.walk)
    walk[k] = rng.uniform(3.5, 6.0)
    camera = side * (st.half + walk[k] * rng.uniform(0.35, 0.65))  # camera's lateral offset from the road centre
    return replace(st, centre=-camera, walk=tuple(walk))


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


def _roadside(cv: Canvas, rng: np.random.Generator, st: Street, side: int) -> None:
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
                draw_tree(cv, rng, facade + side * rng.uniform(0.0, 3.0), tz)
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


def _far_end(cv: Canvas, rng: np.random.Generator, st: Street) -> None:
    r = rng.random()
    if r < 0.45:
        h = rng.uniform(6, 20)
        cv.frontal(-300, 300, 0, h, st.end, BUILDING, cv.instance(), parts=_windows(rng, h))
    elif r < 0.85:
        top = _wobble(rng, rng.uniform(3, 10), 1.5)
        cv.frontal(-300, 300, 0, 20, st.end, VEGETATION, cv.instance(), shape=lambda x, y: y <= top(x / 4))

def sample_scene(rng: np.random.Generator, geometry: SceneGeometry, height: int, width: int, *,
                 on_pavement: bool = False) -> SceneLayout:
    """Draw one street scene of a domain's geometry and ray-cast it at height × width pixels; `on_pavement`
    puts the camera on a sidewalk (it draws from `rng` only then, so the other scenes stay as they were)."""
    cam = _camera(rng, geometry, height, width)
    cv, st, scale = Canvas(cam), _street(rng, geometry), geometry.object_scale
    if on_pavement:
        st = _on_the_pavement(rng, st)
    cv.ground(st)
    for side in (-1, 1):
        _roadside(cv, rng, st, side)
    _far_end(cv, rng, st)
    for side in (-1, 1):
        k, near = (side + 1) // 2, min(st.end, 80)
        for z in np.arange(rng.uniform(2, 20), near, rng.uniform(8, 25)):  # kerb-side poles
            draw_pole(cv, rng, st.centre + side * (st.half + rng.uniform(0.3, 0.7)), z, side)
        if rng.random() < 0.5:  # street trees on the sidewalk's outer edge
            for z in np.arange(rng.uniform(2, 15), near, rng.uniform(7, 15)):
                draw_tree(cv, rng, st.centre + side * (st.half + st.walk[k] - 0.6), z)
        if rng.random() < 0.25:  # parked bicycles
            for z in rng.uniform(3, 30, rng.integers(1, 4)):
                draw_bicycle(cv, st.centre + side * (st.half + st.walk[k] - 0.4), z)
    for _ in range(rng.integers(0, 9)):
        kind = rng.choice([CAR, TRUCK, BUS, TRAIN], p=[0.81, 0.08, 0.07, 0.04])  # trains: trams, rare
        parked, side = rng.random() < 0.35, rng.choice([-1, 1])
        lateral = side * (st.half - 1.1) if parked else rng.uniform(1.2 - st.half, st.half - 1.2)
        if kind == TRAIN:
            lateral = rng.uniform(-1.0, 1.0)  # on tracks in the middle of the road
        draw_vehicle(cv, rng, kind, st.centre + lateral, 3.5 + min(rng.exponential(18), st.end), scale)
    for _ in range(rng.poisson(3.5)):
        side, crossing = rng.choice([-1, 1]), rng.random() < 0.1
        walk = st.walk[(side + 1) // 2]
        lateral = rng.uniform(-st.half, st.half) if crossing else side * (st.half + rng.uniform(0.3, walk))
        draw_person(cv, rng, st.centre + lateral, rng.uniform(3, min(st.end, 45)), scale)
    for _ in range(int(rng.random() < 0.35) * rng.integers(1, 3)):  # cyclists in the road's edge
        side, z = rng.choice([-1, 1]), rng.uniform(4, 35)
        X = st.centre + side * (st.half - rng.uniform(0.5, 1.2))
        draw_bicycle(cv, X, z)
        draw_person(cv, rng, X, z + 0.7, scale, RIDER, base=0.55)
    if rng.random() < geometry.ego_hood:
        cv.ego_hood(rng.uniform(0.07, 0.14))
    return cv.layout()
