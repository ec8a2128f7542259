"""Code named in a config (``package.module:Name``) is imported only when the user allows it.

A run folder, a config file or a preset is data; it must never make vaekit import or run code by
itself. Architectures, objectives, perceptual networks and the networks of ``VAE.from_modules``
models can all be named as ``package.module:Name``; those names are imported only with
``trust_code=True`` (API) / ``--trust-code`` (CLI) for the call, or ``vaekit.allow_code()`` for the
whole process.
"""

from __future__ import annotations

import importlib
from typing import Any

from vaekit.schema import ConfigError

_ALLOWED = False


class UntrustedCode(ConfigError):
    """A config names code to import and the user has not allowed it."""


def allow_code(enabled: bool = True) -> None:
    """Allow (or forbid again) importing code named in configs, for the rest of this process."""
    global _ALLOWED
    _ALLOWED = bool(enabled)


def code_allowed(trust_code: bool = False) -> bool:
    return trust_code or _ALLOWED


def is_code_reference(name: str) -> bool:
    """Whether a config value names code (``package.module:Name``) rather than a built-in."""
    return ":" in name


def class_path(obj: type) -> str:
    """``package.module:QualName`` of a class, as configs record it."""
    return f"{obj.__module__}:{obj.__qualname__}"


def import_object(spec: str, key: str, trust_code: bool = False) -> Any:
    """The object ``package.module:Name`` names, imported only if code is allowed.

    ``key`` is the config entry that named it, for the messages.
    """
    if not code_allowed(trust_code):
        raise UntrustedCode(
            f"{key}: {spec!r} names Python code; vaekit imports code named in a config only when you allow it "
            "(--trust-code on the command line, trust_code=True in Python)"
        )
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise ConfigError(f"{key}: {spec!r} is not of the form package.module:Name")
    if module_name == "__main__":
        raise ConfigError(
            f"{key}: {spec!r} was defined in a script or notebook (__main__) and cannot be imported again; "
            "move it into a module, or pass the object itself"
        )
    try:
        obj: Any = importlib.import_module(module_name)
        for part in name.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"{key}: cannot import {name} from {module_name} ({err})") from err
    return obj
