"""A run's training state beyond its weights: what a checkpoint holds (optimisers and the objective's
own state, EMA shadows, the loss scaler, the recovery counts, random generators, the steps not yet
logged) and how a run takes it back, so that a resumed run continues bit for bit."""

from __future__ import annotations

from typing import Any

import torch


def training_state(
    step: int, pending: list, elapsed: float, objective: Any, ema: Any, precision: Any, recovery: Any
) -> dict[str, Any]:
    """The state a checkpoint saves beside the weights, on the CPU."""
    return {
        "step": step,
        "pending": [(s, {k: v.detach().float().cpu() for k, v in scalars.items()}) for s, scalars in pending],
        "elapsed_s": elapsed,
        "optimizers": objective.state_dict(),
        "ema": ema.state_dict() if ema is not None else {},
        "scaler": precision.state_dict(),
        "recovery": recovery.state_dict(),
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def apply_training_state(
    state: dict[str, Any], objective: Any, ema: Any, precision: Any, recovery: Any
) -> tuple[int, float, list]:
    """Put ``state`` back into the objective, EMA, scaler, recovery and the random generators;
    returns (step, elapsed seconds, the steps not yet logged)."""
    objective.load_state_dict(state["optimizers"])
    if ema is not None and state.get("ema"):
        ema.load_state_dict(state["ema"])
    precision.load_state_dict(state["scaler"])
    torch.set_rng_state(state["rng_cpu"])
    if state["rng_cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng_cuda"])
    recovery.load_state_dict(state.get("recovery", {}))
    pending = [(int(step), dict(scalars)) for step, scalars in state.get("pending", [])]
    return int(state["step"]), float(state["elapsed_s"]), pending
