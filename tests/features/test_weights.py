import hashlib

import pytest
import torch

from vaekit.features import weights
from vaekit.features.weights import PretrainedWeights, WeightsNotFound, locate


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def no_network(url, dst, hash_prefix=None, progress=True):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.delenv("VAEKIT_WEIGHTS", raising=False)
    return tmp_path / "hub" / "checkpoints"


def test_missing_weights_name_the_file_the_url_and_the_folder(offline_hub):
    with pytest.raises(WeightsNotFound) as error:
        locate(weights.VGG16)
    message = str(error.value)
    assert "vgg16-397923af.pth" in message and "https://download.pytorch.org/models/vgg16-397923af.pth" in message
    assert str(offline_hub) in message and "network is unreachable" in message


def test_found_in_the_hub_cache_or_vaekit_weights_and_hash_checked(offline_hub, tmp_path, monkeypatch):
    payload = b"weights"
    prefix = hashlib.sha256(payload).hexdigest()[:8]
    spec = PretrainedWeights("test net", f"net-{prefix}.pth", "https://example.invalid/net.pth", prefix)
    offline_hub.mkdir(parents=True)
    (offline_hub / spec.filename).write_bytes(payload)
    assert locate(spec) == offline_hub / spec.filename

    own = tmp_path / "mine"
    own.mkdir()
    (own / spec.filename).write_bytes(payload)
    monkeypatch.setenv("VAEKIT_WEIGHTS", str(own))
    assert locate(spec) == own / spec.filename

    (own / spec.filename).write_bytes(b"tampered")
    with pytest.raises(WeightsNotFound, match=f"sha256 does not start with {prefix}"):
        locate(spec)


def test_an_explicit_path_must_exist(tmp_path):
    with pytest.raises(WeightsNotFound, match="no file at"):
        locate(weights.FID_INCEPTION, tmp_path / "nope.pth")
