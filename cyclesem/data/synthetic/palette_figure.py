"""The palette shift at a glance (docs/palette_shift.png): source scenes beside their labels and their paired
renders — the same scene in the target style — at a few palette shifts.

    python -m cyclesem.data.synthetic.palette_figure docs/palette_shift.png [--shifts 0 0.5 1] [--scenes 3]

The pairs are rendered by `ensure_synthetic_pair` (a few images each, in a temporary folder), so the figure shows
exactly what a pair of that shift holds.
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
from collections.abc import Sequence

import numpy as np
from PIL import Image

from cyclesem.data.labels import label_ids_to_train_ids
from cyclesem.data.synthetic.pair import ensure_synthetic_pair
from cyclesem.data.visualize import colorize, image_grid, save_png


def _read(path: pathlib.Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def palette_shift_figure(shifts: Sequence[float] = (0.0, 0.5, 1.0), *, scenes: int = 3, seed: int = 0,
                         height: int = 64, width: int = 128, zoom: int = 3) -> np.ndarray:
    """One row per source scene: source | labels | its paired render at each shift; each panel enlarged ``zoom``
    times (nearest neighbour). (rows·H·zoom + title, (2 + len(shifts))·W·zoom, 3) uint8."""
    rows: list[list[np.ndarray]] = [[] for _ in range(scenes)]
    with tempfile.TemporaryDirectory() as tmp:
        for k, shift in enumerate(shifts):
            root = ensure_synthetic_pair(pathlib.Path(tmp) / f"pair{k}", seed=seed, num_source=scenes,
                                         num_target_train=1, num_target_val=1, num_target_test=1, height=height,
                                         width=width, palette_shift=shift, progress=False)
            for i, row in enumerate(rows):
                name = f"{i:05d}.png"
                if k == 0:  # the source side does not depend on the shift
                    row += [_read(root / "gta5" / "images" / name),
                            colorize(label_ids_to_train_ids(_read(root / "gta5" / "labels" / name)))]
                row.append(_read(root / "gta5_as_cityscapes" / "images" / name))
    big = [[panel.repeat(zoom, axis=0).repeat(zoom, axis=1) for panel in row] for row in rows]
    return image_grid(big, ["source", "labels", *(f"target style, palette_shift {s:g}" for s in shifts)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Source scenes and their target-style renders per palette shift.")
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--shifts", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    parser.add_argument("--scenes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    save_png(palette_shift_figure(args.shifts, scenes=args.scenes, seed=args.seed), args.out)
    print(args.out)


if __name__ == "__main__":
    main()
