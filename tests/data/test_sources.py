import pytest
from PIL import Image

from vaekit.config import DataConfig
from vaekit.data import DataError, load_dataset, parse_spec


def test_spec_kinds(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    assert parse_spec("shapes") == ("shapes", None)
    assert parse_spec(str(tmp_path)) == ("images", tmp_path)
    assert parse_spec(str(tmp_path / "mnist")) == ("idx", tmp_path / "mnist")
    assert parse_spec(f"images:{tmp_path / 'mnist'}") == ("images", tmp_path / "mnist")


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        parse_spec(str(tmp_path / "nowhere"))


def test_shapes_is_the_default_source():
    data = load_dataset(DataConfig(image_size=16, num_images=8))
    assert data.images.shape == (8, 3, 16, 16) and data.source == "shapes"
