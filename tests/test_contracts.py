"""The contracts every registered architecture x likelihood x objective combination keeps.

For each valid combination: it builds, takes two training steps with finite losses, saves and loads
bit for bit, resumes bit-exactly (weights and optimiser state through a checkpoint's formats), makes
the same update from two micro-batches as from the whole batch (where accumulation is supported and
no batch statistics are involved), and evaluates deterministically.
"""

from __future__ import annotations

import atexit
import io
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

from tests.helpers import tiny_config
from vaekit import noise
from vaekit.config import ConfigError
from vaekit.engine.precision import Precision
from vaekit.engine.step import StepInfo, update
from vaekit.io.checkpoints import load_weights, save_weights
from vaekit.likelihoods import LIKELIHOODS
from vaekit.models import ARCHITECTURES, create_model
from vaekit.objectives import OBJECTIVES, TERMS, create_objective

# The matrix is every registered architecture x likelihood x objective (+ the adversarial term where
# an objective has it), each at the tiny settings it registered. What a tiny instance needs from the
# test itself is here: user networks are the test's own code.
BROUGHT_BY_THE_TEST = {
    "modules": {  # users' own networks (VAE.from_modules), rebuilt from their class paths
        "model.modules.encoder": "tests.networks:MLPEncoder",
        "model.modules.decoder": "tests.networks:MLPDecoder",
        "model.modules.encoder_args": {"inputs": 192, "latent": 3},
        "model.modules.decoder_args": {"latent": 3, "shape": [3, 8, 8]},
        "model.modules.latent_shape": [3],
    },
    "perceptual": {"likelihood.perceptual.network": "tests.networks:tiny_features"},
}
NEEDS_A_NETWORK = {"alignment"}  # a foundation model (tests/objectives/test_alignment.py builds a tiny one)


def _settings(registry, key: str) -> dict[str, dict]:
    return {e.name: {key: e.name, **e.tiny, **BROUGHT_BY_THE_TEST.get(e.name, {})} for e in registry}


ARCH_SETTINGS = _settings(ARCHITECTURES, "model.arch")
LIKELIHOOD_SETTINGS = _settings(LIKELIHOODS, "likelihood.name")
OBJECTIVE_SETTINGS = _settings(OBJECTIVES, "objective.name")
OBJECTIVE_SETTINGS |= {  # every objective term that runs without a network of its own, with each objective accepting it
    f"{objective}+{term.name}": {
        **OBJECTIVE_SETTINGS[objective],
        f"{term.options_key}.enabled": True,
        **term.tiny,
        **BROUGHT_BY_THE_TEST.get(term.name, {}),
    }
    for term in TERMS
    if term.name not in NEEDS_A_NETWORK
    for objective in sorted(term.declares.get("objectives", ()))
    if objective in OBJECTIVE_SETTINGS
}


def test_the_matrix_covers_the_built_in_components():
    assert {"conv", "resnet", "spatial", "style", "autoencoder-kl", "modules"} <= set(ARCH_SETTINGS)
    assert {"bernoulli", "gaussian", "laplace", "perceptual"} <= set(LIKELIHOOD_SETTINGS)
    assert {"elbo", "soft-intro", "as-intro", "elbo+adversarial", "soft-intro+adversarial", "elbo+equivariance"} <= set(
        OBJECTIVE_SETTINGS
    )


REFERENCE = ("conv", "gaussian", "elbo")  # what a component from outside vaekit is paired with


def _built_in(registry, name: str) -> bool:
    return registry.get(name).factory.__module__.startswith("vaekit.")


