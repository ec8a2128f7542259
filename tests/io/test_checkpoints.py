import pytest
import torch

from tests.helpers import tiny_config
from vaekit.io import checkpoints
from vaekit.io.checkpoints import CheckpointError, list_checkpoints, load_training_state, load_weights
from vaekit.models import create_model


def test_weights_round_trip_and_state_loads_with_weights_only(tmp_path):
    model = create_model(tiny_config())
    state = {"step": 3, "rng": torch.get_rng_state(), "optimizers": {"model": {"lr": 0.1}}}
    folder = checkpoints.save_checkpoint(tmp_path, 3, model, state, keep=2)
    other = create_model(tiny_config())
    load_weights(other, folder)
    for a, b in zip(model.state_dict().values(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert load_training_state(folder)["step"] == 3


def test_a_crash_while_writing_leaves_no_partial_checkpoint(tmp_path, monkeypatch):
    model = create_model(tiny_config())
    checkpoints.save_checkpoint(tmp_path, 1, model, {"step": 1}, keep=3)

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(checkpoints.torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        checkpoints.save_checkpoint(tmp_path, 2, model, {"step": 2}, keep=3)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000001"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000001"]


def test_weights_of_another_architecture_give_a_clear_error(tmp_path):
    checkpoints.save_weights(create_model(tiny_config(**{"model.channels": [8, 16, 32]})), tmp_path)
    with pytest.raises(CheckpointError, match=r"does not fit this ConvVAE.*(missing|wrong shape)"):
        load_weights(create_model(tiny_config()), tmp_path)


def test_unreadable_weights_are_a_clear_error(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="unreadable weights"):
        load_weights(create_model(tiny_config()), tmp_path)


KILL_DURING_WRITE = """
import os, sys, torch
from pathlib import Path
from tests.helpers import tiny_config
from vaekit.models import create_model
from vaekit.io import checkpoints
model = create_model(tiny_config())
checkpoints.save_checkpoint(Path(sys.argv[1]), 1, model, {"step": 1}, keep=3)
real_save = torch.save
def save_half_then_die(obj, path, *args, **kwargs):
    real_save(obj, path, *args, **kwargs)
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) // 2)
    os._exit(9)  # the process is killed mid-write: no exception handler, no cleanup
checkpoints.torch.save = save_half_then_die
checkpoints.save_checkpoint(Path(sys.argv[1]), 2, model, {"step": 2}, keep=3)
"""


def test_a_process_killed_mid_write_leaves_the_previous_checkpoint_as_the_newest(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", KILL_DURING_WRITE, str(tmp_path)], cwd=root, timeout=120)
    assert result.returncode == 9
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000001"]
    assert load_training_state(list_checkpoints(tmp_path)[-1])["step"] == 1
    checkpoints.remove_leftovers(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000001"]


def test_a_pickle_in_place_of_the_training_state_is_refused_without_running_it(tmp_path):
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'PWNED'}",))

    model = create_model(tiny_config())
    folder = checkpoints.save_checkpoint(tmp_path / "c", 1, model, {"step": 1}, keep=3)
    torch.save({"x": Evil()}, folder / "training.pt")
    with pytest.raises(CheckpointError, match="unreadable training state"):
        load_training_state(folder)
    (folder / "training.pt").write_bytes(os.urandom(2000))
    with pytest.raises(CheckpointError, match="unreadable training state"):
        load_training_state(folder)
    assert not (tmp_path / "PWNED").exists()


def test_checkpoints_are_readable_as_the_umask_says(tmp_path):
    import os
    import stat

    previous = os.umask(0o022)
    try:
        folder = checkpoints.save_checkpoint(tmp_path, 1, create_model(tiny_config()), {"step": 1}, keep=3)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert stat.S_IMODE((folder / "model.safetensors").stat().st_mode) == 0o644


def _three_checkpoints(tmp_path):
    model = create_model(tiny_config())
    for step in (1, 2, 3):
        checkpoints.save_checkpoint(tmp_path, step, model, {"step": step}, keep=3)
    return list_checkpoints(tmp_path)


def test_resuming_sets_unreadable_newer_checkpoints_aside_and_takes_the_newest_that_reads(tmp_path):
    first, second, third = _three_checkpoints(tmp_path)
    (third / checkpoints.STATE_FILE).write_bytes(b"damaged")
    tried = []

    def restore(folder):
        tried.append(folder.name)
        load_training_state(folder)

    with pytest.warns(UserWarning, match="set aside as unreadable-step-00000003"):
        restored = checkpoints.restore_newest_readable(tmp_path, restore, may_set_aside=True)
    assert restored == second and tried == [third.name, second.name]
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name, second.name, "unreadable-step-00000003"]


def test_a_process_that_does_not_own_the_run_never_renames_a_checkpoint(tmp_path):
    *_, third = _three_checkpoints(tmp_path)
    (third / checkpoints.STATE_FILE).write_bytes(b"damaged")
    with pytest.raises(CheckpointError):
        checkpoints.restore_newest_readable(tmp_path, load_training_state, may_set_aside=False)
    assert third.exists()


def test_when_no_checkpoint_reads_back_the_oldest_ones_error_is_raised(tmp_path):
    for folder in _three_checkpoints(tmp_path):
        (folder / checkpoints.STATE_FILE).write_bytes(b"damaged")
    with pytest.warns(UserWarning), pytest.raises(CheckpointError, match="step-00000001"):
        checkpoints.restore_newest_readable(tmp_path, load_training_state, may_set_aside=True)
    with pytest.raises(CheckpointError, match="no checkpoint to resume from"):
        checkpoints.restore_newest_readable(tmp_path / "empty", load_training_state, may_set_aside=True)


def test_the_finiteness_check_names_the_first_bad_tensor_anywhere_in_the_state():
    from vaekit.io.checkpoints import first_nonfinite

    good = {"weights": torch.ones(3), "steps": torch.arange(3), "lr": 0.1, "groups": [{"x": torch.zeros(2)}]}
    assert first_nonfinite(good) is None and first_nonfinite({"empty": torch.empty(0, 3)}) is None
    assert first_nonfinite({**good, "groups": [{"x": torch.tensor([0.0, float("inf")])}]}) == "groups.0.x"
    assert first_nonfinite({**good, "lr": float("nan")}) == "lr"
    assert first_nonfinite({"a": {"b": torch.tensor([float("nan")], dtype=torch.bfloat16)}}) == "a.b"


def test_nothing_is_written_when_a_buffer_or_the_state_is_not_finite(tmp_path):
    from vaekit.io.checkpoints import NonFinite

    model = create_model(tiny_config(**{"model.norm": "batch"}))
    with pytest.raises(NonFinite, match=r"training state\.optimizers\.exp_avg_sq"):
        checkpoints.save_checkpoint(
            tmp_path, 1, model, {"step": 1, "optimizers": {"exp_avg_sq": torch.tensor([float("inf")])}}, keep=3
        )
    name = next(n for n, _ in model.named_buffers() if n.endswith("running_var"))
    model.get_buffer(name).fill_(float("inf"))
    with pytest.raises(NonFinite, match=name):
        checkpoints.save_checkpoint(tmp_path, 2, model, {"step": 2}, keep=3)
    with pytest.raises(NonFinite, match=name):
        checkpoints.save_weights(model, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_every_non_finite_value_is_found_wherever_it_is_in_a_tensor(bad):
    values = torch.zeros(50)
    values[17] = bad
    assert checkpoints.first_nonfinite({"a": torch.zeros(3), "b": [values]}) == "b.0"
    assert checkpoints.first_nonfinite({"x": bad}) == "x"
