import pytest
import torch

from tests.helpers import tiny_config
from vaekit.models import create_model
from vaekit.training import checkpoint
from vaekit.training.checkpoint import CheckpointError, list_checkpoints, load_training_state, load_weights


def test_weights_round_trip_and_state_loads_with_weights_only(tmp_path):
    model = create_model(tiny_config())
    state = {"step": 3, "rng": torch.get_rng_state(), "optimizers": {"model": {"lr": 0.1}}}
    folder = checkpoint.save_checkpoint(tmp_path, 3, model, state, keep=2)
    other = create_model(tiny_config())
    load_weights(other, folder)
    for a, b in zip(model.state_dict().values(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert load_training_state(folder)["step"] == 3


def test_a_crash_while_writing_leaves_no_partial_checkpoint(tmp_path, monkeypatch):
    model = create_model(tiny_config())
    checkpoint.save_checkpoint(tmp_path, 1, model, {"step": 1}, keep=3)

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        checkpoint.save_checkpoint(tmp_path, 2, model, {"step": 2}, keep=3)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000001"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000001"]


def test_weights_of_another_architecture_give_a_clear_error(tmp_path):
    checkpoint.save_weights(create_model(tiny_config(**{"model.channels": [8, 16, 32]})), tmp_path)
    with pytest.raises(CheckpointError, match=r"does not fit this ConvVAE.*(missing|wrong shape)"):
        load_weights(create_model(tiny_config()), tmp_path)


def test_unreadable_weights_are_a_clear_error(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="unreadable weights"):
        load_weights(create_model(tiny_config()), tmp_path)
