"""Users' own networks, importable as ``tests.networks`` (for VAE.from_modules and plug-in tests)."""

from __future__ import annotations

import torch
from torch import nn

from vaekit.models.base import VAE
from vaekit.objectives.elbo import ELBO


class MLPEncoder(nn.Module):
    """Flattens its input; returns (mean, logvar)."""

    def __init__(self, inputs: int = 256, latent: int = 2, hidden: int = 32) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(inputs, hidden), nn.ReLU())
        self.mean, self.logvar = nn.Linear(hidden, latent), nn.Linear(hidden, latent)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.mean(h), self.logvar(h)


class MLPDecoder(nn.Module):
    """Latent -> ``shape`` (e.g. [1, 16, 16] or [2])."""

    def __init__(self, latent: int = 2, shape: tuple[int, ...] = (1, 16, 16), hidden: int = 32) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.body = nn.Sequential(
            nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, int(torch.tensor(shape).prod()))
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z).view(len(z), *self.shape)


class TinyPluginVAE(VAE):
    """A plug-in architecture: ``model.arch: tests.networks:TinyPluginVAE``."""

    def __init__(self, config, likelihood, image_shape) -> None:
        super().__init__(likelihood, image_shape)
        size = int(torch.tensor(image_shape).prod())
        hidden = int(config.options.get("hidden", 16))
        self.latent_shape = (config.latent_dim,)
        self.encoder = MLPEncoder(size, config.latent_dim, hidden)
        self.decoder = MLPDecoder(config.latent_dim, tuple(image_shape), hidden)


class CountingELBO(ELBO):
    """A plug-in objective: the ELBO that also counts its steps (``objective.options.scale`` x 1)."""

    metric_names = (*ELBO.metric_names, "steps_seen")

    def __init__(self, model, config, precision) -> None:
        super().__init__(model, config, precision)
        self.metric_names = (*self.metric_names, "steps_seen")
        self.seen = 0

    def step(self, batch, info):
        self.seen += 1
        return {**super().step(batch, info), "steps_seen": torch.tensor(float(self.seen))}


def tiny_features() -> nn.Module:
    """A small feature network for perceptual-likelihood tests (layers "1" and "3")."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())


class PlainObjective(ELBO):
    """A plug-in objective that does not add an adversarial term (``supports_adversarial`` False)."""

    supports_adversarial = False


def tiny_dinov2(folder):
    """A DINOv2 of one 16-wide layer on 32 px images, its config alone saved in ``folder`` (the
    alignment term draws its weights at random with ``objective.alignment.random_weights``)."""
    import transformers

    transformers.Dinov2Config(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, image_size=32, patch_size=8
    ).save_pretrained(folder)
    return folder
