import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclesem.data.gta5 import GTA5Dataset
from cyclesem.data.image_io import DatasetError
from cyclesem.data.transforms import eval_transform
from tests.data.conftest import H, W, random_rgb, standard_label_ids, truncate, write_gta5_pair, write_label

# trainIds of the standard label bands: sky 23→10, building 11→2, car 26→13, unlabeled 0→255, road 7→0
EXPECTED_TRAIN_IDS = np.empty((H, W), dtype=np.int64)
EXPECTED_TRAIN_IDS[:4] = 10
EXPECTED_TRAIN_IDS[4:8] = 2
EXPECTED_TRAIN_IDS[8:12, : W // 2] = 13
EXPECTED_TRAIN_IDS[8:12, W // 2 :] = 255
EXPECTED_TRAIN_IDS[12:] = 0


def test_item_shapes_ranges_and_trainids(gta5_root: Path) -> None:
    dataset = GTA5Dataset(gta5_root)
    assert len(dataset) == 3
    assert dataset.names == ["00001", "00002", "00003"]
    assert [image.name for image, _ in dataset.samples] == ["00001.png", "00002.png", "00003.png"]
    item = dataset[0]
    assert item["name"] == "00001"
    assert item["image"].shape == (3, H, W) and item["image"].dtype == torch.float32
    assert item["label"].shape == (H, W) and item["label"].dtype == torch.int64
    # 00001 was written with seed 1: pixel values map exactly to x / 127.5 - 1
    rgb = random_rgb(1)
    expected = torch.from_numpy(rgb).permute(2, 0, 1).float() / 127.5 - 1
    torch.testing.assert_close(item["image"], expected)
    assert item["image"].min() >= -1 and item["image"].max() <= 1
    np.testing.assert_array_equal(item["label"].numpy(), EXPECTED_TRAIN_IDS)


def test_read_train_ids_matches_item_label(gta5_root: Path) -> None:
    dataset = GTA5Dataset(gta5_root)
    train_ids = dataset.read_train_ids(2)
    assert train_ids.dtype == np.uint8
    np.testing.assert_array_equal(train_ids, EXPECTED_TRAIN_IDS)


def test_size_mismatch_skipped_with_one_warning(gta5_root: Path) -> None:
    write_gta5_pair(gta5_root, "00004", image_size=(H, W + 2))
    write_gta5_pair(gta5_root, "00005", image_size=(H - 2, W))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = GTA5Dataset(gta5_root)
    assert dataset.names == ["00001", "00002", "00003"]
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "2 of 5 pairs" in message and "00004" in message and "00005" in message
    assert f"image {W + 2}x{H}, label {W}x{H}" in message


def test_size_mismatch_error_mode(gta5_root: Path) -> None:
    write_gta5_pair(gta5_root, "00004", image_size=(H, W + 2))
    with pytest.raises(DatasetError, match="00004"):
        GTA5Dataset(gta5_root, on_size_mismatch="error")


def test_truncated_image_names_the_file(gta5_root: Path) -> None:
    bad = truncate(gta5_root / "images" / "00002.png")
    dataset = GTA5Dataset(gta5_root)  # the header survives, so construction still works
    with pytest.raises(DatasetError, match=f"cannot read image {bad}"):
        dataset[1]


def test_truncated_label_names_the_file(gta5_root: Path) -> None:
    label = gta5_root / "labels" / "00003.png"
    truncate(label)  # pixel data cut, header intact
    dataset = GTA5Dataset(gta5_root)
    with pytest.raises(DatasetError, match=f"cannot read label {label}"):
        dataset.read_train_ids(2)
    truncate(label, keep_header=False)  # the size check at construction fails
    with pytest.raises(DatasetError, match=f"cannot read label {label}"):
        GTA5Dataset(gta5_root)


def test_colour_label_rejected(gta5_root: Path) -> None:
    Image.fromarray(random_rgb(0)).save(gta5_root / "labels" / "00001.png")
    with pytest.raises(DatasetError, match="mode 'RGB', expected single-channel label ids"):
        GTA5Dataset(gta5_root)[0]


def test_unknown_label_id_names_file_and_ids(gta5_root: Path) -> None:
    ids = standard_label_ids()
    ids[0, :3] = 200
    ids[1, 0] = 77
    label = write_label(gta5_root / "labels" / "00002.png", ids, palette=True)
    dataset = GTA5Dataset(gta5_root)
    with pytest.raises(DatasetError, match=r"holds ids \[77, 200\]") as err:
        dataset[1]
    assert str(label) in str(err.value)


def test_missing_root_says_how_to_fix(tmp_path: Path) -> None:
    root = tmp_path / "nowhere"
    with pytest.raises(DatasetError) as err:
        GTA5Dataset(root)
    message = str(err.value)
    assert str(root) in message and "ROOT/images/NNNNN.png" in message
    assert "GTA5_ROOT" in message and "data=synthetic" in message


def test_empty_images_folder(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    with pytest.raises(DatasetError, match="no \\*.png images in"):
        GTA5Dataset(tmp_path)


def test_image_without_label_names_it(gta5_root: Path) -> None:
    (gta5_root / "labels" / "00002.png").unlink()
    with pytest.raises(DatasetError, match="1 image\\(s\\) without a label") as err:
        GTA5Dataset(gta5_root)
    assert str(gta5_root / "images" / "00002.png") in str(err.value)


def test_split_file_honoured(gta5_root: Path, tmp_path: Path) -> None:
    split = tmp_path / "split.txt"
    split.write_text("# clean pairs\n00003.png\n\n00001  # trailing comment\n00003\n")
    dataset = GTA5Dataset(gta5_root, split_file=split)
    assert dataset.names == ["00001", "00003"]
    assert dataset[1]["name"] == "00003"


def test_split_file_errors(gta5_root: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing here\n\n")
    with pytest.raises(DatasetError, match=f"split file {empty} lists no images"):
        GTA5Dataset(gta5_root, split_file=empty)
    unknown = tmp_path / "unknown.txt"
    unknown.write_text("00001\n09999\n")
    with pytest.raises(DatasetError, match="names 1 image\\(s\\) not in .*: 09999"):
        GTA5Dataset(gta5_root, split_file=unknown)
    with pytest.raises(DatasetError, match="does not exist"):
        GTA5Dataset(gta5_root, split_file=tmp_path / "absent.txt")


def test_transform_resizes_label_with_image(gta5_root: Path) -> None:
    item = GTA5Dataset(gta5_root, transform=eval_transform(resize=(8, 16)))[0]
    assert item["image"].shape == (3, 8, 16)
    assert item["label"].shape == (8, 16) and item["label"].dtype == torch.int64
    assert set(item["label"].unique().tolist()) == {0, 2, 10, 13, 255}


def test_keep_label_resolution(gta5_root: Path) -> None:
    dataset = GTA5Dataset(gta5_root, transform=eval_transform(resize=(8, 16)), keep_label_resolution=True)
    item = dataset[0]
    assert item["image"].shape == (3, 8, 16)
    np.testing.assert_array_equal(item["label"].numpy(), EXPECTED_TRAIN_IDS)


def test_unlabeled_gives_all_ignore_without_labels(gta5_root: Path) -> None:
    for label in (gta5_root / "labels").iterdir():
        label.unlink()
    (gta5_root / "labels").rmdir()
    dataset = GTA5Dataset(gta5_root, labeled=False)
    item = dataset[0]
    assert item["label"].shape == (H, W) and item["label"].dtype == torch.int64
    assert (item["label"] == 255).all()
    assert (dataset.read_train_ids(0) == 255).all() and dataset.read_train_ids(0).shape == (H, W)
    resized = GTA5Dataset(gta5_root, labeled=False, transform=eval_transform(resize=(8, 16)))[0]
    assert resized["label"].shape == (8, 16) and (resized["label"] == 255).all()
