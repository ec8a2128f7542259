import pytest
import torch

from tests.helpers import tiny_config
from vaekit.explore.attributes import AttributeVectors
from vaekit.training.trainer import Trainer
from vaekit.web import create_app


@pytest.fixture(scope="package")
def served_run(tmp_path_factory):
    """A tiny trained model (16 px shapes, 4-d latent) with two saved attribute vectors."""
    config = tiny_config(**{"train.max_steps": 6, "data.seed": 3, "train.fit_sampler": False})  # split seed 3: used
    run = Trainer(config, tmp_path_factory.mktemp("serve") / "run").fit()
    vectors = {"Bigger": torch.tensor([2.0, 0, 0, 0]), "Redder": torch.tensor([0, 0, -2.0, 1.0])}
    AttributeVectors(vectors, {name: {"with": 10, "without": 10} for name in vectors}).save(run / "model")
    return run


@pytest.fixture(scope="package")
def app(served_run):
    return create_app(served_run, allowed_hosts=["testserver"])  # the TestClient's Host header
