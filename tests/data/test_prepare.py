import warnings
from pathlib import Path

import numpy as np
import pytest

from cyclesem.data.gta5 import GTA5Dataset
from cyclesem.data.image_io import DatasetError
from cyclesem.data.labels import CLASS_NAMES
from cyclesem.data.prepare import (
    MISSING_LABEL,
    NO_PAVEMENT_SPLIT,
    PAVEMENT,
    SIZE_MISMATCH,
    UNKNOWN_IDS,
    UNREADABLE,
    check_gta5,
    ensure_pavement_free_split,
    is_pavement_scene,
    main,
)
from tests.data.conftest import (
    H,
    W,
    pavement_label_ids,
    random_rgb,
    standard_label_ids,
    truncate,
    write_gta5_pair,
    write_rgb,
)

ROAD, SIDEWALK, SKY = CLASS_NAMES.index("road"), CLASS_NAMES.index("sidewalk"), CLASS_NAMES.index("sky")


@pytest.fixture
def messy_gta5(gta5_root: Path) -> Path:
    """The three clean pairs plus one of each defect and a pavement scene."""
    write_gta5_pair(gta5_root, "00004", image_size=(H, W + 2))  # size mismatch
    truncate(write_gta5_pair(gta5_root, "00005")[0])  # corrupt image
    write_gta5_pair(gta5_root, "00006", label_ids=pavement_label_ids())  # pavement scene
    bad_ids = standard_label_ids()
    bad_ids[0, 0] = 200
    write_gta5_pair(gta5_root, "00007", label_ids=bad_ids)  # id outside the table
    write_rgb(gta5_root / "images" / "00008.png", random_rgb(8))  # no label
    return gta5_root


def _stems(split_file: Path) -> list[str]:
    return [line for line in split_file.read_text().splitlines() if line and not line.startswith("#")]


def test_pavement_rule() -> None:
    train_ids = np.full((40, 40), SKY, dtype=np.uint8)
    region = (slice(30, 40), slice(10, 30))  # bottom 25 % rows, middle 50 % columns: 10×20
    train_ids[region] = ROAD
    assert not is_pavement_scene(train_ids)
    train_ids[30:40, 10:21] = SIDEWALK  # 55 % sidewalk, the rest road
    assert is_pavement_scene(train_ids)
    train_ids[region] = SKY
    train_ids[30:40, 10:19] = SIDEWALK  # 45 % sidewalk, no road
    assert is_pavement_scene(train_ids)
    train_ids[30:40, 10:17] = SKY  # 10 % sidewalk
    assert not is_pavement_scene(train_ids)
    train_ids[region] = ROAD
    train_ids[30:40, 10:19] = SIDEWALK  # 45 % sidewalk but 55 % road: a road scene
    assert not is_pavement_scene(train_ids)
    train_ids[region] = ROAD
    train_ids[30:40, :10] = SIDEWALK  # sidewalk only beside the centre region
    train_ids[:30] = SIDEWALK
    assert not is_pavement_scene(train_ids)


def test_check_gta5_finds_each_defect(messy_gta5: Path) -> None:
    report = check_gta5(messy_gta5)
    assert len(report.checks) == 8
    dropped = {
        reason: [c.name for c in checks] for reason, checks in report.dropped(keep_pavement=False).items()
    }
    assert dropped == {
        SIZE_MISMATCH: ["00004"],
        UNREADABLE: ["00005"],
        PAVEMENT: ["00006"],
        UNKNOWN_IDS: ["00007"],
        MISSING_LABEL: ["00008"],
    }
    assert report.kept(keep_pavement=False) == ["00001", "00002", "00003"]
    assert report.kept(keep_pavement=True) == ["00001", "00002", "00003", "00006"]
    pixels = report.class_pixels(keep_pavement=False)
    assert pixels.shape == (20,) and pixels.sum() == 3 * H * W
    assert pixels[ROAD] == 3 * 4 * W and pixels[-1] == 3 * 4 * (W // 2)  # road band, unlabeled → ignore
    assert report.class_pixels(keep_pavement=True)[SIDEWALK] == 4 * W


def test_main_writes_clean_split(messy_gta5: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gta5", str(messy_gta5), "--workers", "1"]) == 0
    split = messy_gta5 / "split_clean.txt"
    assert _stems(split) == ["00001", "00002", "00003"]
    out = capsys.readouterr().out
    for reason in (SIZE_MISMATCH, UNREADABLE, PAVEMENT, UNKNOWN_IDS, MISSING_LABEL):
        assert reason in out
    assert "8 pairs, 3 kept" in out and "class pixel frequencies" in out and "sidewalk" in out
    # the written split loads cleanly: no size-mismatch warning, the bad pairs left out
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dataset = GTA5Dataset(messy_gta5, split_file=split)
    assert dataset.names == ["00001", "00002", "00003"]


def test_keep_pavement_and_out(messy_gta5: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "with_pavement.txt"
    assert main(["gta5", str(messy_gta5), "--out", str(out), "--keep-pavement", "--workers", "2"]) == 0
    assert _stems(out) == ["00001", "00002", "00003", "00006"]
    assert not (messy_gta5 / "split_clean.txt").exists()
    assert "1 scene(s) shot from the pavement kept" in capsys.readouterr().out


def test_pavement_free_split_is_the_clean_split_written_once(messy_gta5: Path, tmp_path: Path) -> None:
    """data.source_filter=pavement's split file: what `prepare gta5 ROOT --out ROOT/split_no_pavement.txt` writes."""
    split = ensure_pavement_free_split(messy_gta5)
    assert split == messy_gta5 / NO_PAVEMENT_SPLIT and _stems(split) == ["00001", "00002", "00003"]
    assert main(["gta5", str(messy_gta5), "--out", str(tmp_path / "cli.txt"), "--workers", "1"]) == 0
    assert split.read_text() == (tmp_path / "cli.txt").read_text()
    split.write_text("00001\n")  # an existing file is read, not rewritten
    assert _stems(ensure_pavement_free_split(messy_gta5)) == ["00001"]
    assert sorted(p.name for p in messy_gta5.iterdir()) == ["images", "labels", NO_PAVEMENT_SPLIT]  # no leftovers


def test_pavement_free_split_of_only_pavement_scenes_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "gta5"
    write_gta5_pair(root, "00001", label_ids=pavement_label_ids())
    with pytest.raises(DatasetError, match="data.source_filter=pavement: no usable pair"):
        ensure_pavement_free_split(root)
    assert not (root / NO_PAVEMENT_SPLIT).exists()


def test_missing_root_exits_2_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "nowhere"
    out = tmp_path / "split.txt"
    assert main(["gta5", str(root), "--out", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: GTA5 root") and str(root) in err
    assert not out.exists() and not root.exists()
    assert main(["cityscapes", str(root), "--workers", "1"]) == 2
    assert "cityscapes-dataset.com" in capsys.readouterr().err


def test_cityscapes_check(cityscapes_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cityscapes", str(cityscapes_root), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "Cityscapes train" in out and "3 pairs, 3 kept" in out
    assert "Cityscapes val" in out and "1 pairs, 1 kept" in out
    label = cityscapes_root / "gtFine/val/lindau/lindau_000000_000019_gtFine_labelIds.png"
    label.unlink()
    assert main(["cityscapes", str(cityscapes_root), "--workers", "1"]) == 1
    assert MISSING_LABEL in capsys.readouterr().out
