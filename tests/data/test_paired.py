from pathlib import Path

import pytest
import torch

from cyclesem.data.image_io import DatasetError
from cyclesem.data.paired import PairedImages
from cyclesem.data.transforms import train_transform
from tests.data.conftest import H, W, random_rgb, write_rgb


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
