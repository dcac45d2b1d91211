from pathlib import Path

import pytest
import torch

from cyclesem.data.gta5 import GTA5Dataset
from cyclesem.data.image_io import DatasetError
from cyclesem.data.paired import PairedImages
from cyclesem.data.transforms import train_transform
from tests.data.conftest import (
    H,
    W,
    pavement_label_ids,
    random_rgb,
    standard_label_ids,
    write_label,
    write_rgb,
)


@pytest.fixture
def paired_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """``gta5/images`` and ``gta5_as_cityscapes/images``; each paired image is the negative of its source."""
    source, paired = tmp_path / "gta5" / "images", tmp_path / "gta5_as_cityscapes" / "images"
    for seed, stem in enumerate(["00002", "00001", "00003"]):
        rgb = random_rgb(seed)
        write_rgb(source / f"{stem}.png", rgb)
        write_rgb(paired / f"{stem}.png", 255 - rgb)
    write_rgb(source / "00009.png", random_rgb(9))  # no counterpart: left out
    return source, paired


def test_items_match_by_file_name(paired_dirs: tuple[Path, Path]) -> None:
    dataset = PairedImages(*paired_dirs)
    assert len(dataset) == 3
    item = dataset[0]
    assert item["name"] == "00001"
    assert item["source_image"].shape == (3, H, W) and item["paired_image"].shape == (3, H, W)
    expected = torch.from_numpy(random_rgb(1)).permute(2, 0, 1).float() / 127.5 - 1
    torch.testing.assert_close(item["source_image"], expected)
    torch.testing.assert_close(item["paired_image"], -item["source_image"])
    assert [dataset[i]["name"] for i in range(3)] == ["00001", "00002", "00003"]
    assert len(PairedImages(*paired_dirs, limit=2)) == 2


def test_same_random_geometry_for_both_images(paired_dirs: tuple[Path, Path]) -> None:
    transform = train_transform(scale=(0.6, 1.4), crop=(8, 12), hflip=True)
    dataset = PairedImages(*paired_dirs, transform=transform)
    for seed in range(6):
        transform.set_random_seed(seed)
        item = dataset[seed % 3]
        assert item["source_image"].shape == (3, 8, 12) and item["paired_image"].shape == (3, 8, 12)
        # 255 - x is linear, so any shared resampling keeps paired == -source up to uint8 rounding
        torch.testing.assert_close(item["paired_image"], -item["source_image"], atol=2 / 127.5, rtol=0)


def test_size_mismatch_and_missing_folders(paired_dirs: tuple[Path, Path], tmp_path: Path) -> None:
    source, paired = paired_dirs
    write_rgb(paired / "00002.png", random_rgb(0, H, W + 4))
    with pytest.raises(DatasetError, match="paired images differ in size") as err:
        PairedImages(source, paired)[1]
    assert str(paired / "00002.png") in str(err.value)
    with pytest.raises(DatasetError, match="does not exist"):
        PairedImages(source, tmp_path / "absent")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no \\*.png file name is in both"):
        PairedImages(source, empty)


@pytest.fixture
def label_dir(paired_dirs: tuple[Path, Path]) -> Path:
    """``gta5/labels`` beside the source images, palette PNGs of label ids as GTA5 publishes them."""
    labels = paired_dirs[0].parent / "labels"
    for stem in ("00001", "00003", "00009"):  # 00009 has no paired render: still left out
        write_label(labels / f"{stem}.png", standard_label_ids(), palette=True)
    write_label(labels / "00002.png", pavement_label_ids(), palette=True)
    return labels


def test_source_labels_are_trainids_as_the_gta5_loader_reads_them(paired_dirs, label_dir) -> None:
    dataset = PairedImages(*paired_dirs, label_dir=label_dir)
    gta5 = GTA5Dataset(paired_dirs[0].parent)  # the same folder in the GTA5 layout
    assert len(dataset) == 3
    for i in range(3):
        item = dataset[i]
        assert item["label"].dtype == torch.long and item["label"].shape == (H, W)
        torch.testing.assert_close(item["label"], gta5[i]["label"])
        torch.testing.assert_close(item["source_image"], gta5[i]["image"])
    source_only = PairedImages(paired_dirs[0], None, label_dir=label_dir)
    assert set(source_only[0]) == {"source_image", "label", "name"}
    assert "label" not in PairedImages(*paired_dirs)[0]  # no label_dir: as before
    with pytest.raises(ValueError, match="give a paired_dir, a label_dir or both"):
        PairedImages(paired_dirs[0], None)


def test_label_follows_the_images_through_a_random_transform(paired_dirs, label_dir) -> None:
    transform = train_transform(scale=(0.6, 1.4), crop=(8, 12), hflip=True)
    dataset = PairedImages(*paired_dirs, label_dir=label_dir, transform=transform)
    plain = PairedImages(*paired_dirs, label_dir=label_dir)
    for seed in range(6):
        transform.set_random_seed(seed)
        item = dataset[0]
        assert item["label"].shape == (8, 12) and item["source_image"].shape == (3, 8, 12)
        # labels resized with nearest neighbour and padded with 255: no class that is not in the original
        assert set(item["label"].unique().tolist()) <= set(plain[0]["label"].unique().tolist()) | {255}


def test_a_label_of_another_size_is_named(paired_dirs, label_dir) -> None:
    write_label(label_dir / "00002.png", standard_label_ids(H, W + 4), palette=True)
    with pytest.raises(DatasetError, match="image and label differ in size") as err:
        PairedImages(*paired_dirs, label_dir=label_dir)[1]
    assert str(label_dir / "00002.png") in str(err.value)


def test_a_split_file_keeps_the_names_it_lists_before_the_limit(paired_dirs: tuple[Path, Path], tmp_path: Path) -> None:
    """Real GTA5 without paired renders: the clean split of `cyclesem.data.prepare gta5` leaves its broken pairs out
    of the translation score's images; ``limit`` then counts the listed ones."""
    split = tmp_path / "split_clean.txt"
    split.write_text("# written by `python -m cyclesem.data.prepare gta5`\n00001\n00003\n")
    assert PairedImages(*paired_dirs, split_file=split).file_names == ["00001.png", "00003.png"]
    assert PairedImages(*paired_dirs, split_file=split, limit=1).file_names == ["00001.png"]
    with pytest.raises(DatasetError, match="split file .*missing.txt does not exist"):
        PairedImages(*paired_dirs, split_file=tmp_path / "missing.txt")
