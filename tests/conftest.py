"""Fixtures for every test: an isolated dataset cache; the toy components of tests/components/."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

import tests.components

for _module in pkgutil.iter_modules(tests.components.__path__):  # each registers itself on import
    importlib.import_module(f"tests.components.{_module.name}")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own dataset cache, never the user's."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("VAEKIT_CACHE", str(cache))
    return cache
