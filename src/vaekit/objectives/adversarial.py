"""An adversarial term for any objective: a PatchGAN discriminator with the hinge loss, and a
weight adapted so its gradient at the decoder's last layer matches the reconstruction term's
(Esser et al. 2021), switched on at ``start_step``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vaekit.config import Config, ConfigError
from vaekit.engine.optimizers import make_optimizer
from vaekit.engine.precision import Precision
from vaekit.engine.step import StepInfo
from vaekit.models.base import VAE
from vaekit.objectives.terms import TERMS, Term, TermInputs
from vaekit.schema import MAX_WIDTH, bounded, non_negative, positive


@dataclass(frozen=True)
class AdversarialConfig:
    """An optional PatchGAN discriminator term (hinge loss) added to any objective's decoder loss."""

    enabled: bool = False
    weight: float = non_negative(0.5)  # times the adaptive weight
    adaptive: bool = True  # balance by gradient norms at the decoder's last layer (as in VQGAN)
    start_step: int = non_negative(0)
    loss: Literal["hinge", "vanilla"] = "hinge"  # the discriminator's loss
    layers: int = positive(3, 8)
    channels: int = positive(64, MAX_WIDTH)
    lr: float | None = bounded(None, 0, above=True)  # default: train.lr
    r1_weight: float = non_negative(0.0)  # R1 penalty: gamma / 2 * |grad D(real)|^2 (Mescheder et al. 2018)
    lecam_weight: float = non_negative(0.0)  # LeCam: logits kept near the other side's running mean (Tseng 2021)
    lecam_decay: float = bounded(0.99, 0.0, 0.999999)


def smallest_image(layers: int) -> int:
    """The smallest image side the PatchGAN of ``layers`` layers gives a logit for: each layer halves
    the side and the last two 4x4 convolutions take 2 more."""
    return 3 * 2**layers


class PatchDiscriminator(nn.Module):
    """pix2pix's N-layer PatchGAN: one real/fake logit per overlapping patch."""

    def __init__(self, image_channels: int, channels: int = 64, layers: int = 3) -> None:
        super().__init__()
        blocks: list[nn.Module] = [nn.Conv2d(image_channels, channels, 4, 2, 1), nn.LeakyReLU(0.2)]
        width = channels
        for i in range(1, layers + 1):
            out = channels * min(2**i, 8)
            stride = 2 if i < layers else 1
            blocks += [nn.Conv2d(width, out, 4, stride, 1, bias=False), nn.BatchNorm2d(out), nn.LeakyReLU(0.2)]
            width = out
        blocks.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.main = nn.Sequential(*blocks)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.main(images)


def last_decoder_layer(model: VAE) -> torch.Tensor:
    """The weight of the decoder's last convolution or linear layer (where the two gradients are
    compared for the adaptive weight)."""
    layers = [m for m in model.decoder.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear)]
    if not layers:
        raise ConfigError("objective.adversarial.enabled: the term needs a decoder with a convolution or linear layer")
    return layers[-1].weight


