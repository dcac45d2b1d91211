"""The appearance of the synthetic domains: how a ``SceneLayout`` is coloured in each domain's style.

The source ("game") and target ("city") styles differ in palette — chosen so that colour alone misleads
(target road ≈ source sidewalk and vice versa, likewise vegetation / terrain and truck / tram, target wall
≈ source building, overcast sky) — and in textures, sensor noise, blur and vignetting, only in the target.

``target_style(palette_shift)`` moves the target's colours along a line between two ends, everything else of the
target kept (textures, noise, blur, vignetting, haze, exposure, light; the geometric shift lives in ``scene``):

- ``palette_shift = 1``: the swap palette above, ``TARGET_STYLE`` itself (the first pair, bit for bit);
- ``palette_shift = 0``: *appearance only* — the source's colours under one global colour transform
  (``APPEARANCE_TRANSFORM``: desaturation, a colour cast, a tone curve), so every class keeps its source hue order;
- in between: every colour table (per-class palette, parts, vehicle paints, clothes, sign faces, zenith) is the
  linear interpolation ``(1 − s) · appearance + s · swap``, entry by entry.

``style_table`` writes a style's every number out, so the pair's key (``pair.rendering_digest``) covers them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np

from cyclesem.data.labels import NUM_CLASSES
from cyclesem.data.synthetic import layout as codes  # not `layout`: render_appearance's argument is one
from cyclesem.data.synthetic.layout import SceneLayout


def _rgb(rows: list[tuple[int, int, int]]) -> np.ndarray:
    return np.array(rows, np.float32) / 255.0


def _table(rows: int, values: dict[int, float | tuple[int, int, int]], default: float) -> np.ndarray:
    """A per-class (or per-part) table; colours given in 0..255."""
    colours = any(isinstance(value, tuple) for value in values.values())
    out = np.full((rows, 3) if colours else rows, default, np.float32)
    for key, value in values.items():
        out[key] = np.array(value, np.float32) / (255.0 if isinstance(value, tuple) else 1.0)
    return out


_IGNORED = NUM_CLASSES  # row of the per-class tables used for ignored pixels (the ego bonnet)


@dataclass(frozen=True)
class Style:
    """One domain's appearance; all colours RGB in [0, 1]."""

    palette: np.ndarray  # (20, 3) base colour per trainId + ignored; the sky's is its colour at the horizon
    parts: np.ndarray  # (NUM_PARTS, 3) colour of each sub-part; NaN keeps the object's colour
    vehicle_paints: np.ndarray  # (K, 3) each car picks one
    clothes: np.ndarray  # (K, 3) each person / rider picks one
    sign_faces: np.ndarray  # (K, 3) each sign picks one
    zenith: np.ndarray  # (3,) sky colour at the top of the image
    grain: np.ndarray  # (20,) amplitude of fine per-class texture (0 = flat shading)
    blotch: np.ndarray  # (20,) amplitude of coarse per-class texture (stains, clouds, foliage clumps)
    jitter: float  # std of per-instance colour variation
    exposure: tuple[float, float]  # range of the global gain
    sun: float  # strongest directional light (façade contrast, cast shadow on the ground)
    haze: float  # metres over which distant colours fade towards the horizon sky
    noise: float  # sensor noise std
    blur: float  # Gaussian sigma in pixels at a width of 128 (scaled with the width)
    vignette: float  # darkening at the corners


