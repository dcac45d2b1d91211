import numpy as np
import pytest
import torch
from PIL import Image

from cyclesem.data import visualize
from cyclesem.data.visualize import colorize, image_grid, save_label_png, save_png, to_uint8_image

# trainIds road, car / ignore, bicycle
MASK = np.array([[0, 13], [255, 18]], dtype=np.uint8)
ROAD, CAR, BICYCLE = (128, 64, 128), (0, 0, 142), (119, 11, 32)


def test_colorize_known_mask():
    colours = colorize(MASK)
    assert colours.dtype == np.uint8 and colours.shape == (2, 2, 3)
    assert colours[0, 0].tolist() == list(ROAD)
    assert colours[0, 1].tolist() == list(CAR)
    assert colours[1, 0].tolist() == [0, 0, 0]
    assert colours[1, 1].tolist() == list(BICYCLE)
    assert np.array_equal(colorize(torch.from_numpy(MASK).long()), colours)


def test_colorize_rejects_float_masks():
    with pytest.raises(ValueError, match="integer"):
        colorize(np.zeros((2, 2), dtype=np.float32))


def test_to_uint8_image_maps_minus_one_to_one_onto_0_255():
    image = torch.tensor([-1.0, 0.0, 1.0, 2.0]).reshape(1, 1, 4).expand(3, 1, 4)
    out = to_uint8_image(image)
    assert out.shape == (1, 4, 3) and out.dtype == np.uint8
    assert out[0, :, 0].tolist() == [0, 128, 255, 255]  # 127.5 rounds to even 128; 2 is clipped


def panel(value: int) -> np.ndarray:
    return np.full((4, 5, 3), value, dtype=np.uint8)


def test_image_grid_tiles_panels_with_separators():
    grid = image_grid([[panel(10), panel(20), panel(30)], [panel(40), panel(50), panel(60)]])
    assert grid.shape == (2 * 4 + 1, 3 * 5 + 2, 3)
    assert (grid[0:4, 6:11] == 20).all()
    assert (grid[5:9, 12:17] == 60).all()
    assert (grid[4] == 255).all() and (grid[:, 5] == 255).all()


def test_image_grid_titles_add_a_strip_above():
    grid = image_grid([[panel(10), panel(20)]], titles=["source", "source→target"])
    assert grid.shape == (16 + 1 + 4, 2 * 5 + 1, 3)
    assert (grid[17:, 6:] == 20).all()
    assert grid[:16, :5].max() > 0  # some text was drawn


def test_image_grid_rejects_mismatched_panels():
    with pytest.raises(ValueError, match=r"panel \(0, 1\)"):
        image_grid([[panel(1), np.zeros((3, 5, 3), dtype=np.uint8)]])
    with pytest.raises(ValueError, match="titles"):
        image_grid([[panel(1)]], titles=["a", "b"])


def test_save_png_round_trip(tmp_path):
    path = tmp_path / "nested" / "panel.png"
    save_png(panel(77), path)
    assert np.array_equal(np.asarray(Image.open(path)), panel(77))


def test_save_label_png_writes_cityscapes_label_ids(tmp_path):
    save_label_png(MASK, tmp_path / "ids.png")
    # road 7, car 26, ignore → unlabeled 0, bicycle 33
    assert np.asarray(Image.open(tmp_path / "ids.png")).tolist() == [[7, 26], [0, 33]]
    save_label_png(torch.from_numpy(MASK), tmp_path / "train_ids.png", as_label_ids=False)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "train_ids.png")), MASK)
    with pytest.raises(ValueError, match="19"):
        save_label_png(np.array([[19]]), tmp_path / "bad.png")


def test_labelled_rows_puts_a_text_label_left_of_each_strip():
    strips = [np.full((20, 30, 3), value, dtype=np.uint8) for value in (40, 90)]
    grid = visualize.labelled_rows([("batch 0\nscore 0.1", strips[0]), ("perfect", strips[1])], label_width=50)
    assert grid.shape == (20 + 1 + 20, 50 + 1 + 30, 3)
    assert (grid[:20, 51:] == 40).all() and (grid[21:, 51:] == 90).all()
    assert (grid[20] == 255).all() and (grid[:, 50] == 255).all()  # white separators
    label = grid[:20, :50]
    assert label.max() > 200 and (label == 0).mean() > 0.5  # white (antialiased) text on black
    with pytest.raises(ValueError, match="labelled_rows strip 'perfect' is uint8 \\(10, 30, 3\\)"):
        visualize.labelled_rows([("a", strips[0]), ("perfect", strips[1][:10])])


def test_evenly_spaced_takes_first_and_last_and_never_repeats():
    assert visualize.evenly_spaced(4, 64) == [0, 21, 42, 63]
    assert visualize.evenly_spaced(4, 2) == [0, 1]
