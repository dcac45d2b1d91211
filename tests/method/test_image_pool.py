import io

import pytest
import torch

from cyclesem.method.image_pool import ImagePool


def batch(*values: float) -> torch.Tensor:
    """Images (B, 1, 2, 2) filled with one constant each, so they can be told apart."""
    return torch.tensor(values, dtype=torch.float32).reshape(-1, 1, 1, 1).expand(-1, 1, 2, 2).clone()


def ids(images: torch.Tensor) -> list[float]:
    return images[:, 0, 0, 0].tolist()


def test_pool_returns_inputs_while_filling():
    pool = ImagePool(3, seed=0)
    out = pool.query(batch(1, 2))
    assert ids(out) == [1, 2] and len(pool) == 2
    out = pool.query(batch(3, 4))  # 3 fills the pool, 4 is the first coin flip
    assert out.shape == (2, 1, 2, 2)
    assert ids(out)[0] == 3 and len(pool) == 3


def test_full_pool_swaps_about_half_the_images():
    pool = ImagePool(5, seed=1)
    pool.query(batch(*range(5)))
    history, swapped = set(range(5)), 0
    for value in range(5, 205):
        returned = ids(pool.query(batch(value)))[0]
        assert returned == value or returned in history  # either the new image or a stored past one
        swapped += returned != value
        history.add(value)
        assert len(pool) == 5
    assert 70 < swapped < 130


def test_size_zero_returns_input_unchanged():
    images = batch(1, 2)
    assert ImagePool(0).query(images) is images


def test_returned_images_are_detached():
    images = batch(1, 2).requires_grad_()
    out = ImagePool(4, seed=0).query(images * 2)
    assert not out.requires_grad and ids(out) == [2, 4]


def test_same_seed_same_choices_other_seed_differs():
    def run(seed: int) -> list[float]:
        pool = ImagePool(2, seed=seed)
        return [v for step in range(30) for v in ids(pool.query(batch(2 * step, 2 * step + 1)))]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_state_dict_round_trip_continues_identically():
    pool = ImagePool(3, seed=0)
    for step in range(4):
        pool.query(batch(step, step + 0.5))
    buffer = io.BytesIO()
    torch.save(pool.state_dict(), buffer)
    buffer.seek(0)
    restored = ImagePool(3, seed=123)
    restored.load_state_dict(torch.load(buffer))
    assert len(restored) == 3
    for step in range(10, 20):
        assert torch.equal(pool.query(batch(step, step + 0.5)), restored.query(batch(step, step + 0.5)))


def test_load_state_dict_rejects_other_size_and_query_rejects_other_shape():
    with pytest.raises(ValueError, match="size 2"):
        ImagePool(3).load_state_dict(ImagePool(2).state_dict())
    pool = ImagePool(3)
    pool.query(batch(1))
    with pytest.raises(ValueError, match="shape"):
        pool.query(torch.zeros(1, 3, 2, 2))


def test_a_restored_pool_follows_the_device_of_the_batches():
    """Checkpoints hold the pool on the CPU; resumed on a GPU, the first batch brings every stored image to the
    batches' device, so the pool never holds a mix (its state_dict stacks them). The meta device stands in for a
    GPU: the coin flips come from the pool's CPU generator either way."""
    saved = ImagePool(2, seed=0)
    saved.query(batch(1, 2))
    pool = ImagePool(2, seed=0)
    pool.load_state_dict(saved.state_dict())
    out = pool.query(batch(3, 4, 5, 6).to("meta"))
    assert out.device.type == "meta" and {image.device.type for image in pool._images} == {"meta"}
    assert pool.state_dict()["images"].shape == (2, 1, 2, 2)
