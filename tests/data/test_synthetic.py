"""The embedded synthetic pair: layouts, label ids, determinism, the paired renderings, the cache, concurrency."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import re
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cyclesem.data.labels import CLASS_NAMES, VALID_LABEL_IDS, label_ids_to_train_ids
from cyclesem.data.synthetic import pair as synthetic
from cyclesem.data.synthetic import style
from cyclesem.data.synthetic.layout import SYNTHETIC_CLASSES
from cyclesem.data.synthetic.pair import TEST_CITIES, TRAIN_CITIES, VAL_CITIES, ensure_synthetic_pair, main

SMALL = dict(num_source=6, num_target_train=6, num_target_val=4, num_target_test=4, height=64, width=128,
             progress=False)
CITYSCAPES_NAME = re.compile(r"^([a-z]+)_(\d{6})_(\d{6})_leftImg8bit\.png$")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_synthetic_pair(tmp_path_factory.mktemp("synthetic") / "pair", seed=0, **SMALL)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def _mode_size(path: Path) -> tuple[str, tuple[int, int]]:
    with Image.open(path) as image:
        return image.mode, image.size


def _labels(root: Path) -> list[Path]:
    return sorted((root / "gta5" / "labels").glob("*.png")) + sorted((root / "cityscapes" / "gtFine").rglob("*.png"))


def test_gta5_layout_pairs_images_with_labels(pair: Path) -> None:
    names = [f"{i:05d}.png" for i in range(6)]
    assert sorted(p.name for p in (pair / "gta5" / "images").iterdir()) == names
    assert sorted(p.name for p in (pair / "gta5" / "labels").iterdir()) == names
    assert sorted(p.name for p in (pair / "gta5_as_cityscapes" / "images").iterdir()) == names
    for name in names:
        assert _mode_size(pair / "gta5" / "images" / name) == ("RGB", (128, 64))
        assert _mode_size(pair / "gta5" / "labels" / name) == ("L", (128, 64))


def test_cityscapes_layout_pairs_images_with_labels(pair: Path) -> None:
    for split, count, cities in (("train", 6, TRAIN_CITIES), ("val", 4, VAL_CITIES), ("test", 4, TEST_CITIES)):
        images = sorted((pair / "cityscapes" / "leftImg8bit" / split).glob("*/*_leftImg8bit.png"))
        assert len(images) == count
        for image in images:
            match = CITYSCAPES_NAME.match(image.name)
            assert match and match.group(1) == image.parent.name and image.parent.name in cities
            label = pair / "cityscapes" / "gtFine" / split / image.parent.name / image.name.replace(
                "_leftImg8bit.png", "_gtFine_labelIds.png")
            assert _mode_size(label) == ("L", (128, 64)) and _mode_size(image) == ("RGB", (128, 64))
    assert not set(TRAIN_CITIES) & set(VAL_CITIES) and not set(TEST_CITIES) & (set(TRAIN_CITIES) | set(VAL_CITIES))
    # the held-out test split is rendered from its own streams: no image repeats one of the selection split
    val, test = ({p.read_bytes() for p in (pair / "cityscapes" / "leftImg8bit" / s).rglob("*.png")} for s in ("val", "test"))
    assert len(test) == 4 and not val & test


def test_labels_hold_cityscapes_label_ids_with_real_imbalance(pair: Path) -> None:
    labels = np.stack([_load(p) for p in _labels(pair)])  # (N, H, W) label ids
    assert set(np.unique(labels).tolist()) <= VALID_LABEL_IDS
    train_ids = label_ids_to_train_ids(labels)
    counts = np.bincount(train_ids.ravel(), minlength=256)[: len(CLASS_NAMES)]
    present = set(np.flatnonzero(counts).tolist())
    assert len(present) >= 10 and present <= set(SYNTHETIC_CLASSES)
    share = counts / counts.sum()
    big = [CLASS_NAMES.index(n) for n in ("road", "building", "sky", "vegetation")]
    thin = [CLASS_NAMES.index(n) for n in ("pole", "traffic light", "traffic sign", "person")]
    assert share[big].sum() > 0.55
    assert all(share[k] < 0.03 for k in thin) and share[CLASS_NAMES.index("pole")] > 0
    assert (label_ids_to_train_ids(np.stack([_load(p) for p in _labels(pair)[:6]])) != 255).all()  # source: no ignore


def test_same_seed_is_byte_identical_and_another_seed_differs(pair: Path, tmp_path: Path) -> None:
    again = ensure_synthetic_pair(tmp_path / "again", seed=0, **SMALL)
    assert _files(again) == _files(pair)
    other = ensure_synthetic_pair(tmp_path / "other", seed=1, **SMALL)
    assert (other / "gta5" / "images" / "00000.png").read_bytes() != (pair / "gta5" / "images" / "00000.png").read_bytes()
    assert (other / "gta5" / "labels" / "00000.png").read_bytes() != (pair / "gta5" / "labels" / "00000.png").read_bytes()


def test_image_i_does_not_depend_on_the_counts(pair: Path, tmp_path: Path) -> None:
    fewer = ensure_synthetic_pair(tmp_path / "fewer", seed=0, **{**SMALL, "num_source": 3, "num_target_train": 2})
    for rel in ("gta5/images/00002.png", "gta5/labels/00002.png", "gta5_as_cityscapes/images/00001.png"):
        assert (fewer / rel).read_bytes() == (pair / rel).read_bytes()
    val = sorted((pair / "cityscapes" / "leftImg8bit" / "val").rglob("*.png"))
    assert [p.read_bytes() for p in sorted((fewer / "cityscapes" / "leftImg8bit" / "val").rglob("*.png"))] == \
        [p.read_bytes() for p in val]


def _class_means(images: list[np.ndarray], labels: list[np.ndarray], names: tuple[str, ...]) -> np.ndarray:
    """Mean colour (len(names), 3) of each class over a set of images."""
    pixels, ids = np.concatenate([i.reshape(-1, 3) for i in images]), np.concatenate([label.ravel() for label in labels])
    ids = label_ids_to_train_ids(ids)
    return np.stack([pixels[ids == CLASS_NAMES.index(n)].mean(0) for n in names])


def test_paired_rendering_is_the_source_scene_in_target_colours(pair: Path) -> None:
    names = ("road", "sidewalk", "building", "vegetation", "sky")
    source = [_load(p) for p in sorted((pair / "gta5" / "images").glob("*.png"))]
    paired = [_load(p) for p in sorted((pair / "gta5_as_cityscapes" / "images").glob("*.png"))]
    source_labels = [_load(p) for p in sorted((pair / "gta5" / "labels").glob("*.png"))]
    target = [_load(p) for p in sorted((pair / "cityscapes" / "leftImg8bit").rglob("*.png"))]
    target_labels = [_load(p) for p in sorted((pair / "cityscapes" / "gtFine").rglob("*.png"))]
    assert all(s.shape == p.shape for s, p in zip(source, paired, strict=True))
    in_source = _class_means(source, source_labels, names)
    in_paired = _class_means(paired, source_labels, names)  # the same labels: same geometry
    in_target = _class_means(target, target_labels, names)
    to_target = np.linalg.norm(in_paired - in_target, axis=1)
    to_source = np.linalg.norm(in_paired - in_source, axis=1)
    assert (to_target < to_source).all() and (to_source > 40).all(), (to_target, to_source)
    # swap-prone: the target's road looks like the source's sidewalk and vice versa
    assert np.linalg.norm(in_target[0] - in_source[1]) < np.linalg.norm(in_target[0] - in_source[0])
    assert np.linalg.norm(in_target[1] - in_source[0]) < np.linalg.norm(in_target[1] - in_source[1])


def test_manifest_records_parameters_counts_and_frequencies(pair: Path) -> None:
    manifest = json.loads((pair / "manifest.json").read_text())
    assert manifest["params"] == {k: v for k, v in SMALL.items() if k != "progress"} | {"seed": 0}
    assert manifest["counts"] == {"source": 6, "paired": 6, "target_train": 6, "target_val": 4, "target_test": 4}
    for domain in ("source", "target_train", "target_val"):
        frequencies = manifest["class_frequencies"][domain]
        assert sum(frequencies.values()) == pytest.approx(1.0, abs=1e-4)
        assert frequencies["road"] > frequencies["pole"] > 0


def test_cache_is_reused_and_a_changed_parameter_re_renders(tmp_path: Path) -> None:
    root = ensure_synthetic_pair(tmp_path / "cache", seed=3, **SMALL)
    stamps = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    assert ensure_synthetic_pair(tmp_path / "cache", seed=3, **SMALL) == root
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == stamps
    before = (root / "gta5" / "images" / "00000.png").read_bytes()
    ensure_synthetic_pair(tmp_path / "cache", seed=4, **SMALL)
    assert json.loads((root / "manifest.json").read_text())["params"]["seed"] == 4
    assert (root / "gta5" / "images" / "00000.png").read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "cache.lock"]  # no staging or old copy left


def test_a_crash_while_rendering_leaves_the_old_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = ensure_synthetic_pair(tmp_path / "crash", seed=6, **SMALL)
    before = _files(root)
    written = []

    def write_then_crash(path: Path, array: np.ndarray) -> None:
        written.append(path)
        if len(written) > 3:
            raise RuntimeError("disk full")
        real_write(path, array)
    real_write = synthetic._write_png
    monkeypatch.setattr(synthetic, "_write_png", write_then_crash)
    with pytest.raises(RuntimeError, match="disk full"):
        ensure_synthetic_pair(tmp_path / "crash", seed=7, **SMALL)
    assert _files(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crash", "crash.lock"]


def test_concurrent_callers_on_an_empty_dir_all_get_one_complete_set(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    root.mkdir()  # empty, as a user might create it
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        results = pool.map(partial(ensure_synthetic_pair, seed=5, **SMALL), [root] * 3)
    assert results == [root] * 3
    assert len(list((root / "gta5" / "images").glob("*.png"))) == 6
    assert len(list((root / "cityscapes" / "gtFine" / "val").rglob("*_gtFine_labelIds.png"))) == 4
    assert all(set(np.unique(_load(p)).tolist()) <= VALID_LABEL_IDS for p in _labels(root))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared", "shared.lock"]


def test_renders_at_other_sizes(tmp_path: Path) -> None:
    for height, width in ((32, 64), (128, 256)):
        root = ensure_synthetic_pair(tmp_path / f"{height}", **{**SMALL, "num_source": 2, "num_target_train": 1,
                                                                   "num_target_val": 1, "num_target_test": 1,
                                                                   "height": height, "width": width})
        label = _load(root / "gta5" / "labels" / "00001.png")
        assert label.shape == (height, width) and len(np.unique(label)) >= 5
        assert _load(root / "gta5_as_cityscapes" / "images" / "00001.png").shape == (height, width, 3)


def test_bad_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="height"):
        ensure_synthetic_pair(tmp_path / "a", **{**SMALL, "height": 4})
    with pytest.raises(ValueError, match="num_source"):
        ensure_synthetic_pair(tmp_path / "a", **{**SMALL, "num_source": 0})
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="mine"):
        ensure_synthetic_pair(tmp_path / "mine", **SMALL)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_cli_prints_counts_and_frequencies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main([str(tmp_path / "cli"), "--seed", "2", "--num-source", "2", "--num-target-train", "2",
          "--num-target-val", "1", "--height", "32", "--width", "64"])
    out = capsys.readouterr().out
    assert "source 2" in out and "target_val 1" in out
    assert re.search(r"^road\s+\d+\.\d+%", out, re.MULTILINE)


# ----------------------------------------------------------------- pavement scenes (issue 15, open question 1)
PAVEMENT_SMALL = {**SMALL, "num_source": 16, "num_target_train": 1, "num_target_val": 1, "num_target_test": 1,
                  "height": 32, "width": 64}


@pytest.fixture(scope="module")
def pavement_pair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_synthetic_pair(tmp_path_factory.mktemp("pavement") / "pair", pavement_share=0.5, **PAVEMENT_SMALL)


def test_default_pair_records_no_pavement_key(pair: Path, tmp_path: Path) -> None:
    """The default (and an explicit pavement_share=0) adds no key to the manifest: the cached default pair and the
    reference segmenter keyed by its params stay current."""
    manifest = json.loads((pair / "manifest.json").read_text())
    assert set(manifest["params"]) == {"seed", "num_source", "num_target_train", "num_target_val", "num_target_test",
                                       "height", "width"}
    assert set(manifest) == {"version", "params", "counts", "cities", "classes", "class_frequencies"}
    assert synthetic.VERSION == 4
    explicit = ensure_synthetic_pair(tmp_path / "explicit", seed=0, pavement_share=0.0, **SMALL)
    assert _files(explicit) == _files(pair)  # byte-identical, manifest included


def test_pavement_share_renders_scenes_the_prepare_rule_flags(pavement_pair: Path, pair: Path) -> None:
    from cyclesem.data.prepare import is_pavement_scene

    manifest = json.loads((pavement_pair / "manifest.json").read_text())
    assert manifest["params"]["pavement_share"] == 0.5
    on_pavement = set(manifest["pavement_scenes"])
    assert 3 <= len(on_pavement) <= 13  # about half of 16
    flagged = {p.stem for p in sorted((pavement_pair / "gta5" / "labels").glob("*.png"))
               if is_pavement_scene(label_ids_to_train_ids(_load(p)))}
    assert on_pavement <= flagged  # every scene shot from the pavement is found by the labels alone
    assert len(flagged - on_pavement) <= 2  # and few others (a road scene whose camera stands near the kerb)
    # the other scenes are the default pair's: the pavement draw has its own random stream
    default = ensure_synthetic_pair(pair.parent / "default_small", seed=0, **PAVEMENT_SMALL)
    road = sorted({f"{i:05d}" for i in range(16)} - on_pavement)
    for stem in road:
        for folder in ("gta5/images", "gta5/labels", "gta5_as_cityscapes/images"):
            assert (pavement_pair / folder / f"{stem}.png").read_bytes() == (default / folder / f"{stem}.png").read_bytes()
    assert _files(pavement_pair / "cityscapes") == _files(default / "cityscapes")  # the target side is untouched


def test_pavement_scenes_are_nested_across_shares() -> None:
    scenes = [{i for i in range(200) if synthetic.is_pavement_index(0, i, share)} for share in (0.0, 0.1, 0.3, 1.0)]
    assert scenes[0] == set() and scenes[-1] == set(range(200))
    assert scenes[0] <= scenes[1] <= scenes[2] <= scenes[3]
    assert 40 <= len(scenes[2]) <= 80


def test_a_pavement_pair_gets_its_own_root_and_never_replaces_another(pair: Path, tmp_path: Path) -> None:
    assert synthetic.pair_dir_name(0.0) == "synthetic"
    assert synthetic.pair_dir_name(0.3) == "synthetic_pavement0.3"
    root = ensure_synthetic_pair(tmp_path / "synthetic", seed=0, **SMALL)
    before = _files(root)
    with pytest.raises(FileExistsError, match=r"pavement_share=0; pavement_share=0.3 is another source set.*"
                                              r"synthetic_pavement0.3"):
        ensure_synthetic_pair(root, seed=0, pavement_share=0.3, **SMALL)
    assert _files(root) == before
    other = ensure_synthetic_pair(tmp_path / "synthetic_pavement0.3", seed=0, pavement_share=0.3, **SMALL)
    with pytest.raises(FileExistsError, match=r"pavement_share=0.3; pavement_share=0 is another source set"):
        ensure_synthetic_pair(other, seed=0, **SMALL)


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan"), True, "0.3"])
def test_bad_pavement_share_is_refused(tmp_path: Path, share: object) -> None:
    with pytest.raises(ValueError, match=r"pavement_share=.* is out of range: expected a float in \[0, 1\]"):
        ensure_synthetic_pair(tmp_path / "bad", pavement_share=share, **SMALL)
    assert not (tmp_path / "bad").exists()


def test_cli_renders_a_pavement_share(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main([str(tmp_path / "cli"), "--num-source", "4", "--num-target-train", "1", "--num-target-val", "1",
          "--num-target-test", "1", "--height", "32", "--width", "64", "--pavement-share", "1"])
    manifest = json.loads((tmp_path / "cli" / "manifest.json").read_text())
    assert manifest["params"]["pavement_share"] == 1.0
    assert manifest["pavement_scenes"] == ["00000", "00001", "00002", "00003"]


# ----------------------------------------------------------------- the palette shift and the pair's key (issue 34)
# Digests of the `pair` fixture rendered by commit 1ff157b (before the palette shift existed): the decoded pixels of
# every PNG (path, shape, bytes; decoded so that a zlib build cannot change them) and manifest.json's bytes.
FIRST_PAIR_PIXELS = "be2286f2d79a3a2f9a79ad3cc49066b952e36b42bd9ef6efdffe366cd289c0ea"
FIRST_PAIR_MANIFEST = "895d28dbe7ea548792e30b239d48d48215fa6118e49aca640cf0e2c3738d8d1a"
SHIFT_SMALL = dict(SMALL, height=32, width=64)


def _pixel_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.png")):
        array = _load(path)
        digest.update(str(path.relative_to(root)).encode())
        digest.update(str(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def test_the_first_pair_renders_as_before_the_palette_shift(pair: Path, tmp_path: Path) -> None:
    """The default and an explicit palette_shift=1 reproduce commit 1ff157b's pair: every pixel and the manifest."""
    assert _pixel_digest(pair) == FIRST_PAIR_PIXELS
    assert hashlib.sha256((pair / "manifest.json").read_bytes()).hexdigest() == FIRST_PAIR_MANIFEST
    explicit = ensure_synthetic_pair(tmp_path / "explicit", seed=0, palette_shift=1.0, **SMALL)
    assert _files(explicit) == _files(pair)
    assert synthetic.rendering_digest(1.0) == synthetic.FIRST_PAIR_DIGEST
    assert style.target_style(1.0) is style.TARGET_STYLE