def _combinations():
    """Every combination of vaekit's own components; a component registered from outside (the toys
    of tests/components/) with the reference components and with each other outsider."""
    for arch in ARCH_SETTINGS:
        for likelihood in LIKELIHOOD_SETTINGS:
            for objective, settings in OBJECTIVE_SETTINGS.items():
                name = settings["objective.name"]
                needs = OBJECTIVES.get(name).has("continuous-likelihood")
                image_output = ARCHITECTURES.get(arch).has("image-output")
                if (needs or image_output) and not LIKELIHOODS.get(likelihood).has("continuous"):
                    continue  # refused by the config check (tests/test_registry.py)
                spatial = any(TERMS.get(t).has("spatial-latent") for t in objective.split("+")[1:])
                if spatial and not ARCHITECTURES.get(arch).has("spatial-latent"):
                    continue  # refused by the config check too
                terms = objective.split("+")[1:]
                outside = [
                    not _built_in(ARCHITECTURES, arch),
                    not _built_in(LIKELIHOODS, likelihood),
                    not _built_in(OBJECTIVES, name) or any(not _built_in(TERMS, t) for t in terms),
                ]
                if terms and name != REFERENCE[2] and (arch, likelihood) != REFERENCE[:2]:
                    continue  # a term on another objective: with the reference network and likelihood
                if name == "distill" and (arch, likelihood) != REFERENCE[:2]:
                    continue  # with the reference network (its students: tests/objectives/test_distill.py)
                chosen = (arch, likelihood, objective)
                if any(outside) and not all(o or c == r for o, c, r in zip(outside, chosen, REFERENCE, strict=True)):
                    continue
                yield pytest.param(arch, likelihood, objective, id=f"{arch}-{likelihood}-{objective}")


def _config(arch, likelihood, objective, **extra):
    if OBJECTIVE_SETTINGS[objective]["objective.name"] == "distill":
        extra = {"objective.distill.teacher": _teacher(arch, likelihood), **extra}
    return tiny_config(
        **{
            "model.arch": arch,
            "data.image_size": 8,
            "model.latent_dim": 3,
            "train.batch_size": 4,
            **ARCH_SETTINGS[arch],
            **LIKELIHOOD_SETTINGS[likelihood],
            **OBJECTIVE_SETTINGS[objective],
            **{k: v for k, v in ARCH_SETTINGS[arch].items() if k.startswith("likelihood.")},  # its decoder's range
            **extra,
        }
    )


TEACHERS = Path(tempfile.mkdtemp(prefix="vaekit-teachers-"))  # removed at exit (below)
atexit.register(shutil.rmtree, TEACHERS, True)


def _teacher(arch, likelihood) -> str:
    """A model folder of the same network (untrained) for the distill objective to reproduce."""
    folder = TEACHERS / f"{arch}-{likelihood}"
    if not folder.exists():
        config = _config(arch, likelihood, "elbo")
        torch.manual_seed(1)
        create_model(config, trust_code=True).save_pretrained(folder)
    return str(folder)


def _build(config, accumulate=1):
    torch.manual_seed(0)
    model = create_model(config, trust_code=True)
    precision = Precision("fp32", torch.device("cpu"), accumulate=accumulate)
    return model, create_objective(model, config, precision, trust_code=True), precision


BATCHES = torch.rand(3, 4, 3, 8, 8, generator=torch.Generator().manual_seed(5))


