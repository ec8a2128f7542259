"""Activations of named submodules of any network, for perceptual losses from user networks
(e.g. a face-recognition model given as ``package.module:factory``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from vaekit.features.weights import read_state_dict


class NamedLayerFeatures(nn.Module):
    """``forward(x, layers)`` runs the network and returns the named submodules' outputs."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
        modules = dict(self.network.named_modules())
        unknown = [name for name in layers if name not in modules]
        if unknown:
            available = ", ".join(name for name in list(modules)[1:12])
            raise ValueError(f"the feature network has no layer(s) {unknown}; its layers include: {available}, ...")
        outputs: dict[str, torch.Tensor] = {}
        hooks = [
            modules[name].register_forward_hook(lambda _m, _i, out, name=name: outputs.__setitem__(name, out))
            for name in layers
        ]
        try:
            self.network(x)
        finally:
            for hook in hooks:
                hook.remove()
        return outputs


def user_network(
    spec: str, factory: Callable[[], nn.Module], weights: str | Path | None, random_weights: bool = False
) -> NamedLayerFeatures:
    """The network ``factory()`` builds (``spec`` names it in messages), with ``weights``
    (safetensors or a ``.pth`` state dict, read without unpickling arbitrary objects) loaded strictly."""
    network = factory()
    if weights is not None:
        network.load_state_dict(read_state_dict(Path(weights)))
    elif not random_weights:
        raise ValueError(f"perceptual.network {spec!r} needs perceptual.weights (a weights file for it)")
    return NamedLayerFeatures(network)