@pytest.fixture(scope="module")
def shifted(tmp_path_factory: pytest.TempPathFactory) -> dict[float, Path]:
    """The same 32×64 scenes at palette shifts 0, 0.5 and 1."""
    base = tmp_path_factory.mktemp("shifted")
    return {s: ensure_synthetic_pair(base / synthetic.pair_dir_name(palette_shift=s), seed=0, palette_shift=s,
                                     **SHIFT_SMALL) for s in (0.0, 0.5, 1.0)}


def test_palette_shift_changes_only_the_target_colours(shifted: dict[float, Path]) -> None:
    first = _files(shifted[1.0])
    for shift in (0.0, 0.5):
        files = _files(shifted[shift])
        assert files.keys() == first.keys()
        for rel, data in files.items():
            same = rel.startswith(("gta5/", "cityscapes/gtFine/", "gta5_as_cityscapes/labels/"))  # same scenes
            assert (data == first[rel]) == same or rel == "manifest.json", (shift, rel)
        manifest = json.loads(files["manifest.json"])
        assert manifest["params"]["palette_shift"] == shift
        assert manifest["params"]["rendering"] == synthetic.rendering_digest(shift) != synthetic.FIRST_PAIR_DIGEST
        assert manifest["class_frequencies"] == json.loads(first["manifest.json"])["class_frequencies"]


