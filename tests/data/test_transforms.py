import numpy as np
import pytest
import torch

from cyclesem.data.labels import ID_TO_TRAIN_ID
from cyclesem.data.transforms import eval_transform, normalize_to_tensor, train_transform
from tests.data.conftest import H, W, random_rgb, standard_label_ids

TRAIN_IDS = ID_TO_TRAIN_ID[standard_label_ids()]  # (H, W) uint8 in {0, 2, 10, 13, 255}
VALID = set(range(19)) | {255}


def test_crop_larger_than_image_pads_label_with_ignore() -> None:
    road = np.zeros((H, W), dtype=np.uint8)  # all road: a 0-padded mask would be indistinguishable
    out = train_transform(crop=(H + 8, W + 10), hflip=False)(image=random_rgb(0), mask=road)
    image, mask = out["image"], out["mask"]
    assert image.shape == (3, H + 8, W + 10) and mask.shape == (H + 8, W + 10)
    assert set(mask.unique().tolist()) <= VALID
    assert (mask == 255).sum() == (H + 8) * (W + 10) - H * W
    assert (mask == 0).sum() == H * W
    # the padded image area is black (fill 0 → -1) exactly where the mask is ignore
    assert (image[:, mask == 255] == -1).all()
    assert image.min() >= -1 and image.max() <= 1


def test_random_crop_flip_keeps_image_and_mask_aligned() -> None:
    rng = np.random.default_rng(0)
    train_ids = rng.choice([0, 1, 2, 13, 255], size=(H, W)).astype(np.uint8)
    image = np.repeat(train_ids[..., None], 3, axis=2)  # the image spells the label out
    transform = train_transform(crop=(8, 12), hflip=True)
    flipped = 0
    for seed in range(8):
        transform.set_random_seed(seed)
        out = transform(image=image, mask=train_ids)
        decoded = torch.round((out["image"][0] + 1) * 127.5).to(torch.uint8)  # (8, 12)
        torch.testing.assert_close(decoded, out["mask"])
        assert out["mask"].shape == (8, 12)
        # a flip shows up as a crop of the mirrored label
        flipped += not _is_crop_of(out["mask"].numpy(), train_ids)
    assert 0 < flipped < 8


def _is_crop_of(crop: np.ndarray, full: np.ndarray) -> bool:
    ch, cw = crop.shape
    return any(
        np.array_equal(full[y : y + ch, x : x + cw], crop)
        for y in range(full.shape[0] - ch + 1)
        for x in range(full.shape[1] - cw + 1)
    )


@pytest.mark.parametrize("size", [(7, 13), (40, 70)])
def test_resize_keeps_mask_values_exact(size: tuple[int, int]) -> None:
    for transform in (eval_transform(resize=size), train_transform(resize=size, hflip=False)):
        out = transform(image=random_rgb(0), mask=TRAIN_IDS)
        assert out["image"].shape == (3, *size) and out["mask"].shape == size
        assert set(out["mask"].unique().tolist()) == {0, 2, 10, 13, 255}  # nearest: no blended ids


def test_random_scale_range() -> None:
    out = train_transform(scale=(0.5, 0.5), hflip=False)(image=random_rgb(0), mask=TRAIN_IDS)
    assert out["image"].shape == (3, H // 2, W // 2) and out["mask"].shape == (H // 2, W // 2)
    assert set(out["mask"].unique().tolist()) <= {0, 2, 10, 13, 255}
    transform = train_transform(scale=(0.5, 2.0), crop=(H, W))
    for seed in range(4):
        transform.set_random_seed(seed)
        out = transform(image=random_rgb(seed), mask=TRAIN_IDS)
        assert out["mask"].shape == (H, W) and set(out["mask"].unique().tolist()) <= VALID
        assert out["image"].min() >= -1 and out["image"].max() <= 1


def test_eval_transform_matches_normalize_to_tensor() -> None:
    rgb = random_rgb(3)
    out = eval_transform()(image=rgb)["image"]
    assert out.dtype == torch.float32 and out.shape == (3, H, W)
    torch.testing.assert_close(out, normalize_to_tensor(rgb))
    assert normalize_to_tensor(
        np.array([[[0, 255, 128]]], dtype=np.uint8)
    ).flatten().tolist() == pytest.approx([-1.0, 1.0, 128 / 127.5 - 1], abs=1e-6)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="crop"):
        train_transform(crop=(0, 8))
    with pytest.raises(ValueError, match="scale"):
        train_transform(scale=(1.5, 1.0))
    with pytest.raises(ValueError, match="resize"):
        eval_transform(resize=(8,))  # type: ignore[arg-type]
