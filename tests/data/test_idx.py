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