def test_palette_shift_zero_is_appearance_only_and_one_swaps(shifted: dict[float, Path]) -> None:
    """At 0 the target keeps the source's colour order (road darker than sidewalk, vegetation darker than terrain);
    at 1 it is swapped; 0.5 lies in between. Measured on the rendered target train images."""
    def means(root: Path, folder: str, labels: str) -> np.ndarray:
        images = [_load(p) for p in sorted((root / folder).rglob("*.png"))]
        return _class_means(images, [_load(p) for p in sorted((root / labels).rglob("*.png"))],
                            ("road", "sidewalk", "vegetation", "terrain"))

    brightness = {s: means(root, "cityscapes/leftImg8bit/train", "cityscapes/gtFine/train").mean(1)
                  for s, root in shifted.items()}
    source = means(shifted[1.0], "gta5/images", "gta5/labels").mean(1)
    assert source[0] < source[1] and source[2] < source[3]
    assert brightness[0.0][0] < brightness[0.0][1] and brightness[0.0][2] < brightness[0.0][3]  # source order kept
    assert brightness[1.0][0] > brightness[1.0][1] and brightness[1.0][2] > brightness[1.0][3]  # swapped
    lo, hi = np.minimum(brightness[0.0], brightness[1.0]), np.maximum(brightness[0.0], brightness[1.0])
    assert ((lo < brightness[0.5]) & (brightness[0.5] < hi)).all()


