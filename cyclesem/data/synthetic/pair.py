"""The embedded synthetic domain pair: procedural street scenes in the real GTA5 and Cityscapes layouts.

The source ("game") and target ("city") domains differ in appearance (``style``) — palettes
chosen so that colour alone misleads (target road ≈ source sidewalk and vice versa, likewise vegetation /
terrain and truck / tram, target wall ≈ source building, overcast sky), plus textures, sensor noise, blur
and vignetting in the target — and mildly in geometry (``synthetic_SOURCE_GEOMETRY`` vs
``TARGET_GEOMETRY``).
``gta5_as_cityscapes`` holds every source scene re-rendered in the target appearance on the source
geometry: the exact answer a perfect source → target translation would give.

``pavement_share`` (default 0, off) shoots that share of the source scenes from the pavement rather than the road,
as a share of GTA5's are (an open question of the source report; ``cyclesem.data.prepare`` finds them by their
labels). Each source image i is such a scene when its own random number is below the share, so the sets are
nested across shares and image i does not depend on the counts. A non-zero share is recorded in the manifest
(``params.pavement_share`` and the stems in ``pavement_scenes``); the default adds no key, so the default pair and
everything keyed by its manifest stay as they were. A pair of another share gets its own root
(:func:`pair_dir_name`, which ``conf/data/synthetic.yaml`` names it by): one is never rendered over the other.

``palette_shift`` (default 1, the first pair) moves the target's colours from the swap palette (1) to *appearance
only* (0: the source's colours under one global colour transform), every other target property kept
(``style.target_style``; docs/domain_gap.md). The source images do not depend on it; the target splits and the
paired renders do. A shift other than 1 is recorded as ``params.palette_shift`` and gets its own root
(``synthetic_palette0.5``).

What keys a pair (its manifest's ``version`` and ``params``, which the reference segmenter's cache key hashes too):
the render parameters, and :func:`rendering_digest` — a hash of every number of both styles (palettes, textures,
noise, blur, vignette, haze, exposure, …) and both scene geometries — recorded as ``params.rendering`` whenever it is
not the first pair's (`FIRST_PAIR_DIGEST`). So an edited ``style.py`` or ``scene.py`` table gets a new key (the
pair is re-rendered and a new reference trained), while the first pair keeps its manifest byte for byte and with it
the v2 study's reference key. A change of the rendering *code* still needs a VERSION bump.

    python -m cyclesem.data.synthetic ROOT [--seed N] [--pavement-share S] [--palette-shift P]
    (= python -m cyclesem.data.synthetic.pair)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import shutil
from dataclasses import asdict
from typing import Any

import numpy as np
from filelock import FileLock
from PIL import Image
from rich.progress import track

from cyclesem.data.labels import CLASS_NAMES, IGNORE_INDEX
from cyclesem.data.synthetic.layout import SYNTHETIC_CLASSES
from cyclesem.data.synthetic.scene import SOURCE_GEOMETRY, TARGET_GEOMETRY, sample_scene
from cyclesem.data.synthetic.style import (
    PALETTE_SHIFT_MEANING,
    SOURCE_STYLE,
    checked_unit,
    render_appearance,
    style_table,
    target_style,
)

VERSION = 4  # bump whenever the rendering code changes: cached sets with another version are re-rendered
# rendering_digest() of the first pair (VERSION 4, palette_shift 1, the styles and geometries as of commit 1ff157b):
# a pair rendered with it keeps the manifest it always had (no params.rendering)
FIRST_PAIR_DIGEST = "57811d725cc834a5"
PAVEMENT_SHARE_MEANING = "the share of source scenes shot from the pavement; 0 = none, the default pair"
TRAIN_CITIES = ("ardenwald", "brisholm", "corvane")
VAL_CITIES = ("dunmere", "eskerby")  # checkpoint selection
TEST_CITIES = ("fallowmere", "glenrith")  # held out: scored once, never used to select anything
_FRAME = 19  # Cityscapes names the annotated frame of each snippet _000019
# independent random streams, so image i does not depend on the counts of any split (new splits append
# streams: the images of the older splits stay the same)
_SOURCE_SCENE, _SOURCE_LOOK, _PAIRED_LOOK, _TRAIN_SCENE, _TRAIN_LOOK, _VAL_SCENE, _VAL_LOOK, _TEST_SCENE, \
    _TEST_LOOK, _PAVEMENT = range(10)
_TARGET_SPLITS = {  # domain → (Cityscapes split, cities, scene stream, appearance stream)
    "target_train": ("train", TRAIN_CITIES, _TRAIN_SCENE, _TRAIN_LOOK),
    "target_val": ("val", VAL_CITIES, _VAL_SCENE, _VAL_LOOK),
    "target_test": ("test", TEST_CITIES, _TEST_SCENE, _TEST_LOOK),
}


def _rng(seed: int, stream: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, index])


def pair_dir_name(pavement_share: float = 0.0, palette_shift: float = 1.0) -> str:
    """The pair's directory name under the data dir: ``synthetic`` for the default, ``synthetic_pavement0.3`` for
    a pavement share of 0.3, ``synthetic_palette0.5`` for a palette shift of 0.5, ``synthetic_pavement0.3_palette0``
    for both (``conf/data/synthetic.yaml``'s root, through the ``synthetic_dir`` resolver)."""
    share = checked_unit("pavement_share", pavement_share, PAVEMENT_SHARE_MEANING)
    shift = checked_unit("palette_shift", palette_shift, PALETTE_SHIFT_MEANING)
    return "synthetic" + (f"_pavement{share:g}" if share != 0 else "") + (f"_palette{shift:g}" if shift != 1 else "")


def rendering_digest(palette_shift: float = 1.0) -> str:
    """A hash of every number the rendering reads besides the render parameters: both styles at this palette shift
    (palettes, parts, textures, jitter, exposure, light, haze, noise, blur, vignette) and both scene geometries."""
    tables = {"source_style": style_table(SOURCE_STYLE), "target_style": style_table(target_style(palette_shift)),
              "source_geometry": asdict(SOURCE_GEOMETRY), "target_geometry": asdict(TARGET_GEOMETRY)}
    return hashlib.sha256(json.dumps(tables, sort_keys=True).encode()).hexdigest()[:16]


def is_pavement_index(seed: int, index: int, pavement_share: float) -> bool:
    """Whether source image `index` is shot from the pavement: its own draw, so nested across shares."""
    return pavement_share > 0 and _rng(seed, _PAVEMENT, index).random() < pavement_share


def _write_png(path: pathlib.Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, compress_level=6)  # no metadata: same pixels, same bytes


def _city_stem(cities: tuple[str, ...], index: int) -> tuple[str, str]:
    city = cities[index % len(cities)]
    return city, f"{city}_{index // len(cities):06d}_{_FRAME:06d}"


def _render_into(out: pathlib.Path, params: dict, progress: bool) -> dict:
    """Write the whole pair under `out` (a fresh directory) and return its manifest."""
    seed, h, w = params["seed"], params["height"], params["width"]
    share = params.get("pavement_share", 0.0)  # absent: the default, no pavement scenes
    target = target_style(params.get("palette_shift", 1.0))  # absent: the swap palette, the first pair
    pavement_scenes = []
    pixels = {domain: np.zeros(256, np.int64) for domain in ("source", *_TARGET_SPLITS)}
    jobs = [("source", i) for i in range(params["num_source"])] + [
        (domain, i) for domain in _TARGET_SPLITS for i in range(params[f"num_{domain}"])]
    for domain, i in track(jobs, description="rendering the synthetic pair", disable=not progress):
        if domain == "source":
            on_pavement = is_pavement_index(seed, i, share)
            layout = sample_scene(_rng(seed, _SOURCE_SCENE, i), SOURCE_GEOMETRY, h, w, on_pavement=on_pavement)
            name = f"{i:05d}.png"
            if on_pavement:
                pavement_scenes.append(f"{i:05d}")
            image = render_appearance(layout, SOURCE_STYLE, _rng(seed, _SOURCE_LOOK, i))
            _write_png(out / "gta5" / "images" / name, image)
            _write_png(out / "gta5" / "labels" / name, layout.label_ids())
            paired = render_appearance(layout, target, _rng(seed, _PAIRED_LOOK, i))  # same scene, city
            _write_png(out / "gta5_as_cityscapes" / "images" / name, paired)
            # the same labels beside it make gta5_as_cityscapes a GTA5-layout dataset: "perfect translation"
            _write_png(out / "gta5_as_cityscapes" / "labels" / name, layout.label_ids())
        else:
            split, cities, scene_stream, look = _TARGET_SPLITS[domain]
            layout = sample_scene(_rng(seed, scene_stream, i), TARGET_GEOMETRY, h, w)
            city, stem = _city_stem(cities, i)
            image = render_appearance(layout, target, _rng(seed, look, i))
            _write_png(out / "cityscapes" / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", image)
            _write_png(out / "cityscapes" / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png",
                       layout.label_ids())
        pixels[domain] += np.bincount(layout.train_ids.ravel(), minlength=256)
    frequencies = {domain: {**{name: round(float(c[k] / c.sum()), 6) for k, name in enumerate(CLASS_NAMES)},
                            "ignore": round(float(c[IGNORE_INDEX] / c.sum()), 6)}
                   for domain, c in pixels.items() if c.sum() > 0}
    manifest = {
        "version": VERSION, "params": params,
        "counts": {"source": params["num_source"], "paired": params["num_source"],
                   **{domain: params[f"num_{domain}"] for domain in _TARGET_SPLITS}},
        "cities": {split: list(cities[:params[f"num_{domain}"]])
                   for domain, (split, cities, _, _) in _TARGET_SPLITS.items()},
        "classes": [CLASS_NAMES[k] for k in SYNTHETIC_CLASSES],
        "class_frequencies": frequencies,
    }
    if "pavement_share" in params:  # only off the default: the default manifest keeps its keys
        manifest["pavement_scenes"] = pavement_scenes
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))  # written last: marks a complete set
    return manifest


