"""What training a model will hold in memory, estimated before anything is allocated.

The model is built on PyTorch's meta device (shapes, no storage: instant at any size) and a batch
runs through it there, counting the output of each layer with weights: the parameters cost 16 bytes each in training
(weights, gradients, Adam's two moments), the activations 4 bytes per value (float32, kept for the
backward pass). ``require_trainable`` holds that against the machine (its memory, or the GPU's) or
``$VAEKIT_MAX_REQUEST_BYTES`` when set, and refuses in one line naming the options that set it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from vaekit.config import Config, ConfigError
from vaekit.limits import BUDGET_VARIABLE, request_budget

BYTES_PER_PARAMETER = 16  # float32 weight, gradient, Adam's first and second moments
BYTES_PER_ACTIVATION = 4


@dataclass(frozen=True)
class TrainingMemory:
    parameters: int
    activations: int | None  # values kept per batch (None: the model does not run on the meta device)
    batch: int

    @property
    def parameter_bytes(self) -> int:
        return self.parameters * BYTES_PER_PARAMETER

    @property
    def activation_bytes(self) -> int:
        return (self.activations or 0) * BYTES_PER_ACTIVATION

    @property
    def total(self) -> int:
        return self.parameter_bytes + self.activation_bytes


def estimate(config: Config, activations: bool = True, trust_code: bool = False) -> TrainingMemory | None:
    """The training memory of ``config``'s model at its batch (per process and micro-batch; without
    ``activations``, its parameters only), or None for networks vaekit cannot build without the
    user's code (plug-ins, your own modules)."""
    from vaekit.models import ARCHITECTURES, create_model
    from vaekit.models.modules import data_shape

    arch = config.model.arch
    if arch not in ARCHITECTURES or ARCHITECTURES.get(arch).has("user-networks"):
        return None
    batch = max(1, config.train.batch_size // config.train.accumulate)
    with torch.device("meta"):
        model = create_model(config, trust_code=trust_code)
    parameters = sum(p.numel() for p in model.parameters())
    if not activations:
        return TrainingMemory(parameters, None, batch)
    values: list[int] = []

    def count(_module, _inputs, output) -> None:
        tensors = output if isinstance(output, tuple | list) else (output,)
        values.extend(t.numel() for t in tensors if isinstance(t, torch.Tensor))

    # what backward keeps is, to a first approximation, the input of each layer with weights: the
    # output of the layer before it (activations and norms fuse or are recomputed cheaply)
    leaves = [m for m in model.modules() if not list(m.children()) and any(True for _ in m.parameters(recurse=False))]
    hooks = [leaf.register_forward_hook(count) for leaf in leaves]
    try:
        with torch.device("meta"):
            model(model.likelihood.prepare(torch.empty((batch, *data_shape(config)), device="meta")))
        counted: int | None = sum(values)
    except Exception:  # a layer without a meta kernel (e.g. a quantizer's lookup): parameters only
        counted = None
    finally:
        for hook in hooks:
            hook.remove()
    return TrainingMemory(parameters, counted, batch)


def machine_memory() -> int:
    """Bytes of memory training can use here: the GPU's when there is one, else the machine's."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_properties(0).total_memory
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 40  # unknown: only the explicit budget limits


def require_trainable(config: Config, trust_code: bool = False) -> TrainingMemory | None:
    """``config``'s model trains within the memory budget, or one ``ConfigError`` naming what sets it."""
    budget = request_budget()
    where = f"${BUDGET_VARIABLE}" if budget else "this machine's memory"
    budget = budget or machine_memory()
    need = estimate(
        config, activations=False, trust_code=trust_code
    )  # the parameters alone first: no forward pass (about 1 s)
    if need is not None and need.total <= budget:
        need = estimate(config, trust_code=trust_code)
    if need is None or need.total <= budget:
        return need
    gib = 2**30
    if need.parameter_bytes >= need.activation_bytes:
        cause = (
            f"{need.parameters / 1e9:,.2f} G parameters ({need.parameter_bytes / gib:,.1f} GiB with gradients and "
            f"Adam's moments): shrink model.channels, model.latent_dim or model.{config.model.arch.replace('-', '_')}.*"
        )
    else:
        cause = (
            f"activations of {need.batch} images of {config.data.image_size} px "
            f"({need.activation_bytes / gib:,.1f} GiB): lower train.batch_size (or raise train.accumulate) "
            "or data.image_size"
        )
    raise ConfigError(
        f"the model needs about {need.total / gib:,.1f} GiB to train, more than the {budget / gib:,.1f} GiB of {where}:"
        f" {cause} (${BUDGET_VARIABLE} sets the limit)"
    )
