import numpy as np
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


def test_a_limit_decodes_only_the_first_images_of_a_folder(tmp_path, isolated_cache):
    for i in range(5):
        Image.new("RGB", (6, 6), (40 * i, 0, 0)).save(tmp_path / f"{i}.png")
    first = load_dataset(DataConfig(source=str(tmp_path), image_size=4, limit=2))
    assert first.names == ["0.png", "1.png"] and first.images.shape[0] == 2
    entries = [p for p in isolated_cache.glob("images-*") if not p.is_symlink()]
    assert [len(np.load(p / "images.npy", mmap_mode="r")) for p in entries] == [2]  # no more decoded
    assert len(load_dataset(DataConfig(source=str(tmp_path), image_size=4))) == 5  # its own entry


def test_a_limit_cuts_every_other_source_too():
    assert len(load_dataset(DataConfig(image_size=8, num_images=6, limit=4))) == 4


def test_a_misspelt_data_path_names_the_nearest_one_beside_it(tmp_path):
    from vaekit.data.sources import parse_spec

    (tmp_path / "celeba-subset").mkdir()
    with pytest.raises(DataError, match=r"did you mean '.*celeba-subset'\?"):
        parse_spec(str(tmp_path / "celeba-subst"))
    with pytest.raises(DataError) as far:
        parse_spec(str(tmp_path / "completely-else"))
    assert "did you mean" not in str(far.value)