def _read_manifest(root: pathlib.Path) -> dict | None:
    try:
        return json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError):
        return None


def _is_current(root: pathlib.Path, params: dict) -> bool:
    manifest = _read_manifest(root)
    if not isinstance(manifest, dict):
        return False
    return manifest.get("version") == VERSION and manifest.get("params") == params


def _is_replaceable(root: pathlib.Path) -> bool:
    """Only an empty directory or a synthetic set (any version) may be replaced: never a user's data."""
    if not root.is_dir():
        return False
    manifest = _read_manifest(root)
    ours = isinstance(manifest, dict) and {"version", "params"} <= manifest.keys()
    return ours or not any(root.iterdir())


_OTHER_PAIR = {"pavement_share": (0.0, "another source set"), "palette_shift": (1.0, "another target palette")}


def _param_of(manifest: dict | None, name: str) -> float:
    """A manifest's pavement_share or palette_shift; the default where it records none."""
    default = _OTHER_PAIR[name][0]
    params = manifest.get("params") if isinstance(manifest, dict) else None
    return float(params.get(name, default)) if isinstance(params, dict) else default


def pair_params(*, seed: int = 0, num_source: int = 600, num_target_train: int = 600, num_target_val: int = 150,
                num_target_test: int = 300, height: int = 64, width: int = 128, pavement_share: float = 0.0,
                palette_shift: float = 1.0) -> dict[str, Any]:
    """The ``params`` a pair's manifest records (checked): the render parameters, plus ``pavement_share``,
    ``palette_shift`` and ``rendering`` (:func:`rendering_digest`) only where they are not the first pair's, so the
    first pair's manifest — and every cache keyed by it — stays as it was."""
    share = checked_unit("pavement_share", pavement_share, PAVEMENT_SHARE_MEANING)
    shift = checked_unit("palette_shift", palette_shift, PALETTE_SHIFT_MEANING)
    params = {"seed": seed, "num_source": num_source, "num_target_train": num_target_train,
              "num_target_val": num_target_val, "num_target_test": num_target_test, "height": height,
              "width": width}
    for name, value in params.items():
        least = 16 if name in ("height", "width") else 0 if name == "seed" else 1
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < least:
            raise ValueError(f"ensure_synthetic_pair: {name}={value!r}, expected an integer >= {least}")
    params = {name: int(value) for name, value in params.items()}
    if share > 0:
        params["pavement_share"] = share
    if shift != 1:
        params["palette_shift"] = shift
    digest = rendering_digest(shift)
    if digest != FIRST_PAIR_DIGEST:
        params["rendering"] = digest
    return params


