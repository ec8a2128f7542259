import math

import pytest
import torch

from tests.helpers import tiny_config
from vaekit.api import train
from vaekit.engine.precision import Precision
from vaekit.models import create_model
from vaekit.objectives import StepInfo, create_objective
from vaekit.objectives.intro import as_distance, beta_neg_at, transition

INTRO = {"likelihood.name": "gaussian", "likelihood.output": "identity", "model.latent_dim": 3,
         "objective.intro.beta_neg": 4.0, "objective.intro.beta_rec": 0.5, "objective.intro.gamma_r": 0.3}  # fmt: skip


def _setup(name, **overrides):
    config = tiny_config(**{**INTRO, "objective.name": name, **overrides})
    torch.manual_seed(0)
    model = create_model(config)
    return model, create_objective(model, config, Precision("fp32", torch.device("cpu"))), config


# ------------------------------------------------------------------ a direct transcription of the formulas
def _sse(a, b):
    return ((a - b) ** 2).sum((1, 2, 3))


def _kl(mu, logvar):
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)


def _as(mu_a, lv_a, mu_b, lv_b, reduce):
    def kernel(m1, v1, m2, v2):
        total = v1[:, None, :] + v2[None, :, :]
        values = torch.exp(-0.5 * (m1[:, None, :] - m2[None, :, :]) ** 2 / total) / torch.sqrt(total)
        return values.mean() if reduce == "mean" else values.sum()

    va, vb = lv_a.exp(), lv_b.exp()
    return kernel(mu_a, va, mu_a, va) + kernel(mu_b, vb, mu_b, vb) - 2 * kernel(mu_a, va, mu_b, vb)


