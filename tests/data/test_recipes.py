import numpy as np
import pytest
from PIL import Image

from vaekit.data.recipes import CROPS, apply_recipe, prepare, to_8bit


def _marked(width: int, height: int) -> Image.Image:
    """An image whose pixel values encode their own coordinates."""
    y, x = np.mgrid[0:height, 0:width]
    return Image.fromarray(np.stack([x % 256, y % 256, np.zeros_like(x)], -1).astype(np.uint8), "RGB")


@pytest.mark.parametrize(
    ("recipe", "box"),
    [
        ("center", (0, 20, 178, 198)),
        ("celeba-center140", (19, 39, 159, 179)),
        ("celeba-rows20", (0, 20, 178, 198)),
        ("celeba-crop160", (9, 29, 169, 189)),
    ],
)
def test_celeba_recipes_crop_the_documented_box(recipe, box):
    image = _marked(178, 218)
    cropped = np.asarray(apply_recipe(image, box[2] - box[0], recipe))
    left, top = box[0], box[1]
    assert cropped[0, 0, 0] == left and cropped[0, 0, 1] == top


@pytest.mark.parametrize("recipe", CROPS.names())
def test_every_recipe_gives_the_requested_size(recipe):
    assert apply_recipe(_marked(178, 218), 16, recipe).size == (16, 16)


def test_a_crop_larger_than_the_image_is_a_clear_error():
    with pytest.raises(ValueError, match="needs a larger image than 50x30"):
        apply_recipe(_marked(50, 30), 16, "celeba-crop160")


def test_unknown_recipe():
    with pytest.raises(ValueError, match="unknown crop recipe"):
        apply_recipe(_marked(8, 8), 8, "zoom")


def test_16_bit_gray_is_scaled_not_clipped():
    values = np.array([[0, 32768, 65535]], dtype=np.uint16)
    image = Image.frombytes("I;16", (3, 1), values.astype("<u2").tobytes())
    assert np.asarray(to_8bit(image, 1)).tolist() == [[0, 128, 255]]


def test_rgba_is_composited_over_white():
    image = Image.new("RGBA", (2, 1), (255, 0, 0, 0))
    image.putpixel((1, 0), (255, 0, 0, 255))
    assert np.asarray(to_8bit(image, 3)).tolist() == [[[255, 255, 255], [255, 0, 0]]]


def test_prepare_returns_channels_first():
    assert prepare(_marked(10, 10), 8, "center", 3).shape == (3, 8, 8)
    assert prepare(_marked(10, 10), 8, "center", 1).shape == (1, 8, 8)


def test_downsizing_filters_instead_of_picking_pixels():
    stripes = np.zeros((32, 32), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: any pixel picker returns pure black or white
    small = apply_recipe(Image.fromarray(stripes), 8, "none")
    values = np.asarray(small, dtype=float)
    assert np.abs(values - 127.5).max() < 20  # a low-pass filter averages the stripes to grey


def test_sixteen_bit_images_that_stay_within_8_bits_are_not_scaled_down():
    from vaekit.data.recipes import to_8bit

    at_255 = Image.fromarray(np.array([[0, 128, 255]], np.int32), "I")  # maximum exactly 255
    assert np.asarray(to_8bit(at_255, 1)).tolist() == [[0, 128, 255]]
    at_65535 = Image.fromarray(np.array([[0, 65535]], np.int32), "I")
    assert np.asarray(to_8bit(at_65535, 1)).tolist() == [[0, 255]]


def test_a_random_square_scales_the_short_side_to_the_size_then_crops_at_a_drawn_place():
    import numpy as np

    from vaekit.data.recipes import apply_recipe, random_square

    wide = Image.fromarray(np.arange(60 * 120 * 3, dtype=np.uint32).reshape(60, 120, 3).astype(np.uint8))
    crops = {random_square(wide, 30, np.random.default_rng(seed)).tobytes() for seed in range(6)}
    assert len(crops) > 1 and random_square(wide, 30, np.random.default_rng(0)).size == (30, 30)
    assert apply_recipe(wide, 30, "random").tobytes() == apply_recipe(wide, 30, "center").tobytes()  # no draw: centred
    small = Image.new("RGB", (20, 24))
    assert random_square(small, 32, np.random.default_rng(0)).size == (20, 20)  # never scaled up before the crop
    assert apply_recipe(small, 32, "random", np.random.default_rng(0)).size == (32, 32)


@pytest.mark.parametrize(("width", "height"), [(30, 20), (20, 30)])
def test_the_centre_crop_of_a_non_square_image_keeps_its_middle_square(width, height):
    pixels = np.zeros((height, width, 3), np.uint8)
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    pixels[top : top + side, left : left + side] = 255  # the middle square white, the margins black
    cropped = apply_recipe(Image.fromarray(pixels), side, "center")
    assert cropped.size == (side, side) and np.asarray(cropped).min() == 255