# "game": saturated palette, flat shading, crisp edges, no noise
SOURCE_STYLE = Style(
    palette=_table(NUM_CLASSES + 1, {
        codes.ROAD: (88, 88, 96), codes.SIDEWALK: (196, 172, 158), codes.BUILDING: (158, 118, 92),
        codes.WALL: (176, 166, 140), codes.FENCE: (128, 104, 72), codes.POLE: (70, 70, 74),
        codes.LIGHT: (45, 45, 40), codes.SIGN: (200, 200, 200), codes.VEGETATION: (58, 128, 46),
        codes.TERRAIN: (150, 172, 84), codes.SKY: (150, 195, 240), codes.PERSON: (200, 60, 60),
        codes.RIDER: (230, 120, 40), codes.CAR: (200, 40, 40), codes.TRUCK: (222, 222, 212),
        codes.BUS: (232, 182, 40), codes.TRAIN: (205, 55, 50), codes.BICYCLE: (40, 40, 45),
        _IGNORED: (30, 30, 30)}, 0.0),
    parts=_table(codes.NUM_PARTS, {
        codes.WINDOW: (160, 200, 235), codes.MARKING: (245, 245, 245), codes.KERB: (150, 150, 150),
        codes.GLASS: (120, 170, 215), codes.TYRE: (22, 22, 22), codes.LAMP: (235, 40, 40),
        codes.SKIN: (240, 200, 160), codes.LEGS: (40, 60, 160), codes.TRUNK: (110, 80, 50),
        codes.RAIL: (90, 70, 50), codes.EGO: (30, 30, 30)}, np.nan),
    vehicle_paints=_rgb([(200, 30, 30), (30, 70, 200), (240, 200, 30), (30, 150, 60), (240, 240, 240),
                         (240, 120, 20)]),
    clothes=_rgb([(220, 40, 40), (40, 160, 220), (250, 200, 40), (60, 180, 80), (200, 80, 200)]),
    sign_faces=_rgb([(220, 30, 30), (30, 80, 200), (250, 210, 30), (240, 240, 240)]),
    zenith=_rgb([(60, 110, 220)])[0],
    grain=_table(NUM_CLASSES + 1, {}, 0.0), blotch=_table(NUM_CLASSES + 1, {}, 0.0),
    jitter=0.08, exposure=(0.8, 1.2), sun=0.25, haze=600.0, noise=0.0, blur=0.0, vignette=0.0,
)

# "city": swap-prone palette (see the module docstring), textured, noisy, blurred, vignetted, hazy
TARGET_STYLE = Style(
    palette=_table(NUM_CLASSES + 1, {
        codes.ROAD: (186, 168, 156), codes.SIDEWALK: (96, 96, 104), codes.BUILDING: (118, 138, 170),
        codes.WALL: (160, 120, 92), codes.FENCE: (70, 74, 70), codes.POLE: (160, 160, 150),
        codes.LIGHT: (190, 160, 40), codes.SIGN: (200, 200, 200), codes.VEGETATION: (150, 168, 86),
        codes.TERRAIN: (60, 118, 50), codes.SKY: (208, 210, 214), codes.PERSON: (50, 50, 60),
        codes.RIDER: (80, 50, 120), codes.CAR: (120, 120, 125), codes.TRUCK: (170, 60, 50),
        codes.BUS: (205, 205, 200), codes.TRAIN: (222, 215, 190), codes.BICYCLE: (160, 160, 160),
        _IGNORED: (35, 35, 40)}, 0.0),
    parts=_table(codes.NUM_PARTS, {
        codes.WINDOW: (45, 55, 66), codes.MARKING: (228, 228, 212), codes.KERB: (205, 195, 185),
        codes.GLASS: (32, 36, 42), codes.TYRE: (20, 20, 20), codes.LAMP: (255, 150, 60),
        codes.SKIN: (190, 150, 120), codes.LEGS: (35, 35, 42), codes.TRUNK: (85, 70, 55),
        codes.RAIL: (40, 40, 40), codes.EGO: (35, 35, 40)}, np.nan),
    vehicle_paints=_rgb([(40, 40, 44), (120, 122, 128), (190, 192, 196), (235, 235, 235), (70, 30, 30),
                         (40, 55, 90)]),
    clothes=_rgb([(30, 30, 35), (70, 70, 80), (110, 90, 70), (60, 80, 110), (140, 140, 140)]),
    sign_faces=_rgb([(190, 40, 40), (40, 80, 170), (230, 190, 40), (230, 230, 230)]),
    zenith=_rgb([(175, 180, 190)])[0],
    grain=_table(NUM_CLASSES + 1, {
        codes.ROAD: 0.07, codes.SIDEWALK: 0.08, codes.BUILDING: 0.06, codes.WALL: 0.08, codes.VEGETATION: 0.3,
        codes.TERRAIN: 0.22, codes.SKY: 0.0}, 0.04),
    blotch=_table(NUM_CLASSES + 1, {
        codes.ROAD: 0.12, codes.SIDEWALK: 0.08, codes.BUILDING: 0.12, codes.WALL: 0.1, codes.VEGETATION: 0.2,
        codes.TERRAIN: 0.15, codes.SKY: 0.07, codes.CAR: 0.05, codes.TRUCK: 0.06, codes.BUS: 0.05}, 0.02),
    jitter=0.12, exposure=(0.65, 1.3), sun=0.35, haze=180.0, noise=0.03, blur=0.6, vignette=0.35,
)


