"""The evidence lower bound: NLL + weight * KL, one Adam(W) optimiser over the whole model."""

from __future__ import annotations

import torch

from vaekit.config import Config
from vaekit.models.base import VAE
from vaekit.objectives.base import Objective, StepInfo, make_optimizer
from vaekit.objectives.kl_weight import kl_weight, penalised_kl
from vaekit.training.precision import Precision


class ELBO(Objective):
    """Minimise E_q[-log p(x|z)] + beta * KL(q(z|x) || p(z)) per sample, averaged over the batch.

    ``neg_elbo`` is reported with beta = 1 and no free bits, so it is the true bound in nats.
    """

    metric_names = ("loss", "neg_elbo", "nll", "kl", "kl_weight")

    def __init__(self, model: VAE, config: Config, precision: Precision) -> None:
        super().__init__(model, config, precision)
        self.optimizers["model"] = make_optimizer(model.parameters(), config)

    def step(self, batch: torch.Tensor, info: StepInfo) -> dict[str, torch.Tensor]:
        likelihood = self.model.likelihood
        target = likelihood.prepare(batch, stochastic=True)
        with self.precision.autocast():
            out = self.model(target)
        nll = likelihood.nll(out.params, target)
        kl_dims = out.posterior.kl_per_dim().float()
        kl = kl_dims.flatten(1).sum(1)
        beta = kl_weight(self.config.objective.kl, info.step, info.epoch, len(batch))
        loss = nll.mean() + beta * penalised_kl(kl_dims, self.config.objective.kl.free_bits)
        self.precision.minimize(loss, self.optimizers["model"], self.model.parameters())
        return {
            "loss": loss.detach(),
            "neg_elbo": (nll + kl).mean().detach(),
            "nll": nll.mean().detach(),
            "kl": kl.mean().detach(),
            "kl_weight": torch.tensor(beta),
        }