def ensure_synthetic_pair(root: str | os.PathLike, *, seed: int = 0, num_source: int = 600,
                          num_target_train: int = 600, num_target_val: int = 150, num_target_test: int = 300,
                          height: int = 64, width: int = 128, pavement_share: float = 0.0,
                          palette_shift: float = 1.0, progress: bool = True) -> pathlib.Path:
    """Render the synthetic GTA5-like / Cityscapes-like pair into `root` unless it is there; return `root`.

    Several processes may call this at once: one renders into a hidden sibling under a file lock and moves it
    into place with one rename, so nobody sees a half-written set and a crash leaves the old set or nothing.
    A pair of another version, size or rendering digest is replaced; one of another `pavement_share` or
    `palette_shift` never is (it is another pair, with its own root: :func:`pair_dir_name`).
    """
    params = pair_params(seed=seed, num_source=num_source, num_target_train=num_target_train,
                         num_target_val=num_target_val, num_target_test=num_target_test, height=height, width=width,
                         pavement_share=pavement_share, palette_shift=palette_shift)
    wanted = {name: float(params.get(name, default)) for name, (default, _) in _OTHER_PAIR.items()}
    root = pathlib.Path(root).absolute()  # so "." still names a parent for the lock and the staging dir
    if _is_current(root, params):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root.parent / (root.name + ".lock"))):
        if _is_current(root, params):  # another process rendered it while we waited
            return root
        if root.exists() and not _is_replaceable(root):
            raise FileExistsError(f"{root} exists but holds no synthetic dataset (no readable manifest.json);"
                                  " refusing to overwrite it: remove it or pick another root")
        existing = _read_manifest(root) if root.exists() else None
        for name, (_, what) in _OTHER_PAIR.items():
            if isinstance(existing, dict) and _param_of(existing, name) != wanted[name]:
                raise FileExistsError(
                    f"{root} holds the synthetic pair with {name}={_param_of(existing, name):g}; "
                    f"{name}={wanted[name]:g} is {what} and gets its own root (e.g. "
                    f"{root.parent / pair_dir_name(**wanted)}; conf/data/synthetic.yaml names data.prepare.root by "
                    "it): refusing to overwrite it")
        for leftover in root.parent.glob(f".{root.name}.*-*"):  # from a crashed run; we hold the lock
            shutil.rmtree(leftover, ignore_errors=True)
        staging = root.parent / f".{root.name}.staging-{os.getpid()}"
        try:
            _render_into(staging, params, progress)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if root.exists():
            old = root.parent / f".{root.name}.old-{os.getpid()}"
            os.replace(root, old)
            os.replace(staging, root)
            shutil.rmtree(old)
        else:
            os.replace(staging, root)
    return root


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Render the embedded synthetic GTA5 / Cityscapes pair.")
    parser.add_argument("root", type=pathlib.Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-source", type=int, default=600)
    parser.add_argument("--num-target-train", type=int, default=600)
    parser.add_argument("--num-target-val", type=int, default=150)
    parser.add_argument("--num-target-test", type=int, default=300)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--pavement-share", type=float, default=0.0,
                        help="share of source scenes shot from the pavement (default 0: none)")
    parser.add_argument("--palette-shift", type=float, default=1.0,
                        help="target palette: 0 = the source's under a global colour transform (appearance only), "
                             "1 = the swap palette (default, the first pair), between: interpolated")
    args = parser.parse_args(argv)
    root = ensure_synthetic_pair(args.root, seed=args.seed, num_source=args.num_source,
                                 num_target_train=args.num_target_train, num_target_val=args.num_target_val,
                                 num_target_test=args.num_target_test,
                                 height=args.height, width=args.width, pavement_share=args.pavement_share,
                                 palette_shift=args.palette_shift)
    manifest = json.loads((root / "manifest.json").read_text())
    print(f"{root}  (version {manifest['version']})")
    print("images: " + ", ".join(f"{domain} {n}" for domain, n in manifest["counts"].items()))
    domains = list(manifest["class_frequencies"])
    print(f"{'class':<15}" + "".join(f"{d:>14}" for d in domains))
    for name in [*CLASS_NAMES, "ignore"]:
        print(f"{name:<15}" + "".join(f"{manifest['class_frequencies'][d][name]:>14.2%}" for d in domains))


if __name__ == "__main__":
    main()
