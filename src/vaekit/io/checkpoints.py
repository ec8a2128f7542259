"""Weights as safetensors, training state for ``torch.load(weights_only=True)``, atomic writes.

A checkpoint is a folder ``checkpoints/step-XXXXXXXX/`` with ``model.safetensors`` and
``training.pt`` (optimisers, scaler, random states, position). It is written under a temporary
name and renamed into place, so a crash mid-write never leaves a half checkpoint behind.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from vaekit.io.files import settle

MODEL_FILE = "model.safetensors"
STATE_FILE = "training.pt"
_PREFIX = "step-"


class CheckpointError(RuntimeError):
    """Weights or training state cannot be read or do not fit the model."""


class NonFinite(CheckpointError):
    """A tensor about to be saved holds NaN or inf; nothing was written. ``name`` says which."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} holds NaN or inf; nothing was saved")
        self.name = name


def first_nonfinite(tree: Any, name: str = "") -> str | None:
    """The dotted name of the first floating-point tensor (or float) in a nest of dicts, lists and
    tuples that holds NaN or inf; None when every one is finite."""
    if isinstance(tree, torch.Tensor):
        if not (tree.is_floating_point() or tree.is_complex()) or not tree.numel():
            return None
        # NaN and +-inf show in the minimum or maximum: a reduction ~10x faster than isfinite().all()
        extremes = torch.stack(torch.aminmax(tree.detach())) if tree.is_floating_point() else tree
        return None if bool(torch.isfinite(extremes).all()) else name or "tensor"
    if isinstance(tree, float):
        return None if math.isfinite(tree) else name or "value"
    if isinstance(tree, Mapping):
        items = tree.items()
    elif isinstance(tree, list | tuple):
        items = enumerate(tree)
    else:
        return None
    for key, value in items:
        found = first_nonfinite(value, f"{name}.{key}" if name else str(key))
        if found:
            return found
    return None


def require_finite(tree: Any, name: str = "") -> None:
    """The one check before anything is saved: ``NonFinite`` naming the first non-finite tensor."""
    found = first_nonfinite(tree, name)
    if found:
        raise NonFinite(found)


def save_weights(model: nn.Module, folder: Path) -> Path:
    """``folder/model.safetensors`` with every parameter and buffer of ``model``; refused
    (``NonFinite``, nothing written) when any of them holds NaN or inf."""
    state = {name: tensor.detach().contiguous().cpu() for name, tensor in model.state_dict().items()}
    require_finite(state)
    path = folder / MODEL_FILE
    save_file(state, str(path))
    return path


def load_weights(model: nn.Module, folder: Path) -> None:
    """Load ``folder/model.safetensors`` into ``model``, with a clear error when it does not fit."""
    path = folder / MODEL_FILE
    require_fit(model, path)
    try:
        state = load_file(str(path), device=str(next(model.parameters()).device))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: unreadable weights ({err})") from err
    model.load_state_dict(state)


def read_safetensors_files(folder: Path, pattern: str, what: str) -> dict[str, torch.Tensor]:
    """Every tensor of the safetensors files ``folder/pattern`` (sharded weights are several files);
    nothing is unpickled. ``what`` names the setting or command in the one-line errors."""
    files = sorted(Path(folder).glob(pattern))
    if not files:
        raise CheckpointError(f"{what}: no {pattern} in {folder} (only safetensors weights are read)")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        try:
            state.update(load_file(str(file)))
        except (SafetensorError, OSError) as err:
            raise CheckpointError(f"{file}: unreadable weights ({err})") from None
    return state


def weight_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The name and shape of every tensor of a safetensors file, read from its header alone."""
    if not path.is_file():
        raise CheckpointError(f"no {path.name} in {path.parent}")
    try:
        with safe_open(str(path), framework="pt") as weights:
            return {name: tuple(weights.get_slice(name).get_shape()) for name in weights.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: unreadable weights ({err})") from err


def require_fit(model: nn.Module, path: Path) -> None:
    """``CheckpointError`` naming what differs unless the file holds exactly ``model``'s tensors. Cheap
    for a model on the meta device: a config can be held against its weights before any allocation."""
    found = weight_shapes(path)
    own = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    missing = sorted(set(own) - set(found))
    unexpected = sorted(set(found) - set(own))
    mismatched = [f"{k} {found[k]} vs {own[k]}" for k in own if k in found and found[k] != own[k]]
    if missing or unexpected or mismatched:
        details = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched)):
            if items:
                details.append(f"{label}: {', '.join(items[:4])}" + (" ..." if len(items) > 4 else ""))
        raise CheckpointError(
            f"{path} does not fit this {type(model).__name__} (was it saved by another architecture or config?); "
            + "; ".join(details)
        )


def save_checkpoint(folder: Path, step: int, model: nn.Module, state: dict, keep: int) -> Path:
    """Atomically write checkpoint ``step`` under ``folder`` and keep only the newest ``keep``.
    Every tensor (weights, buffers, optimiser and EMA state, pending metrics) must be finite:
    otherwise ``NonFinite`` and nothing is written, so every checkpoint on disk is a good one."""
    require_finite(state, "training state")
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{_PREFIX}{step:08d}"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder))
    try:
        save_weights(model, tmp)
        try:
            torch.save(state, tmp / STATE_FILE)
        except RuntimeError as err:  # torch reports a full disk as "unexpected pos ..."
            raise OSError(f"cannot write {final}: {err} (is the disk full?)") from err
        settle(tmp)  # on disk, and readable by a team's group like other files
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in list_checkpoints(folder)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def remove_leftovers(folder: Path) -> None:
    """Temporary folders of interrupted writes and empty ``step-*`` folders of interrupted pruning."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        incomplete = path.name.startswith(_PREFIX) and not (path / STATE_FILE).is_file()
        if path.is_dir() and (path.name.startswith(".tmp-") or incomplete):
            shutil.rmtree(path, ignore_errors=True)


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints under ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    found = [
        p
        for p in folder.iterdir()
        if p.name.startswith(_PREFIX) and p.name[len(_PREFIX) :].isdigit() and (p / STATE_FILE).is_file()
    ]
    return sorted(found, key=lambda p: int(p.name[len(_PREFIX) :]))


def load_training_state(checkpoint: Path) -> dict:
    """The training state of a checkpoint folder (no arbitrary unpickling)."""
    try:
        state = torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=True)
    except Exception as err:  # damaged, truncated, or a pickle that is not plain data: never unpickled
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{checkpoint / STATE_FILE}: unreadable training state (not a vaekit checkpoint, or damaged: {first[:200]})"
        ) from None
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(f"{checkpoint / STATE_FILE}: not a vaekit training state")
    return state


def restore_newest_readable(folder: Path, restore: Callable[[Path], None], *, may_set_aside: bool) -> Path:
    """``restore`` the newest checkpoint in ``folder`` that reads back and return it. A newer one that
    does not (``CheckpointError``) is renamed ``unreadable-...`` with a warning, when ``may_set_aside``
    (the process that owns the run), so that the run continues from the one before it."""
    checkpoints = list_checkpoints(folder)
    if not checkpoints:
        raise CheckpointError(f"{folder.parent}: no checkpoint to resume from")
    for checkpoint in reversed(checkpoints[1:]):
        try:
            restore(checkpoint)
            return checkpoint
        except CheckpointError as err:
            if not may_set_aside:
                raise
            aside = checkpoint.with_name(f"unreadable-{checkpoint.name}")
            checkpoint.rename(aside)
            warnings.warn(f"{err}; set aside as {aside.name}, resuming from the checkpoint before it", stacklevel=3)
    restore(checkpoints[0])
    return checkpoints[0]
