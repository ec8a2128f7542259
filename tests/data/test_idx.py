import hashlib
import urllib.error

import numpy as np
import pytest

from tests.helpers import fake_mnist, write_idx
from vaekit.data import idx
from vaekit.data.dataset import TEST, TRAIN
from vaekit.data.idx import load_idx_folder, read_idx
from vaekit.data.images import DataError


def test_read_idx_plain_and_gzipped(tmp_path):
    array = np.arange(24).reshape(2, 3, 4)
    write_idx(tmp_path / "a-idx3-ubyte.gz", array)
    write_idx(tmp_path / "b-idx3-ubyte", array, compress=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "a-idx3-ubyte.gz"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "b-idx3-ubyte"), array)


def test_truncated_and_bad_magic_are_clear_errors(tmp_path):
    write_idx(tmp_path / "t-idx3-ubyte", np.zeros((4, 2, 2)), compress=False)
    data = (tmp_path / "t-idx3-ubyte").read_bytes()
    (tmp_path / "t-idx3-ubyte").write_bytes(data[:-3])
    with pytest.raises(DataError, match="truncated IDX file"):
        read_idx(tmp_path / "t-idx3-ubyte")
    (tmp_path / "m-idx3-ubyte").write_bytes(b"PK\x03\x04rest")
    with pytest.raises(DataError, match="bad magic"):
        read_idx(tmp_path / "m-idx3-ubyte")


def test_folder_gives_images_labels_and_the_train_test_split(tmp_path):
    data = load_idx_folder(fake_mnist(tmp_path / "m"), image_size=28, crop="none", channels=None, cache_dir=None)
    assert data.images.shape == (10, 1, 28, 28)
    assert data.labels.tolist() == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3]
    assert (data.partition == TRAIN).sum() == 6 and (data.partition == TEST).sum() == 4
    assert len(data.split("test")) == 4


def test_folder_resizes_on_request(tmp_path):
    data = load_idx_folder(fake_mnist(tmp_path / "m"), image_size=32, crop="none", channels=3, cache_dir=None)
    assert data.images.shape == (10, 3, 32, 32)


def test_download_checks_md5_and_reports_every_mirror(tmp_path, monkeypatch):
    payloads = {name: f"file {name}".encode() for name in idx.MNIST_FILES}
    monkeypatch.setattr(idx, "MNIST_FILES", {n: hashlib.md5(p).hexdigest() for n, p in payloads.items()})

    class Response:
        def __init__(self, body):
            self.body = body

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return self.body

    def fake_urlopen(url, timeout):
        name = url.rsplit("/", 1)[1]
        if url.startswith("https://bad/"):
            return Response(b"corrupted")
        return Response(payloads[name])

    monkeypatch.setattr(idx.urllib.request, "urlopen", fake_urlopen)
    idx.download_mnist(tmp_path / "ok", mirrors=("https://bad/", "https://good/"))
    assert all((tmp_path / "ok" / n).read_bytes() == p for n, p in payloads.items())

    with pytest.raises(DataError, match=r"could not be downloaded:\n.*md5 mismatch"):
        idx.download_mnist(tmp_path / "bad", mirrors=("https://bad/",))


def test_offline_download_says_where_to_put_the_files(tmp_path, monkeypatch):
    def offline(url, timeout):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(idx.urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match=r"(?s)MNIST is not in .*Put the four files"):
        load_idx_folder(tmp_path / "none", image_size=28, crop="none", channels=None, cache_dir=None, download=True)


def _idx_file(path, array, code):
    import struct

    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(idx._DTYPES[code]).tobytes())


def test_float_or_wide_pixels_are_scaled_or_refused_never_cast(tmp_path):
    folder = tmp_path / "m"
    fake_mnist(folder)
    images = folder / "train-images-idx3-ubyte.gz"
    images.unlink()
    nan = np.full((6, 28, 28), 0.5)
    nan[0, 0, 0] = np.nan
    _idx_file(folder / "train-images-idx3-ubyte", nan, 0x0E)  # float64 (D15)
    with pytest.raises(DataError, match="NaN or infinite"):
        load_idx_folder(folder, image_size=28, crop="none", channels=None, cache_dir=str(tmp_path / "c1"))
    _idx_file(folder / "train-images-idx3-ubyte", np.full((6, 28, 28), 300), 0x0C)  # int32 past 255
    with pytest.raises(DataError, match=r"must be 0\.\.255"):
        load_idx_folder(folder, image_size=28, crop="none", channels=None, cache_dir=str(tmp_path / "c2"))
    _idx_file(folder / "train-images-idx3-ubyte", np.full((6, 28, 28), 0.5), 0x0D)  # float32 in [0, 1]
    data = load_idx_folder(folder, image_size=28, crop="none", channels=None, cache_dir=str(tmp_path / "c3"))
    assert int(data.images[0, 0, 0, 0]) == 128


def test_a_gzip_bomb_is_read_only_as_far_as_its_header_says(tmp_path):
    import gzip
    import struct

    header = struct.pack(">BBBB", 0, 0, 0x08, 3) + struct.pack(">3I", 1, 28, 28)
    with gzip.open(tmp_path / "bomb-idx3-ubyte.gz", "wb") as handle:
        handle.write(header + bytes(28 * 28))
        handle.write(bytes(200 << 20))  # 200 MB more than declared: never inflated
    with pytest.raises(DataError, match="more data than its header declares"):
        read_idx(tmp_path / "bomb-idx3-ubyte.gz")
    (tmp_path / "huge-idx3-ubyte").write_bytes(
        struct.pack(">BBBB", 0, 0, 0x0E, 3) + struct.pack(">3I", 1 << 31, 1 << 16, 1)
    )
    with pytest.raises(DataError, match="the limit is"):
        read_idx(tmp_path / "huge-idx3-ubyte")


def test_images_already_at_the_size_asked_get_the_channels_asked(tmp_path):
    folder = fake_mnist(tmp_path / "m")
    data = load_idx_folder(folder, image_size=28, crop="none", channels=3, cache_dir=str(tmp_path / "c"))
    assert data.images.shape == (10, 3, 28, 28)
    assert (data.images[:, 0] == data.images[:, 2]).all()  # gray, repeated
