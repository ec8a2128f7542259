import numpy as np
import torch

from vaekit.evaluation.reconstruction import reconstruction_metrics
from vaekit.models.base import VAE


class _Grey(VAE):
    """Reconstructs every image as mid-grey."""

    def __init__(self) -> None:
        from vaekit.likelihoods import Gaussian

        super().__init__(Gaussian(), (1, 8, 8))
        self.latent_shape = (1,)
        self.encoder = self.decoder = torch.nn.Linear(1, 1)

    def reconstruct(self, images):
        return torch.full_like(images, 0.5)


def test_the_reconstruction_error_is_a_mean_over_pixels_and_images():
    images = np.zeros((3, 1, 8, 8), np.uint8)
    images[0] = 255  # errors of 0.5 everywhere in every image: squared 0.25
    metrics = reconstruction_metrics(_Grey(), images)
    assert abs(metrics["mse"] - 0.25) < 1e-6
    assert abs(metrics["psnr"] - 10 * np.log10(1 / 0.25)) < 1e-3