def test_target_style_interpolates_the_colours_and_keeps_the_rest() -> None:
    ends = style.target_style(0.0), style.TARGET_STYLE
    mid = style.target_style(0.5)
    appearance = style.APPEARANCE_TRANSFORM(style.SOURCE_STYLE.palette)
    np.testing.assert_array_equal(ends[0].palette, appearance)
    assert not np.allclose(appearance, style.SOURCE_STYLE.palette, atol=0.05)  # the global transform does something
    for name in ("palette", "parts", "vehicle_paints", "clothes", "sign_faces", "zenith"):
        np.testing.assert_allclose(getattr(mid, name), (getattr(ends[0], name) + getattr(ends[1], name)) / 2,
                                   atol=1e-6)
    for name in ("grain", "blotch"):
        np.testing.assert_array_equal(getattr(mid, name), getattr(style.TARGET_STYLE, name))
    for name in ("jitter", "exposure", "sun", "haze", "noise", "blur", "vignette"):
        assert getattr(ends[0], name) == getattr(mid, name) == getattr(style.TARGET_STYLE, name)


def test_a_palette_shift_gets_its_own_root_and_never_replaces_another(pair: Path, tmp_path: Path) -> None:
    assert synthetic.pair_dir_name() == synthetic.pair_dir_name(palette_shift=1) == "synthetic"
    assert synthetic.pair_dir_name(palette_shift=0.25) == "synthetic_palette0.25"
    assert synthetic.pair_dir_name(0.3, 0) == "synthetic_pavement0.3_palette0"
    root = ensure_synthetic_pair(tmp_path / "synthetic", seed=0, **SHIFT_SMALL)
    before = _files(root)
    with pytest.raises(FileExistsError, match=r"palette_shift=1; palette_shift=0.5 is another target palette.*"
                                              r"synthetic_palette0.5"):
        ensure_synthetic_pair(root, seed=0, palette_shift=0.5, **SHIFT_SMALL)
    assert _files(root) == before


