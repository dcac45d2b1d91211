"""The embedded synthetic pair: layouts, label ids, determinism, the paired renderings, the cache, concurrency."""

from __future__ import annotations

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
