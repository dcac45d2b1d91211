from pathlib import Path

import numpy as np
import pytest
import torch

from cyclesem.data.cityscapes import CityscapesDataset
from cyclesem.data.image_io import DatasetError
from cyclesem.data.transforms import eval_transform
from tests.data.conftest import H, W, random_rgb, standard_label_ids, write_cityscapes_pair, write_label


def test_items_and_names_sorted_across_cities(cityscapes_root: Path) -> None:
    dataset = CityscapesDataset(cityscapes_root, split="train")
    assert dataset.names == ["aachen_000000_000019", "aachen_000001_000019", "zurich_000001_000019"]
    image, label = dataset.samples[2]
    assert image.name == "zurich_000001_000019_leftImg8bit.png"
    assert label == cityscapes_root / "gtFine/train/zurich/zurich_000001_000019_gtFine_labelIds.png"
    item = dataset[2]
    assert item["name"] == "zurich_000001_000019"
    assert item["image"].shape == (3, H, W) and item["image"].dtype == torch.float32
    expected = torch.from_numpy(random_rgb(1)).permute(2, 0, 1).float() / 127.5 - 1
    torch.testing.assert_close(item["image"], expected)
    assert item["label"].dtype == torch.int64
    # road 7 → 0, car 26 → 13, unlabeled 0 → 255, sky 23 → 10, building 11 → 2
    assert item["label"][-1, 0] == 0
    assert item["label"][8, 0] == 13
    assert item["label"][8, -1] == 255
    assert item["label"][0, 0] == 10 and item["label"][4, 0] == 2


def test_val_split_and_read_train_ids(cityscapes_root: Path) -> None:
    dataset = CityscapesDataset(cityscapes_root, split="val")
    assert dataset.names == ["lindau_000000_000019"]
    train_ids = dataset.read_train_ids(0)
    assert train_ids.dtype == np.uint8
    np.testing.assert_array_equal(train_ids, dataset[0]["label"].numpy())


def test_keep_label_resolution(cityscapes_root: Path) -> None:
    dataset = CityscapesDataset(
        cityscapes_root, split="val", transform=eval_transform(resize=(8, 16)), keep_label_resolution=True
    )
    item = dataset[0]
    assert item["image"].shape == (3, 8, 16)
    assert item["label"].shape == (H, W)
    assert item["label"][-1, 0] == 0


def test_test_split_without_labels_needs_labeled_false(cityscapes_root: Path) -> None:
    """Cityscapes' own test labels are withheld; the synthetic pair's test split has labels (read like val)."""
    write_cityscapes_pair(cityscapes_root, "test", "berlin", "000000_000019", with_label=False)
    with pytest.raises(DatasetError, match="Cityscapes test .* 1 image\\(s\\) without a label"):
        CityscapesDataset(cityscapes_root, split="test")
    dataset = CityscapesDataset(cityscapes_root, split="test", labeled=False)
    item = dataset[0]
    assert item["label"].shape == (H, W) and (item["label"] == 255).all()


def test_missing_root_says_how_to_get_it(tmp_path: Path) -> None:
    root = tmp_path / "cs"
    with pytest.raises(DatasetError) as err:
        CityscapesDataset(root)
    message = str(err.value)
    assert str(root) in message and "cityscapes-dataset.com" in message
    assert "CITYSCAPES_ROOT" in message and "data=synthetic" in message


def test_missing_split_folder(cityscapes_root: Path) -> None:
    with pytest.raises(DatasetError, match="has no leftImg8bit/test/ folder"):
        CityscapesDataset(cityscapes_root, split="test", labeled=False)


def test_image_without_label_names_it(cityscapes_root: Path) -> None:
    image, _ = write_cityscapes_pair(cityscapes_root, "val", "munster", "000001_000019", with_label=False)
    with pytest.raises(DatasetError, match="without a label") as err:
        CityscapesDataset(cityscapes_root, split="val")
    assert str(image) in str(err.value)
    assert "munster_000001_000019_gtFine_labelIds.png" in str(err.value)


def test_trainid_label_on_disk_is_rejected(cityscapes_root: Path) -> None:
    # a label written in trainIds by mistake: 255 is not a label id
    ids = standard_label_ids()
    ids[:2] = 255
    write_label(cityscapes_root / "gtFine/val/lindau/lindau_000000_000019_gtFine_labelIds.png", ids)
    with pytest.raises(DatasetError, match=r"holds ids \[255\]"):
        CityscapesDataset(cityscapes_root, split="val")[0]