@dataclass(frozen=True)
class ColourTransform:
    """One global colour transform of RGB in [0, 1]: desaturate towards the luma, multiply by a colour cast, then
    a tone curve ``black + (white − black) · x ** gamma`` (lifted shadows, dimmer highlights, more contrast in the
    mid-tones for gamma > 1). NaN entries (a part that keeps its object's colour) stay NaN."""

    saturation: float  # 1 keeps the chroma, 0 is grey
    cast: tuple[float, float, float]  # per-channel gain
    black: float  # the tone curve's output at 0
    white: float  # its output at 1
    gamma: float

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        rgb = np.asarray(rgb, np.float64)  # (..., 3)
        luma = rgb @ np.array([0.299, 0.587, 0.114])  # (...,)
        rgb = luma[..., None] + self.saturation * (rgb - luma[..., None])
        rgb = np.clip(rgb * np.array(self.cast), 0.0, 1.0)
        return (self.black + (self.white - self.black) * rgb ** self.gamma).astype(np.float32)


# a dull, slightly cool, overcast camera: what a CycleGAN is known to learn (issue 34), unlike a class-colour swap
APPEARANCE_TRANSFORM = ColourTransform(saturation=0.45, cast=(0.93, 0.98, 1.06), black=0.05, white=0.9, gamma=1.15)
_COLOUR_FIELDS = ("palette", "parts", "vehicle_paints", "clothes", "sign_faces", "zenith")


PALETTE_SHIFT_MEANING = ("0: the source palette under one global colour transform, 1: the swap palette, the first "
                         "pair")


def checked_unit(name: str, value: object, meaning: str) -> float:
    """``value`` as a float when it is a real number in [0, 1]; else a ValueError naming ``name`` and ``meaning``."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}={value!r} is out of range: expected a float in [0, 1] ({meaning})")
    return float(value)


def target_style(palette_shift: float = 1.0) -> Style:
    """The target ("city") style at ``palette_shift`` in [0, 1] (module docstring): 1 is ``TARGET_STYLE`` itself (the
    same object: the first pair renders bit for bit as before), 0 the source's colours under
    ``APPEARANCE_TRANSFORM``, in between each colour table interpolated linearly; every non-colour field is the
    target's."""
    s = checked_unit("palette_shift", palette_shift, PALETTE_SHIFT_MEANING)
    if s == 1:
        return TARGET_STYLE
    colours = {}
    for name in _COLOUR_FIELDS:
        appearance = APPEARANCE_TRANSFORM(getattr(SOURCE_STYLE, name)).astype(np.float64)
        swap = getattr(TARGET_STYLE, name).astype(np.float64)
        # the parts both styles leave to the object's colour are the same rows (NaN), so NaN stays NaN
        assert appearance.shape == swap.shape and (np.isnan(appearance) == np.isnan(swap)).all(), name
        colours[name] = ((1 - s) * appearance + s * swap).astype(np.float32)
    return replace(TARGET_STYLE, **colours)


def style_table(style: Style) -> dict:
    """Every number of a style as plain JSON values (NaN as null), for hashing into the pair's key."""
    def plain(value):
        if isinstance(value, np.ndarray):
            return [None if math.isnan(v) else v for v in value.astype(np.float64).ravel().tolist()] + [
                list(value.shape)]
        return [float(v) for v in value] if isinstance(value, tuple) else float(value)

    return {f.name: plain(getattr(style, f.name)) for f in fields(style)}