@TERMS.register(
    "adversarial",
    options=AdversarialConfig,
    summary="a PatchGAN discriminator (hinge or vanilla, adaptive weight, R1, LeCam), from a start step",
    objectives={"elbo", "soft-intro", "as-intro", "distill"},
    logs=("adv_weight", "d_loss"),
    capabilities={"second-phase"},
    tiny={"objective.adversarial.channels": 4, "objective.adversarial.layers": 1},
)
class AdversarialTerm(Term):
    """Holds the discriminator and its optimiser: ``generator_loss`` joins the objective's decoder
    loss and ``discriminator_step`` runs after the objective's own update."""

    def __init__(self, model: VAE, config: Config, precision: Precision, trust_code: bool = False) -> None:
        super().__init__(model, config, precision)
        options = config.objective.adversarial
        self.options = options
        device = next(model.parameters()).device
        self.discriminator = PatchDiscriminator(model.image_shape[0], options.channels, options.layers).to(device)
        self.optimizer = make_optimizer(self.discriminator.parameters(), config, options.lr)
        self.optimizers["discriminator"] = self.optimizer
        # LeCam's running means of the logits on real and on fake images (kept in the state dict)
        self.discriminator.register_buffer("lecam_real", torch.zeros((), device=device))
        self.discriminator.register_buffer("lecam_fake", torch.zeros((), device=device))

    @classmethod
    def check(cls, config: Config) -> None:
        side, layers = config.data.image_size, config.objective.adversarial.layers
        if side < smallest_image(layers):
            raise ConfigError(
                f"objective.adversarial.layers: a PatchGAN of {layers} layers needs images of at least "
                f"{smallest_image(layers)} px (data.image_size is {side}); use fewer layers"
            )

    def loss(self, inputs: TermInputs, info: StepInfo) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with self.precision.autocast():
            loss, weight = self.generator_loss(inputs.images, inputs.reconstruction_loss, info.step)
        return loss, {"adv_weight": weight}

    def after_update(self, inputs: TermInputs, info: StepInfo) -> dict[str, torch.Tensor]:
        return {"d_loss": self.discriminator_step(inputs.batch, inputs.images, info)}

    def state_dict(self) -> dict:
        return {"discriminator_weights": self.discriminator.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.discriminator.load_state_dict(state["discriminator_weights"])

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """The discriminator in fp32 whatever the autocast around it: its loss and gradient
        penalties are where bf16 / fp16 first overflow once the adversarial phase starts."""
        with torch.autocast(images.device.type, enabled=False):
            return self.discriminator(images.float())

    def active(self, step: int) -> bool:
        return step >= self.options.start_step

    def generator_loss(
        self, fake: torch.Tensor, reconstruction_loss: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(weighted adversarial loss for the decoder, the weight used)."""
        if not self.active(step):
            zero = torch.zeros((), device=fake.device)
            return zero, zero
        self.discriminator.requires_grad_(False)
        g_loss = -self.logits(fake).mean()
        self.discriminator.requires_grad_(True)
        weight = torch.tensor(self.options.weight, device=fake.device)
        if self.options.adaptive:
            layer = last_decoder_layer(self.model)
            rec_grad = torch.autograd.grad(reconstruction_loss, layer, retain_graph=True)[0]
            g_grad = torch.autograd.grad(g_loss, layer, retain_graph=True)[0]
            weight = weight * (rec_grad.norm() / (g_grad.norm() + 1e-4)).clamp(0, 1e4).detach()
        return weight * g_loss, weight

    def discriminator_step(self, real: torch.Tensor, fake: torch.Tensor, info: StepInfo) -> torch.Tensor:
        """One update of the discriminator on detached images, in fp32 (hinge or vanilla loss, halved
        as in latent diffusion's ``LPIPSWithDiscriminator``; plus the R1 and LeCam terms when
        weighted); returns its loss."""
        if not self.active(info.step):
            return torch.zeros((), device=real.device)
        options = self.options
        real = real.detach().float().requires_grad_(options.r1_weight > 0)
        logits_real, logits_fake = self.logits(real), self.logits(fake.detach())
        if options.loss == "hinge":
            loss = 0.5 * (F.relu(1 - logits_real).mean() + F.relu(1 + logits_fake).mean())
        else:
            loss = 0.5 * (F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean())
        if options.r1_weight > 0:
            (gradient,) = torch.autograd.grad(logits_real.sum(), real, create_graph=True)
            loss = loss + options.r1_weight / 2 * gradient.square().flatten(1).sum(1).mean()
        if options.lecam_weight > 0:
            loss = loss + options.lecam_weight * lecam_penalty(logits_real, logits_fake, self.discriminator)
            decay = options.lecam_decay
            with torch.no_grad():
                self.discriminator.lecam_real.lerp_(logits_real.mean().detach(), 1 - decay)
                self.discriminator.lecam_fake.lerp_(logits_fake.mean().detach(), 1 - decay)
        self.precision.minimize(loss, self.optimizer, self.discriminator.parameters(), info.micro_batch)
        return loss.detach()


def lecam_penalty(logits_real: torch.Tensor, logits_fake: torch.Tensor, anchors: nn.Module) -> torch.Tensor:
    """LeCam regularisation (Tseng et al. 2021): real logits near the running mean of the fake ones
    and fake logits near that of the real ones, ``mean(relu(D(x) - a_F)^2) + mean(relu(a_R - D(G(z)))^2)``."""
    return (
        F.relu(logits_real - anchors.lecam_fake).square().mean()
        + F.relu(anchors.lecam_real - logits_fake).square().mean()
    )
