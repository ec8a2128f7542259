"""Fixtures for every test: an isolated dataset cache."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own dataset cache, never the user's."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("VAEKIT_CACHE", str(cache))
    return cache