def _value_noise(u: np.ndarray, v: np.ndarray, lattice: np.ndarray) -> np.ndarray:
    """Smooth noise in [-1, 1] at surface coordinates (H, W), so textures follow the perspective."""
    n = lattice.shape[0]
    fu, fv = u - np.floor(u), v - np.floor(v)
    i0, j0 = np.floor(u).astype(np.int64) % n, np.floor(v).astype(np.int64) % n
    i1, j1 = (i0 + 1) % n, (j0 + 1) % n
    fu, fv = fu * fu * (3 - 2 * fu), fv * fv * (3 - 2 * fv)  # smoothstep: no creases along the lattice
    top = lattice[j0, i0] * (1 - fu) + lattice[j0, i1] * fu
    return top * (1 - fv) + (lattice[j1, i0] * (1 - fu) + lattice[j1, i1] * fu) * fv


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of (H, W, 3), edges replicated."""
    r = max(1, int(np.ceil(2.5 * sigma)))
    kernel = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    for axis in (0, 1):
        padded = np.pad(image, [(r, r) if a == axis else (0, 0) for a in range(3)], mode="edge")
        size = image.shape[axis]
        image = sum(k * np.take(padded, np.arange(i, i + size), axis=axis) for i, k in enumerate(kernel))
    return image


def render_appearance(layout: SceneLayout, style: Style, rng: np.random.Generator) -> np.ndarray:
    """Colour one scene in a style: palette, instances, texture, light, haze, camera. (H, W, 3) uint8."""
    h, w = layout.train_ids.shape
    cls, inst, part = np.minimum(layout.train_ids, NUM_CLASSES), layout.instances, layout.parts  # (H, W)
    n = int(inst.max()) + 1
    colour = style.palette[cls]  # (H, W, 3)
    sky = np.isinf(layout.depth)[..., None]  # (H, W, 1)
    up = np.clip((layout.horizon - np.arange(h) - 0.5) / max(layout.horizon, 1.0), 0, 1)[:, None, None]
    colour = np.where(sky, style.palette[codes.SKY] * (1 - up) + style.zenith * up, colour)
    plain = part == codes.PLAIN
    for table, where in ((style.vehicle_paints, (cls == codes.CAR) & plain),
                         (style.clothes, ((cls == codes.PERSON) | (cls == codes.RIDER)) & plain),
                         (style.sign_faces, part == codes.SIGN_FACE)):
        colour = np.where(where[..., None], table[rng.integers(len(table), size=n)][inst], colour)
    part_colour = style.parts[part]  # (H, W, 3), NaN where the object's colour stays
    colour = np.where(np.isnan(part_colour), colour, part_colour)
    gain = 1 + style.jitter * (rng.standard_normal((n, 1)) + 0.5 * rng.standard_normal((n, 3)))  # (n, 3)
    colour = colour * np.clip(gain, 0.5, 1.6)[inst]

    if style.grain.any() or style.blotch.any():
        lattice = rng.uniform(-1, 1, (2, 64, 64))
        fine = _value_noise(layout.u * 3.0, layout.v * 3.0, lattice[0])
        coarse = _value_noise(layout.u * 0.5 + 17.0, layout.v * 0.5, lattice[1])
        colour = colour * (1 + style.grain[cls] * fine + style.blotch[cls] * coarse)[..., None]

    strength, sun_side = rng.uniform(0, style.sun), rng.choice([-1.0, 1.0])
    light = np.array([1, 1, 1 + strength * sun_side, 1 - strength * sun_side, 1 - 0.3 * strength], np.float32)
    shade = light[layout.facing]  # by which way each surface faces
    shadow = (layout.facing == codes.GROUND_FACE) & (layout.u * sun_side > rng.uniform(-2, 10))  # of houses
    colour = colour * np.where(shadow, 1 - 1.5 * strength, shade)[..., None]
    fog = np.where(sky, 0.0, 0.85 * (1 - np.exp(-np.minimum(layout.depth, 1e4) / style.haze))[..., None])
    colour = colour * (1 - fog) + style.palette[codes.SKY] * gain[0] * fog

    tint = 1 + rng.normal(0, style.jitter / 3, 3)  # white balance
    colour = np.clip(colour * rng.uniform(*style.exposure) * tint, 0, 1) ** rng.uniform(0.9, 1.1)
    if style.blur > 0:
        colour = _blur(colour, style.blur * w / 128 * rng.uniform(0.7, 1.3))
    if style.vignette > 0:
        dy, dx = (np.arange(h) + 0.5) / h * 2 - 1, (np.arange(w) + 0.5) / w * 2 - 1
        corner = (dy[:, None] ** 2 + dx[None, :] ** 2) / 2  # (H, W), 1 in the corners
        colour = colour * (1 - style.vignette * rng.uniform(0.5, 1.5) * corner)[..., None]
    if style.noise > 0:
        colour = colour + rng.normal(0, style.noise * rng.uniform(0.5, 1.5), colour.shape)
    return np.clip(colour * 255 + 0.5, 0, 255).astype(np.uint8)

