"""What only a CUDA device can show: every architecture trains in every precision there, fp16 with
its loss scaler, and a stopped run resumes exactly. Skipped without a GPU (``make gpu-check`` runs
these where one is present); the CPU suite never depends on them."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import tiny_config
from vaekit import noise
from vaekit.engine.precision import Precision
from vaekit.engine.step import StepInfo, update
from vaekit.models import ARCHITECTURES, create_model
from vaekit.objectives import create_objective
from vaekit.training.trainer import Trainer

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (make gpu-check)"),
]
BUILT_IN = [e.name for e in ARCHITECTURES if e.factory.__module__.startswith("vaekit.") and e.name != "modules"]


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
@pytest.mark.parametrize("arch", BUILT_IN)
def test_every_architecture_trains_on_cuda_in_every_precision(arch, precision):
    config = tiny_config(**{"model.arch": arch, **ARCHITECTURES.get(arch).tiny, "train.device": "cuda"})
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = create_model(config).to(device).train()
    engine = Precision(precision, device)
    objective = create_objective(model, config, engine)
    side, channels = config.data.image_size, config.data.channels or 3
    batch = torch.rand(8, channels, side, side, device=device)
    for step in range(3):
        scalars = update(objective, engine, batch, StepInfo(step, 0.0, 10, 8), noise.step_seed(0, step))
        assert torch.isfinite(scalars["loss"]), (arch, precision, step)
    if precision == "fp16":
        assert engine.scaler is not None and engine.scaler.get_scale() > 0
    with torch.no_grad(), model.evaluating():
        assert torch.isfinite(model.sample(4)).all()


def test_a_run_stopped_and_resumed_on_cuda_ends_where_a_straight_run_does(tmp_path):
    torch.use_deterministic_algorithms(True, warn_only=True)
    config = tiny_config(**{"train.device": "cuda", "train.epochs": 2, "train.checkpoint_every": 4})
    straight = Trainer(config, tmp_path / "straight").fit()
    Trainer(config.with_overrides({"train.max_steps": 5}), tmp_path / "resumed").fit()
    resumed = Trainer(config, tmp_path / "resumed", resume=True).fit()
    from safetensors.torch import load_file

    a, b = (load_file(str(run / "model" / "model.safetensors")) for run in (straight, resumed))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-6, atol=1e-6, msg=key)