@pytest.mark.parametrize("shift", [-0.1, 1.5, float("nan"), "half", True])
def test_bad_palette_shift_is_refused(tmp_path: Path, shift: object) -> None:
    with pytest.raises(ValueError, match=r"palette_shift=.* is out of range: expected a float in \[0, 1\]"):
        ensure_synthetic_pair(tmp_path / "bad", palette_shift=shift, **SHIFT_SMALL)
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("edit", ["target colour", "source colour", "target blur", "geometry"])
def test_every_rendering_table_is_part_of_the_key(edit: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An edited style or geometry table changes the pair's params (so the pair is re-rendered and the reference
    segmenter's cache key, which hashes them, changes) — today's tables keep the first pair's params."""
    from dataclasses import replace

    from cyclesem.data.synthetic import scene
    from cyclesem.method.reference_segmenter import reference_key

    root = ensure_synthetic_pair(tmp_path / "pair", seed=0, **SHIFT_SMALL)
    params = json.loads((root / "manifest.json").read_text())["params"]
    assert "rendering" not in params
    if edit == "target colour":
        palette = style.TARGET_STYLE.palette.copy()
        palette[CLASS_NAMES.index("road")] += 1 / 255
        monkeypatch.setattr(style, "TARGET_STYLE", replace(style.TARGET_STYLE, palette=palette))
    elif edit == "source colour":
        paints = style.SOURCE_STYLE.vehicle_paints.copy()
        paints[0, 0] -= 1 / 255
        monkeypatch.setattr(synthetic, "SOURCE_STYLE", replace(style.SOURCE_STYLE, vehicle_paints=paints))
    elif edit == "target blur":
        monkeypatch.setattr(style, "TARGET_STYLE", replace(style.TARGET_STYLE, blur=0.7))
    else:
        monkeypatch.setattr(synthetic, "TARGET_GEOMETRY", replace(scene.TARGET_GEOMETRY, object_scale=1.2))
    edited = synthetic.pair_params(seed=0, **{k: v for k, v in SHIFT_SMALL.items() if k != "progress"})
    assert edited == {**params, "rendering": synthetic.rendering_digest(1.0)}
    assert reference_key({"pair": {"version": synthetic.VERSION, "params": edited}}) != reference_key(
        {"pair": {"version": synthetic.VERSION, "params": params}})
    ensure_synthetic_pair(root, seed=0, **SHIFT_SMALL)  # not current any more: re-rendered in place
    assert json.loads((root / "manifest.json").read_text())["params"] == edited


def test_palette_shift_figure_shows_each_pairs_paired_render(shifted: dict[float, Path]) -> None:
    from cyclesem.data.synthetic.palette_figure import palette_shift_figure

    figure = palette_shift_figure((0.0, 1.0), scenes=1, height=32, width=64, zoom=1)
    top, h, w = 17, 32, 64  # the title strip and its separator, then one row of panels
    assert figure.shape == (top + h, 4 * (w + 1) - 1, 3)
    panel = [figure[top:, c * (w + 1):c * (w + 1) + w] for c in range(4)]
    np.testing.assert_array_equal(panel[0], _load(shifted[1.0] / "gta5" / "images" / "00000.png"))
    np.testing.assert_array_equal(panel[2], _load(shifted[0.0] / "gta5_as_cityscapes" / "images" / "00000.png"))
    np.testing.assert_array_equal(panel[3], _load(shifted[1.0] / "gta5_as_cityscapes" / "images" / "00000.png"))
