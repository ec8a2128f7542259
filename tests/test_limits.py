"""The request budget and the strength bound, at both ends of each bound."""

from __future__ import annotations

import pytest

from vaekit.config import ConfigError
from vaekit.limits import budget_or_default, images_per_chunk, require_strength, require_within_budget


def test_a_request_of_exactly_the_budget_is_allowed_and_one_value_more_is_refused(monkeypatch):
    monkeypatch.setenv("VAEKIT_MAX_REQUEST_BYTES", str(10 * 3 * 4 * 4 * 4))  # ten float32 images of 3x4x4
    require_within_budget("sample -n", 10, (3, 4, 4))
    with pytest.raises(ConfigError, match="the limit is 10"):
        require_within_budget("sample -n", 11, (3, 4, 4))
    with pytest.raises(ConfigError, match="at least 1"):
        require_within_budget("sample -n", 0, (3, 4, 4))


@pytest.mark.parametrize(("text", "expected"), [("1024", 1024), ("2KiB", 2048), ("3 MiB", 3 << 20), ("1g", 1 << 30)])
def test_the_budget_is_bytes_or_a_size_with_a_unit(monkeypatch, text, expected):
    monkeypatch.setenv("VAEKIT_MAX_REQUEST_BYTES", text)
    assert budget_or_default() == expected


@pytest.mark.parametrize("value", [100.0, -100.0, 0.0])
def test_a_strength_at_the_bound_on_either_side_is_allowed(value):
    assert require_strength("--attr", value) == value


@pytest.mark.parametrize("value", [100.001, -100.001, -1e9, float("nan"), float("-inf")])
def test_a_strength_past_the_bound_on_either_side_is_refused(value):
    with pytest.raises(ConfigError, match="within"):
        require_strength("--attr", value)


def test_a_chunk_holds_at_least_one_image_and_at_most_the_cap():
    assert images_per_chunk((3, 4096, 4096), at_most=256) == 1
    assert images_per_chunk((1, 2, 2), at_most=256) == 256
