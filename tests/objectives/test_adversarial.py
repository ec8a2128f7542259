import math

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import tiny_config
from vaekit.api import train
from vaekit.engine.precision import Precision
from vaekit.models import create_model
from vaekit.objectives import StepInfo, create_objective
from vaekit.objectives.adversarial import PatchDiscriminator, last_decoder_layer, lecam_penalty

ADVERSARIAL = {"objective.adversarial.enabled": True, "objective.adversarial.channels": 8,
               "objective.adversarial.layers": 2, "data.image_size": 32}  # fmt: skip


def test_patch_discriminator_gives_a_logit_map():
    assert PatchDiscriminator(3, 8, 3)(torch.rand(2, 3, 64, 64)).shape == (2, 1, 6, 6)


def test_elbo_with_adversarial_term_trains_both_sides():
    config = tiny_config(**ADVERSARIAL)
    model = create_model(config)
    objective = create_objective(model, config, Precision("fp32", torch.device("cpu")))
    discriminator = [p.detach().clone() for p in objective.terms["adversarial"].discriminator.parameters()]
    scalars = objective.step(torch.rand(4, 3, 32, 32), StepInfo(0, 0.0, 10))
    assert scalars["adv_weight"] > 0 and scalars["d_loss"] > 0
    changed = [
        not torch.equal(a, b)
        for a, b in zip(discriminator, objective.terms["adversarial"].discriminator.parameters(), strict=True)
    ]
    assert any(changed)
    assert last_decoder_layer(model) is model.decoder[-1].weight


def test_adversarial_term_waits_for_its_start_step():
    config = tiny_config(**{**ADVERSARIAL, "objective.adversarial.start_step": 100})
    model = create_model(config)
    objective = create_objective(model, config, Precision("fp32", torch.device("cpu")))
    scalars = objective.step(torch.rand(4, 3, 32, 32), StepInfo(0, 0.0, 10))
    assert scalars["adv_weight"] == 0 and scalars["d_loss"] == 0


