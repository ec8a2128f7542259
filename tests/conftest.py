"""Fixtures for every test: an isolated dataset cache; the toy components of tests/components/ as a plug-in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vaekit.registry import PLUGINS_VARIABLE

# The toy components of tests/components/ come in as a user's plug-in package does (each module
# registers itself when vaekit discovers its components), in this process and in every vaekit
# process a test starts; nothing imports them by hand.
ROOT = Path(__file__).resolve().parents[1]
os.environ[PLUGINS_VARIABLE] = "tests.components"
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own dataset cache, never the user's."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("VAEKIT_CACHE", str(cache))
    return cache