def _train(objective, precision, steps):
    results = []
    for step in steps:
        info = StepInfo(step=step, epoch=step / 4, total_steps=8, batch_size=4)
        results.append(update(objective, precision, BATCHES[step], info, noise.step_seed(0, step)))
    return results


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _identical(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize(("arch", "likelihood", "objective"), list(_combinations()))
def test_the_contract(arch, likelihood, objective, tmp_path):
    config = _config(arch, likelihood, objective)

    # build, two steps
    model, optimizer, precision = _build(config)
    model.train()
    results = _train(optimizer, precision, [0, 1])
    assert all(torch.isfinite(r["loss"]) for r in results)
    straight = _state(model)
    assert any(not torch.equal(straight[k], v) for k, v in _state(_build(config)[0]).items())  # it learned

    # save / load round trip
    save_weights(model, tmp_path)
    loaded, _, _ = _build(config)
    load_weights(loaded, tmp_path)
    _identical(_state(loaded), straight)

    # bit-exact resume: one step, through the checkpoint formats, then the second
    first, objective_a, precision_a = _build(config)
    first.train()
    _train(objective_a, precision_a, [0])
    save_weights(first, tmp_path)
    buffer = io.BytesIO()
    torch.save(objective_a.state_dict(), buffer)
    resumed, objective_b, precision_b = _build(config)
    resumed.train()
    load_weights(resumed, tmp_path)
    buffer.seek(0)
    objective_b.load_state_dict(torch.load(buffer, weights_only=True))
    _train(objective_b, precision_b, [1])
    _identical(_state(resumed), straight)

    # deterministic evaluation
    model.eval()
    images = BATCHES[2]
    torch.testing.assert_close(model.reconstruct(images), model.reconstruct(images), rtol=0, atol=0)
    samples = [model.sample(3, generator=torch.Generator().manual_seed(1)) for _ in range(2)]
    torch.testing.assert_close(samples[0], samples[1], rtol=0, atol=0)


@pytest.mark.parametrize(("arch", "likelihood", "objective"), list(_combinations()))
def test_two_micro_batches_make_the_update_of_the_whole_batch(arch, likelihood, objective, tmp_path):
    config = _config(arch, likelihood, objective)
    whole, objective_whole, precision_whole = _build(config)
    if not objective_whole.supports_accumulation:  # several updates per step: the trainer refuses
        from vaekit.training.trainer import Trainer

        with pytest.raises(ConfigError, match="accumulate"):
            Trainer(config.with_overrides({"train.accumulate": 2}), tmp_path / "run", trust_code=True)
        return
    if ARCHITECTURES.get(arch).has("batch-statistics"):
        pytest.skip("BatchNorm normalises each micro-batch by its own statistics (as in any accumulation)")
    # the gradients handed to the optimiser (Adam's first step is sign-like, so compare before it)
    gradients = {}
    for name, optimizer in (("whole", objective_whole), ("halves", None)):
        if optimizer is None:
            model, optimizer, precision = _build(config, accumulate=2)
        else:
            model, precision = whole, precision_whole
        adam = optimizer.optimizers["model"]
        adam.step = lambda *a, name=name, model=model, **k: gradients.__setitem__(
            name, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        )
        model.train()
        _train(optimizer, precision, [0])
    assert gradients["whole"].keys() == gradients["halves"].keys()
    total = torch.cat([g.flatten() for g in gradients["whole"].values()]).norm()
    for key, value in gradients["whole"].items():  # (float32 sums over many pixels; zero-in-theory grads)
        difference = (gradients["halves"][key] - value).norm()
        assert difference <= 1e-4 * value.norm() + 1e-5 * total, key


@pytest.mark.parametrize("arch", list(ARCH_SETTINGS))
def test_every_architecture_trains_and_decodes_under_torchs_flop_counter(arch):
    """The benchmarks count a step's FLOPs with torch's FlopCounterMode, whose module tracker
    rejects tensors that claim to need gradients without a graph (e.g. a parameter's view made
    under no_grad)."""
    from torch.utils.flop_counter import FlopCounterMode

    model, objective, precision = _build(_config(arch, "gaussian", "elbo"))
    with FlopCounterMode(display=False) as counter:
        model.train()
        _train(objective, precision, [0])
        model.eval()
        model.reconstruct(BATCHES[2])
        model.sample(2, generator=torch.Generator().manual_seed(1))
    assert counter.get_total_flops() > 0


def test_an_adversarial_term_on_an_objective_that_does_not_accept_it_is_refused():
    config = tiny_config(**{"objective.name": "tests.networks:PlainObjective", "objective.adversarial.enabled": True})
    model = create_model(config)
    with pytest.raises(ConfigError, match=r"objective\.adversarial\.enabled: the adversarial term does not run with"):
        create_objective(model, config, Precision("fp32", torch.device("cpu")), trust_code=True)
