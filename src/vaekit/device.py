"""Which torch device a name means; one this machine lacks is refused before any work."""

from __future__ import annotations

import torch

from vaekit.schema import ConfigError


def resolve_device(name: str | torch.device, key: str = "train.device") -> torch.device:
    """The torch device ``name`` names (``auto``: CUDA where there is one); a device this machine
    lacks is a ``ConfigError`` naming ``key``."""
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError(f"{key}: {name!r} is not a device (cpu, cuda, cuda:N, mps or auto)") from err
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise ConfigError(f"{key}: {name!r} is not available here (torch sees {torch.cuda.device_count()} GPU(s))")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{key}: 'mps' is not available here")
    return device