@pytest.mark.parametrize("name", ["soft-intro", "as-intro"])
def test_losses_match_a_direct_transcription(name):
    model, objective, _ = _setup(name, **{"train.lr": 0.0})  # weights stay put between the two phases
    real = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    info = StepInfo(step=5, epoch=0.5, total_steps=20)
    c = transition(5, 20, "tanh") if name == "as-intro" else None
    torch.manual_seed(7)
    scalars = objective.step(real, info)
    torch.manual_seed(7)
    loss_e, loss_d = _official_losses(model, real, 1.0, 0.5, 4.0, 0.3, c)
    torch.testing.assert_close(scalars["loss_encoder"], loss_e.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(scalars["loss_decoder"], loss_d.detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["soft-intro", "as-intro"])
@pytest.mark.parametrize(("moving", "frozen"), [("encoder", "decoder"), ("decoder", "encoder")])
def test_each_phase_changes_only_its_own_parameters(name, moving, frozen, monkeypatch):
    model, objective, _ = _setup(name)
    before = {part: [p.detach().clone() for p in getattr(model, part).parameters()] for part in (moving, frozen)}
    optimizer = objective.optimizers[moving]
    original_step, leaked = optimizer.step, []

    def step(*args, **kwargs):  # no gradient may reach the other half during this phase
        leaked.extend(p for p in getattr(model, frozen).parameters() if p.grad is not None)
        return original_step(*args, **kwargs)

    monkeypatch.setattr(optimizer, "step", step)
    monkeypatch.setattr(objective.optimizers[frozen], "step", lambda *a, **k: None)  # only one phase updates
    objective.step(torch.rand(4, 3, 16, 16), StepInfo(0, 0.0, 10))
    assert not leaked
    after = {part: list(getattr(model, part).parameters()) for part in (moving, frozen)}
    assert all(torch.equal(a, b) for a, b in zip(before[frozen], after[frozen], strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(before[moving], after[moving], strict=True))


def test_as_distance_is_symmetric_and_zero_for_identical_batches():
    g = torch.Generator().manual_seed(0)
    a = [torch.randn(5, 4, generator=g) for _ in range(2)]
    b = [torch.randn(5, 4, generator=g) for _ in range(2)]
    for reduce in ("sum", "mean"):
        torch.testing.assert_close(as_distance(*a, *b, reduce=reduce), as_distance(*b, *a, reduce=reduce))
        assert abs(as_distance(*a, *a, reduce=reduce).item()) < 1e-5
        assert as_distance(*a, *b, reduce=reduce).item() > 0


def test_transition_and_beta_neg_schedules():
    assert transition(0, 100) == 0.0
    assert transition(10, 100) == pytest.approx(math.tanh(0.5))
    assert transition(10, 100, "linear") == pytest.approx(0.5) and transition(90, 100, "linear") == 1.0
    config = tiny_config(**{"objective.intro.beta_neg": 64.0}).objective.intro
    assert beta_neg_at(config, 7) == 64.0
    config = tiny_config(**{"objective.intro.beta_neg_schedule": [256.0, 128.0, 32.0]}).objective.intro
    assert [beta_neg_at(config, e) for e in (0, 1, 2, 9)] == [256.0, 128.0, 32.0, 32.0]


def test_warning_when_fake_kl_stays_below_real_kl_after_patience_then_at_doubling_intervals():
    _, objective, _ = _setup("soft-intro", **{"objective.intro.kl_fake_patience": 2})
    warned = []
    for epoch in range(9):
        objective._track(torch.tensor(10.0), torch.tensor(4.0))
        warning = objective.end_of_epoch(epoch)
        if warning is not None:
            warned.append(epoch + 1)
            assert "raise beta_neg" in warning
    assert warned == [2, 4, 8]
    objective._track(torch.tensor(4.0), torch.tensor(10.0))  # the game recovers: the count starts again
    assert objective.end_of_epoch(9) is None


def test_resume_with_a_new_beta_neg(tmp_path):
    config = tiny_config(**{**INTRO, "objective.name": "soft-intro", "train.max_steps": 4})
    run = train(config, out=tmp_path / "run")
    train(resume=run, overrides=["objective.intro.beta_neg=16", "train.max_steps=8"])
    rows = [r.split(",") for r in (run / "metrics.csv").read_text().splitlines()]
    column = rows[0].index("beta_neg")
    by_step = {int(r[0]): float(r[column]) for r in rows[1:] if r[2] == "train"}
    assert by_step[3] == 4.0 and by_step[8] == 16.0


def test_as_intro_with_ema_and_warmup_resumes_exactly(tmp_path):
    from safetensors.torch import load_file

    settings = {**INTRO, "objective.name": "as-intro", "objective.intro.ema_decay": 0.9,
                "objective.intro.warmup_epochs": 1, "train.epochs": 3}  # fmt: skip
    straight = train(tiny_config(**{**settings, "train.max_steps": 16}), out=tmp_path / "a")
    first = train(tiny_config(**{**settings, "train.max_steps": 9}), out=tmp_path / "b")
    resumed = train(resume=first, overrides=["train.max_steps=16"])
    a, b = load_file(str(straight / "model/model.safetensors")), load_file(str(resumed / "model/model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_needs_a_continuous_likelihood():
    with pytest.raises(ValueError, match="needs a continuous likelihood"):
        _setup("soft-intro", **{"likelihood.name": "bernoulli"})


# ------------------------------------------------------------------ which tensors receive gradients
def _official_losses(model, real, b_kl, b_rec, b_neg, gamma, c=None):
    """L_E and L_D as the issue writes them, with the official code's detaches: the encoder phase
    re-encodes *detached* reconstructions and fakes; the decoder phase decodes a detached z,
    re-decodes detached samples of the re-encoded posteriors and compares them with detached
    targets. The noise is drawn in the objective's order; the graphs are kept for gradients."""
    s = 1 / real[0].numel()
    enc, dec = model.encoder, model.decoder

    def reparam(mu, lv):
        return mu + torch.exp(0.5 * lv) * torch.randn_like(mu)

    def negative(mu, lv, other):
        kl = _kl(mu, lv)
        if c is None:
            return kl
        t = [torch.tanh(v) for v in (mu, lv, *other)]
        return c * kl + (1 - c) * _as(*t, reduce="sum")

    noise = torch.randn(len(real), 3)
    fake = dec(noise)
    mu, lv = enc(real)
    z = reparam(mu, lv)
    rec = dec(z)
    r_mu, r_lv = enc(rec.detach())
    f_mu, f_lv = enc(fake.detach())
    rec_rr, rec_ff = dec(reparam(r_mu, r_lv)), dec(reparam(f_mu, f_lv))
    exp_r = torch.exp(-2 * s * (b_rec * _sse(rec, rec_rr) + b_neg * negative(r_mu, r_lv, (f_mu, f_lv)))).mean()
    exp_f = torch.exp(-2 * s * (b_rec * _sse(fake, rec_ff) + b_neg * negative(f_mu, f_lv, (r_mu, r_lv)))).mean()
    loss_e = s * (b_rec * _sse(real, rec).mean() + b_kl * _kl(mu, lv).mean()) + 0.25 * (exp_r + exp_f)

    fake = dec(noise)
    rec = dec(z.detach())
    r_mu, r_lv = enc(rec)
    f_mu, f_lv = enc(fake)
    rec_rr, rec_ff = dec(reparam(r_mu, r_lv).detach()), dec(reparam(f_mu, f_lv).detach())
    if c is None:
        kls = _kl(r_mu, r_lv).mean() + _kl(f_mu, f_lv).mean()
    else:
        t = [torch.tanh(v) for v in (r_mu, r_lv, f_mu, f_lv)]
        kls = c * (_kl(t[0], t[1]).mean() + _kl(t[2], t[3]).mean()) + (1 - c) * _as(*t, reduce="mean")
    rr = _sse(rec.detach(), rec_rr).mean() + _sse(fake.detach(), rec_ff).mean()
    loss_d = s * (b_rec * _sse(real, rec).mean() + 0.5 * b_kl * kls + 0.5 * gamma * b_rec * rr)
    return loss_e, loss_d


def _captured_gradients(objective, model, monkeypatch):
    """The gradients each phase hands to its optimiser; the optimisers do not move the weights."""
    captured = {}
    for part in ("encoder", "decoder"):
        parameters = list(getattr(model, part).parameters())

        def record(*_args, part=part, parameters=parameters, **_kwargs):
            captured[part] = [p.grad.clone() for p in parameters]

        monkeypatch.setattr(objective.optimizers[part], "step", record)
    return captured


@pytest.mark.parametrize("name", ["soft-intro", "as-intro"])
def test_each_phase_gets_exactly_the_gradients_of_the_official_detach_structure(name, monkeypatch):
    # gamma_r large so that the rec-of-rec terms (and any gradient leaking through them) weigh in
    model, objective, _ = _setup(name, **{"objective.intro.gamma_r": 50.0})
    captured = _captured_gradients(objective, model, monkeypatch)
    real = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    c = transition(5, 20, "tanh") if name == "as-intro" else None
    torch.manual_seed(7)
    objective.step(real, StepInfo(step=5, epoch=0.5, total_steps=20))
    torch.manual_seed(7)
    loss_e, loss_d = _official_losses(model, real, 1.0, 0.5, 4.0, 50.0, c)
    grads_e = torch.autograd.grad(loss_e, list(model.encoder.parameters()), retain_graph=True)
    grads_d = torch.autograd.grad(loss_d, list(model.decoder.parameters()))
    for part, want in (("encoder", grads_e), ("decoder", grads_d)):
        got = torch.cat([g.flatten() for g in captured[part]])
        want = torch.cat([g.flatten() for g in want])
        # a leaked path changes these gradients by 1e-5..1e-3 of their norm; float noise is far below
        assert (got - want).norm() <= 1e-6 * want.norm(), part


def test_as_distance_matches_the_kernel_formula_on_distinct_batches():
    g = torch.Generator().manual_seed(1)
    mu_a, mu_b = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g) + 1.0
    lv_a, lv_b = torch.randn(6, 5, generator=g) * 0.5, torch.randn(6, 5, generator=g) * 0.5 - 1.0
    for reduce in ("sum", "mean"):
        want = _as(mu_a, lv_a, mu_b, lv_b, reduce)
        assert want.abs() > 1e-2  # a distance that is really there
        torch.testing.assert_close(as_distance(mu_a, lv_a, mu_b, lv_b, reduce=reduce), want)


def test_the_as_decoder_term_averages_the_distance_over_pairs():
    from vaekit.models.base import DiagonalGaussian

    _, objective, _ = _setup("as-intro")
    g = torch.Generator().manual_seed(2)
    rec = DiagonalGaussian(torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g))
    fake = DiagonalGaussian(torch.randn(5, 3, generator=g) + 2, torch.randn(5, 3, generator=g) - 1)
    c = 0.3
    t = [torch.tanh(v) for v in (rec.mean, rec.logvar, fake.mean, fake.logvar)]
    want = c * (_kl(t[0], t[1]).mean() + _kl(t[2], t[3]).mean()) + (1 - c) * _as(*t, reduce="mean")
    torch.testing.assert_close(objective._decoder_kl(rec, fake, c), want)


def test_the_decoder_ema_moves_by_one_minus_decay_after_every_introspective_step():
    model, objective, _ = _setup("soft-intro", **{"objective.intro.ema_decay": 0.75})
    before = {name: p.detach().clone() for name, p in model.decoder.named_parameters()}
    objective.step(torch.rand(4, 3, 16, 16), StepInfo(step=0, epoch=0.0, total_steps=10))
    for name, parameter in model.decoder.named_parameters():
        expected = 0.75 * before[name] + 0.25 * parameter.detach()
        torch.testing.assert_close(objective.ema.shadow[name], expected)
    assert any(not torch.equal(before[n], p) for n, p in model.decoder.named_parameters())


def test_the_count_of_epochs_with_low_fake_kl_survives_a_resume():
    _, objective, _ = _setup("soft-intro", **{"objective.intro.kl_fake_patience": 2})
    for epoch in range(3):
        objective._track(torch.tensor(10.0), torch.tensor(4.0))
        objective.end_of_epoch(epoch)
    _, resumed, _ = _setup("soft-intro", **{"objective.intro.kl_fake_patience": 2})
    resumed.load_state_dict(objective.state_dict())
    resumed._track(torch.tensor(10.0), torch.tensor(4.0))
    assert resumed.end_of_epoch(3) is not None  # the 4th low epoch: 2x the patience, a warning
