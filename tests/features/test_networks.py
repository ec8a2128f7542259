"""The feature networks accept state dicts with the public checkpoints' key names and shapes."""

import pytest
import torch

from vaekit.features.alexnet import AlexNetFeatures
from vaekit.features.inception import FIDInception
from vaekit.features.lpips import LPIPS
from vaekit.features.vgg import VGGFeatures
from vaekit.features.weights import WeightsNotFound, load_pretrained

VGG16_CONVS = {
    0: (64, 3),
    2: (64, 64),
    5: (128, 64),
    7: (128, 128),
    10: (256, 128),
    12: (256, 256),
    14: (256, 256),
    17: (512, 256),
    19: (512, 512),
    21: (512, 512),
    24: (512, 512),
    26: (512, 512),
    28: (512, 512),
}


def _torchvision_vgg16_state():
    state = {}
    for index, (c_out, c_in) in VGG16_CONVS.items():
        state[f"features.{index}.weight"] = torch.randn(c_out, c_in, 3, 3)
        state[f"features.{index}.bias"] = torch.randn(c_out)
    for index, (c_out, c_in) in {0: (4096, 25088), 3: (4096, 4096), 6: (1000, 4096)}.items():
        state[f"classifier.{index}.weight"] = torch.empty(c_out, c_in)
        state[f"classifier.{index}.bias"] = torch.empty(c_out)
    return state


def test_vgg16_loads_a_torchvision_shaped_state_dict():
    network = VGGFeatures("vgg16")
    state = _torchvision_vgg16_state()
    load_pretrained(network, state, "vgg16-397923af.pth", ignore=("classifier.",))
    assert torch.equal(network.features[28].weight, state["features.28.weight"])
    out = network(torch.rand(1, 3, 32, 32), ["relu1_1", "relu2_1", "relu3_1"])
    assert [v.shape[1] for v in out.values()] == [64, 128, 256]


def test_a_wrong_state_dict_is_rejected_with_the_keys():
    state = _torchvision_vgg16_state()
    del state["features.0.weight"]
    with pytest.raises(WeightsNotFound, match=r"missing \['features.0.weight'\]"):
        load_pretrained(VGGFeatures("vgg16"), state, "x.pth", ignore=("classifier.",))


def test_vgg19_layer_names():
    network = VGGFeatures("vgg19")
    assert network.names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert len(network.features) == len(network.names) == 37


def test_alexnet_uses_torchvision_indices():
    keys = set(AlexNetFeatures().state_dict())
    assert keys == {f"features.{i}.{p}" for i in (0, 3, 6, 8, 10) for p in ("weight", "bias")}


def test_fid_inception_matches_the_pytorch_fid_checkpoint_layout():
    state = FIDInception().state_dict()
    assert state["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
    assert state["Mixed_5b.branch_pool.conv.weight"].shape == (32, 192, 1, 1)
    assert state["Mixed_6e.branch7x7dbl_5.conv.weight"].shape == (192, 192, 1, 7)
    assert state["Mixed_7c.branch3x3dbl_3b.conv.weight"].shape == (384, 384, 3, 1)
    assert state["fc.weight"].shape == (1008, 2048)
    assert not any(k.startswith("AuxLogits") for k in state)
    assert len(state) == 566


def test_fid_inception_accepts_a_checkpoint_without_batchnorm_counters():
    reference = FIDInception().state_dict()
    old_style = {k: torch.randn_like(v.float()) for k, v in reference.items() if not k.endswith("num_batches_tracked")}
    network = FIDInception()
    load_pretrained(network, old_style, "pt_inception.pth")
    features = network.eval()(torch.rand(2, 1, 28, 28))
    assert features.shape == (2, 2048)


def test_lpips_accepts_the_public_linear_layer_keys_and_measures_distance():
    metric = LPIPS("alex")
    widths = (64, 192, 384, 256, 256)
    public = {f"lin{i}.model.1.weight": torch.rand(1, w, 1, 1) for i, w in enumerate(widths)}
    linear = torch.nn.ModuleDict({f"lin{i}": getattr(metric, f"lin{i}") for i in range(5)})
    load_pretrained(linear, public, "alex.pth")
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert metric(x, x).abs().max() < 1e-6
    small, large = (metric(x, (x + s * torch.randn_like(x)).clamp(0, 1)).mean() for s in (0.05, 0.3))
    assert 0 < small < large
