import pytest
import torch

from tests.helpers import tiny_config
from vaekit.models import create_model


@pytest.mark.parametrize("size", [28, 32, 64, 128, 256])
@pytest.mark.parametrize("kernel", [3, 4, 5])
def test_decoder_reproduces_any_input_size(size, kernel):
    config = tiny_config(**{"data.image_size": size, "model.kernel_size": kernel, "model.channels": [4, 4, 4]})
    model = create_model(config)
    x = torch.rand(2, 3, size, size)
    out = model(x)
    assert out.params.shape == x.shape
    assert out.z.shape == (2, 4) and model.latent_shape == (4,)


def test_gray_images_and_hidden_layer():
    config = tiny_config(**{"data.channels": 1, "data.image_size": 28, "model.hidden_dim": 32})
    assert create_model(config)(torch.rand(3, 1, 28, 28)).params.shape == (3, 1, 28, 28)


def test_sample_and_reconstruct_give_unit_range_images():
    model = create_model(tiny_config()).eval()
    samples = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (5, 3, 16, 16) and samples.min() >= 0 and samples.max() <= 1
    assert model.reconstruct(torch.rand(2, 3, 16, 16)).shape == (2, 3, 16, 16)


def test_sampling_is_seeded_and_temperature_zero_is_the_prior_mean():
    model = create_model(tiny_config()).eval()
    a = model.sample(3, generator=torch.Generator().manual_seed(1))
    b = model.sample(3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    cold = model.sample(2, temperature=0.0)
    torch.testing.assert_close(cold[0], model.to_image(torch.zeros(1, 4))[0])


def test_non_square_is_rejected():
    with pytest.raises(ValueError, match="square"):
        from vaekit.likelihoods import Bernoulli
        from vaekit.models.conv import ConvVAE

        ConvVAE(tiny_config().model, Bernoulli(), (3, 16, 20))


def test_every_encoder_and_decoder_layer_is_followed_by_its_activation():
    from torch import nn

    model = create_model(tiny_config(**{"model.hidden_dim": 24, "model.activation": "silu"}))
    encoder = list(model.encoder)
    hidden = [i for i, m in enumerate(encoder) if isinstance(m, nn.Linear)]
    assert hidden and all(isinstance(encoder[i + 1], nn.SiLU) for i in hidden)
    assert all(isinstance(block[-1], nn.SiLU) for block in encoder if isinstance(block, nn.Sequential))
    decoder = list(model.decoder)
    assert all(isinstance(decoder[i + 1], nn.SiLU) for i, m in enumerate(decoder) if isinstance(m, nn.Linear))
