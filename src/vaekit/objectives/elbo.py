"""The evidence lower bound: NLL + weight * KL, one Adam(W) optimiser over the whole model."""

from __future__ import annotations

import torch

from vaekit.config import Config, ConfigError
from vaekit.engine.optimizers import make_optimizer
from vaekit.engine.precision import Precision
from vaekit.engine.step import StepInfo
from vaekit.models.base import VAE
from vaekit.objectives.base import Objective
from vaekit.objectives.kl_weight import KLConfig, grouped_kl, kl_weight
from vaekit.objectives.registry import OBJECTIVES
from vaekit.objectives.terms import TermInputs


@OBJECTIVES.register(
    "elbo",
    options=KLConfig,
    section="kl",
    summary="the evidence lower bound: reconstruction NLL + weighted KL (+ its terms)",
)
class ELBO(Objective):
    """Minimise E_q[-log p(x|z)] + beta * KL(q(z|x) || p(z)) per sample, averaged over the batch.

    ``neg_elbo`` is reported with beta = 1 and no free bits, so it is the true bound in nats.
    """

    metric_names = ("loss", "neg_elbo", "nll", "kl", "kl_weight")
    capabilities = frozenset({"accumulation", "ddp", "any-latent"})

    def __init__(self, model: VAE, config: Config, precision: Precision) -> None:
        super().__init__(model, config, precision)
        self.optimizers["model"] = make_optimizer([p for p in model.parameters() if p.requires_grad], config)
        self.groups = list(model.latent_groups)
        weights = config.objective.kl.group_weights
        if weights and len(weights) != len(self.groups):
            names = [name for name, _, _ in self.groups] or "none"
            raise ConfigError(
                f"objective.kl.group_weights has {len(weights)} entries; the model's latent groups: {names}"
            )
        groups = (f"kl_{name}" for name, _, _ in self.groups)
        self.metric_names = (*ELBO.metric_names, *groups, *model.bottleneck.logs)

    def step(self, batch: torch.Tensor, info: StepInfo) -> dict[str, torch.Tensor]:
        likelihood = self.model.likelihood
        target = likelihood.prepare(batch, stochastic=True)
        with self.precision.autocast():
            out = self.forward_pass(target)
            nll = likelihood.nll(out.params, target).float()
        kl_dims = out.posterior.kl_per_dim().float()
        kl = kl_dims.flatten(1).sum(1)
        beta = kl_weight(self.config.objective.kl, info.step, info.epoch, info.batch_size or len(batch))
        kl_config = self.config.objective.kl
        loss = nll.mean() + beta * grouped_kl(kl_dims, kl_config.free_bits, self.groups, kl_config.group_weights)
        if out.posterior.auxiliary_loss is not None:  # a quantizer's commitment / codebook / entropy loss
            loss = loss + out.posterior.auxiliary_loss
        inputs = TermInputs(batch, target, nll.mean(), lambda: likelihood.image(out.params), out.z, out.params)
        loss, extra = self.terms.add(loss, inputs, info)
        optimizers, parameters = self.terms.joint([self.optimizers["model"]], list(self.model.parameters()))
        self.precision.minimize(loss, optimizers, parameters, info.micro_batch)
        extra |= self.terms.after_update(inputs, info)
        flat = kl_dims.detach().flatten(1)
        return {
            **extra,
            "loss": loss.detach(),
            "neg_elbo": (nll + kl).mean().detach(),
            "nll": nll.mean().detach(),
            "kl": kl.mean().detach(),
            "kl_weight": torch.tensor(beta),
            **{f"kl_{name}": flat[:, a:b].sum(1).mean() for name, a, b in self.groups},
            **out.posterior.logs(),
        }
