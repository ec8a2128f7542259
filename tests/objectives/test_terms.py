"""Objective terms: registered with the objectives that accept them and what they log, run by one loop."""

from __future__ import annotations

import csv

import pytest
import torch

import vaekit
from tests.helpers import tiny_config
from vaekit.cli import main
from vaekit.config import ConfigError
from vaekit.engine.precision import Precision
from vaekit.engine.step import StepInfo
from vaekit.models import create_model
from vaekit.objectives import TERMS, create_objective
from vaekit.objectives.terms import TermInputs, Terms

TOY = {"objective.toy_sparse_latent.enabled": True, "objective.toy_sparse_latent.weight": 0.5}


def test_a_term_on_an_objective_that_does_not_accept_it_exits_2_before_any_work(tmp_path, capsys):
    overrides = ["objective.name=soft-intro", "likelihood.name=gaussian", "objective.toy_sparse_latent.enabled=true"]
    code = main(["train", "--data", "shapes", "--out", str(tmp_path / "run"), "--set", *overrides])
    assert code == 2
    assert "objective.toy_sparse_latent.enabled: the toy-sparse-latent term does not run with objective soft-intro; " \
        "use it with elbo" in capsys.readouterr().err  # fmt: skip
    assert not (tmp_path / "run").exists()


def test_an_enabled_term_adds_its_loss_and_logs_its_declared_columns(tmp_path):
    run = vaekit.train(tiny_config(**TOY, **{"train.max_steps": 3}), out=tmp_path / "run")
    rows = list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))
    train_rows = [row for row in rows if row["split"] == "train"]
    assert train_rows and all(float(row["sparse_loss"]) > 0 for row in train_rows)
    off = vaekit.train(tiny_config(**{"train.max_steps": 3}), out=tmp_path / "off")
    assert "sparse_loss" not in (off / "metrics.csv").read_text().splitlines()[0]


def test_the_terms_loss_reaches_the_objectives_loss():
    config = tiny_config(**TOY)
    precision = Precision("fp32", torch.device("cpu"))
    terms = Terms.build(create_model(config), config, precision)
    z = torch.full((2, 4), -2.0)
    inputs = TermInputs(torch.zeros(2, 3, 16, 16), torch.zeros(2, 3, 16, 16), torch.zeros(()), lambda: None, z)
    loss, logs = terms.add(torch.tensor(1.0), inputs, StepInfo(0, 0.0, 1, 2))
    assert loss.item() == pytest.approx(1.0 + 0.5 * 2.0)
    assert logs == {"sparse_loss": pytest.approx(torch.tensor(1.0))}


def test_a_term_that_logs_a_column_it_did_not_declare_is_a_programming_error():
    config = tiny_config(**TOY)
    objective = create_objective(create_model(config), config, Precision("fp32", torch.device("cpu")))
    term = objective.terms["toy-sparse-latent"]
    term.loss = lambda inputs, info: (None, {"surprise": torch.zeros(())})
    with pytest.raises(RuntimeError, match=r"toy-sparse-latent logged \['surprise'\], which it did not declare"):
        objective.step(torch.rand(4, 3, 16, 16), StepInfo(0, 0.0, 1, 4))


def test_every_term_keeps_its_options_at_objective_dot_its_name_with_an_enabled_switch():
    for entry in TERMS:
        options = getattr(tiny_config().objective, entry.options_key.rpartition(".")[2])
        assert options.enabled is False, entry.name
        assert entry.declares["objectives"] and entry.declares["logs"], entry.name


def test_a_term_switched_on_with_a_flat_latent_names_what_it_needs():
    with pytest.raises(ConfigError, match=r"objective\.equivariance: needs a spatial latent"):
        from vaekit.training.setup import check_components

        check_components(tiny_config(**{"objective.equivariance.enabled": True}))


def test_the_patchgans_adaptive_weight_balances_against_the_nll_alone_not_the_whole_loss(monkeypatch):
    from vaekit.objectives.adversarial import AdversarialTerm

    seen = []
    original = AdversarialTerm.generator_loss

    def recording(self, fake, reconstruction_loss, step):
        seen.append(reconstruction_loss.detach().clone())
        return original(self, fake, reconstruction_loss, step)

    monkeypatch.setattr(AdversarialTerm, "generator_loss", recording)
    settings = {"objective.adversarial.enabled": True, "objective.adversarial.channels": 4,
                "objective.adversarial.layers": 1, "objective.kl.weight": 1e4, **TOY}  # fmt: skip
    config = tiny_config(**settings)
    objective = create_objective(create_model(config), config, Precision("fp32", torch.device("cpu")))
    scalars = objective.step(
        torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0)), StepInfo(0, 0.0, 1, 4)
    )
    assert float(seen[0]) == pytest.approx(float(scalars["nll"]), rel=1e-6)
    assert 1e4 * float(scalars["kl"]) > 1  # the loss before the term (NLL + 1e4 KL + the toy's) is not the NLL


def test_non_finite_updates_are_skipped_by_default_while_a_discriminator_trains():
    from tests.helpers import tiny_config
    from vaekit.objectives.terms import skips_nonfinite

    gan = {"objective.adversarial.enabled": True}
    assert skips_nonfinite(tiny_config(**gan)) and not skips_nonfinite(tiny_config())
    assert not skips_nonfinite(tiny_config(**gan, **{"train.on_nonfinite": "stop"}))  # switched back
    assert skips_nonfinite(tiny_config(**{"train.on_nonfinite": "skip"}))
