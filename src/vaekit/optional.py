"""Optional dependencies: import one, or say in one line which extra installs it."""

from __future__ import annotations

import importlib
from types import ModuleType

from vaekit.schema import ConfigError


class MissingExtra(ConfigError):
    """An optional package a feature needs is not installed."""


def require(module: str, extra: str, feature: str) -> ModuleType:
    """``importlib.import_module(module)`` or a ``MissingExtra`` naming ``pip install 'vaekit[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtra(
            f"{feature} needs the {module.split('.')[0]} package: pip install 'vaekit[{extra}]'"
        ) from err
