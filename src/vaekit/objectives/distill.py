"""Distillation: a student autoencoder learns to reproduce a frozen teacher's latents and decodes.

The TAESD recipe (a preview decoder for a latent-diffusion autoencoder), with the teacher any model
``vaekit.load`` reads (a run, a model folder, a diffusers folder, an ``hf://`` id):

- the student's encoder regresses the teacher's latent (its posterior mean): the latent term, a
  squared error summed per image;
- the student's decoder decodes the *teacher's* latent into the teacher's decode of it: the decode
  term, the student likelihood's NLL of that image (L1 for Laplace; LPIPS with ``perceptual``), so
  the decoder learns exactly the map a diffusion model's latents will go through;
- objective terms (the adversarial one) see the teacher's decodes as the real images.

With ``train.trainable: decoder`` only the decoder learns (a preview decoder for the teacher's own
encoder). Student and teacher latents must have one shape; the images are the run's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from vaekit.config import Config, ConfigError
from vaekit.engine.optimizers import make_optimizer
from vaekit.engine.precision import Precision
from vaekit.engine.step import StepInfo
from vaekit.models.base import VAE
from vaekit.objectives.base import Objective
from vaekit.objectives.registry import OBJECTIVES
from vaekit.objectives.terms import TermInputs
from vaekit.schema import non_negative


@dataclass(frozen=True)
class DistillConfig:
    """What the student learns from (``objective.name: distill``)."""

    teacher: str = ""  # the model to reproduce: a run, model folder, diffusers folder or hf:// id
    latent_weight: float = non_negative(1.0)  # the student encoder's squared error to the teacher's latent
    decode_weight: float = non_negative(1.0)  # the student decoder's NLL of the teacher's decodes
    # what the student's decoder reproduces from the teacher's latents: the teacher's decodes (distillation),
    # or the images themselves (decoder training without the teacher's decoder: the baseline)
    target: Literal["teacher", "images"] = "teacher"


@OBJECTIVES.register(
    "distill",
    options=DistillConfig,
    section="distill",
    summary="a student reproduces a frozen teacher's latents and decodes (a TAESD-style preview decoder)",
)
class Distill(Objective):
    """latent_weight * |E_s(x) - mean_t(x)|^2 + decode_weight * NLL_s(D_t(mean_t(x)) | D_s(mean_t(x)))."""

    metric_names = ("loss", "latent_error", "decode_nll")
    capabilities = frozenset({"accumulation", "any-latent"})

    def __init__(self, model: VAE, config: Config, precision: Precision) -> None:
        super().__init__(model, config, precision)
        from vaekit.pretrained import load

        options: DistillConfig = config.objective.distill
        if not options.teacher:
            raise ConfigError("objective.distill.teacher: name the model to distil (a run, model or diffusers folder)")
        device = next(model.parameters()).device
        self.teacher = load(options.teacher, device).requires_grad_(False).eval()
        if tuple(self.teacher.latent_shape) != tuple(model.latent_shape):
            raise ConfigError(
                f"objective.distill.teacher: its latent is {tuple(self.teacher.latent_shape)}, the student's "
                f"{tuple(model.latent_shape)}; give the student the teacher's latent channels and down-sampling"
            )
        self.options = options
        self.optimizers["model"] = make_optimizer([p for p in model.parameters() if p.requires_grad], config)

    @torch.no_grad()
    def _teacher(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The teacher's latent (its posterior mean) and its decode of it, an image in [0, 1]."""
        teacher = self.teacher.to(batch.device)
        with self.precision.autocast():
            latent = teacher.encode(teacher.likelihood.prepare(batch)).mean
            image = teacher.likelihood.mean(teacher.decode(latent))
        return latent.float(), image.float().clamp(0, 1)

    def step(self, batch: torch.Tensor, info: StepInfo) -> dict[str, torch.Tensor]:
        likelihood = self.model.likelihood
        latent, image = self._teacher(batch)
        if self.options.target == "images":
            image = batch
        target = likelihood.prepare(image)
        with self.precision.autocast():
            student = self.model.encode(likelihood.prepare(batch)).mean
            params = self.model.decode(latent.to(student.dtype) if student.dtype != latent.dtype else latent)
            nll = likelihood.nll(params, target).float()
        latent_error = (student.float() - latent).square().flatten(1).sum(1)
        options = self.options
        loss = options.decode_weight * nll.mean() + options.latent_weight * latent_error.mean()
        inputs = TermInputs(image, target, nll.mean(), lambda: likelihood.image(params), latent, params)
        loss, extra = self.terms.add(loss, inputs, info)
        optimizers, parameters = self.terms.joint([self.optimizers["model"]], list(self.model.parameters()))
        self.precision.minimize(loss, optimizers, parameters, info.micro_batch)
        extra |= self.terms.after_update(inputs, info)
        return {
            **extra,
            "loss": loss.detach(),
            "latent_error": latent_error.mean().detach(),
            "decode_nll": nll.mean().detach(),
        }


def student_config(teacher: VAE, source: str, student: str = "tiny") -> Config:
    """The run config of a student of ``teacher`` (loaded from ``source``): the teacher's data and
    training settings, objective ``distill``, and as the model either ``tiny`` (diffusers'
    ``AutoencoderTiny``, TAESD's design, with the teacher's latent channels and down-sampling) or the
    architecture ``student`` with the teacher's other model settings (sizes changed with --set)."""
    from vaekit.models.diffusers_adapter import tiny_autoencoder_config

    base = teacher.config.to_dict() if teacher.config is not None else Config().to_dict()
    settings: dict = {
        "objective": {"name": "distill", "distill": {"teacher": source}},
        "train": {**base.get("train", {}), "init": None, "trainable": "all"},
    }
    if student == "tiny":
        settings |= {
            "model": {
                "arch": "diffusers",
                "latent": "deterministic",
                "diffusers": {"class_name": "AutoencoderTiny", "config": tiny_autoencoder_config(teacher)},
            },
            "likelihood": {"name": "laplace", "output": "signed", "learn_scale": False, "scale": 1.0},
        }
    else:
        settings["model"] = {**base["model"], "arch": student}
    return Config.from_dict({**base, **settings})