def test_discriminator_state_is_checkpointed_for_exact_resume(tmp_path):
    straight = train(tiny_config(**{**ADVERSARIAL, "train.max_steps": 10}), out=tmp_path / "a")
    first = train(tiny_config(**{**ADVERSARIAL, "train.max_steps": 5}), out=tmp_path / "b")
    resumed = train(resume=first, overrides=["train.max_steps=10"])
    a, b = load_file(str(straight / "model/model.safetensors")), load_file(str(resumed / "model/model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_discriminator_is_updated_from_its_start_step_and_not_before():
    config = tiny_config(**{**ADVERSARIAL, "objective.adversarial.start_step": 2})
    model = create_model(config)
    objective = create_objective(model, config, Precision("fp32", torch.device("cpu")))
    weights = lambda: [p.detach().clone() for p in objective.terms["adversarial"].discriminator.parameters()]  # noqa: E731
    for step, should_change in ((0, False), (1, False), (2, True), (3, True)):
        before = weights()
        objective.step(torch.rand(4, 3, 32, 32), StepInfo(step, 0.0, 10))
        changed = any(not torch.equal(a, b) for a, b in zip(before, weights(), strict=True))
        assert changed == should_change, step


class _FixedLogits(torch.nn.Module):
    """Logit 2.0 for bright (real) images and 0.5 for dark (fake) ones; one parameter to update."""

    def __init__(self):
        super().__init__()
        self.offset = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return torch.where(x.mean() > 0.5, 2.0, 0.5) * torch.ones(len(x), 1, 4, 4) + 0 * self.offset


@pytest.mark.parametrize(
    ("loss", "expected"),
    [
        ("hinge", 0.5 * (max(0.0, 1 - 2.0) + max(0.0, 1 + 0.5))),
        ("vanilla", 0.5 * (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(0.5)))),
    ],
)
def test_the_discriminator_losses_are_the_latent_diffusion_formulas(loss, expected):
    config = tiny_config(**{**ADVERSARIAL, "objective.adversarial.loss": loss})
    objective = create_objective(create_model(config), config, Precision("fp32", torch.device("cpu")))
    term = objective.terms["adversarial"]
    term.discriminator = _FixedLogits()
    term.optimizer = torch.optim.SGD(term.discriminator.parameters(), lr=0.0)
    d_loss = term.discriminator_step(torch.ones(2, 3, 32, 32), torch.zeros(2, 3, 32, 32), StepInfo(step=0, epoch=0.0))
    assert d_loss.item() == pytest.approx(expected, rel=1e-6)


class _LinearLogits(torch.nn.Module):
    """D(x) = slope * mean(x) per image: the R1 gradient is known, slope / (C H W) per pixel."""

    def __init__(self, slope):
        super().__init__()
        self.slope = torch.nn.Parameter(torch.tensor(slope))
        self.register_buffer("lecam_real", torch.zeros(()))
        self.register_buffer("lecam_fake", torch.zeros(()))

    def forward(self, x):
        return self.slope * x.flatten(1).mean(1, keepdim=True)


def _term(**options):
    config = tiny_config(**ADVERSARIAL, **{f"objective.adversarial.{k}": v for k, v in options.items()})
    objective = create_objective(create_model(config), config, Precision("bf16", torch.device("cpu")))
    return objective.terms["adversarial"]


def test_the_discriminator_runs_in_fp32_inside_a_bf16_autocast():
    term = _term()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert term.logits(torch.rand(2, 3, 32, 32).bfloat16()).dtype == torch.float32


def test_the_r1_penalty_is_half_gamma_times_the_squared_gradient_on_real_images():
    real, fake = torch.ones(2, 3, 32, 32), torch.zeros(2, 3, 32, 32)
    losses = {}
    for gamma in (0.0, 10.0):
        term = _term(r1_weight=gamma, loss="vanilla")
        term.discriminator, term.optimizer = _LinearLogits(4.0), None
        term.precision.minimize = lambda *args, **kwargs: None
        losses[gamma] = term.discriminator_step(real, fake, StepInfo(step=0, epoch=0.0)).item()
    pixels = 3 * 32 * 32
    assert losses[10.0] - losses[0.0] == pytest.approx(10.0 / 2 * pixels * (4.0 / pixels) ** 2, rel=1e-4)


def test_lecam_pulls_logits_towards_the_other_sides_running_mean():
    term = _term(lecam_weight=1.0, lecam_decay=0.5)
    term.discriminator, term.optimizer = _LinearLogits(4.0), None
    term.precision.minimize = lambda *args, **kwargs: None
    real, fake = torch.ones(2, 3, 32, 32), torch.zeros(2, 3, 32, 32)  # logits 4 and 0
    assert lecam_penalty(torch.tensor([4.0]), torch.tensor([0.0]), term.discriminator).item() == pytest.approx(16.0)
    term.discriminator_step(real, fake, StepInfo(step=0, epoch=0.0))
    assert term.discriminator.lecam_real.item() == pytest.approx(2.0)  # halfway from 0 to the real logit 4
    assert term.discriminator.lecam_fake.item() == pytest.approx(0.0)
    assert lecam_penalty(torch.tensor([0.0]), torch.tensor([2.0]), term.discriminator).item() == 0.0


def test_lecam_running_means_move_by_one_minus_the_decay_each_step():
    term = _term(lecam_weight=1.0, lecam_decay=0.9)
    term.discriminator, term.optimizer = _LinearLogits(4.0), None
    term.precision.minimize = lambda *args, **kwargs: None
    real, fake = torch.ones(2, 3, 32, 32), torch.zeros(2, 3, 32, 32)  # logits 4 and 0
    term.discriminator_step(real, fake, StepInfo(step=0, epoch=0.0))
    assert term.discriminator.lecam_real.item() == pytest.approx(0.4)  # 0.9 x 0 + 0.1 x 4
    term.discriminator_step(real, fake, StepInfo(step=1, epoch=0.0))
    assert term.discriminator.lecam_real.item() == pytest.approx(0.76)  # 0.9 x 0.4 + 0.1 x 4


def test_the_adaptive_weight_is_balanced_against_the_reconstruction_nll_alone():
    config = tiny_config(**ADVERSARIAL, **{"objective.adversarial.adaptive": True, "objective.kl.weight": 5.0})
    objective = create_objective(create_model(config), config, Precision("fp32", torch.device("cpu")))
    term = objective.terms["adversarial"]
    seen = []
    real_loss = term.generator_loss
    term.generator_loss = lambda fake, reconstruction, step: (
        seen.append(reconstruction.detach()) or real_loss(fake, reconstruction, step)
    )
    scalars = objective.step(torch.rand(4, 3, 32, 32), StepInfo(0, 0.0, 10))
    assert len(seen) == 1 and torch.allclose(seen[0], scalars["nll"])  # not the loss with its KL
    assert not torch.allclose(scalars["nll"], scalars["loss"])
