"""What one request may allocate: a count of images is refused with one line, naming the option and
the limit, before any of them is made, when the images would not fit the request budget."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from vaekit.schema import ConfigError

BUDGET_VARIABLE = "VAEKIT_MAX_REQUEST_BYTES"
DEFAULT_BUDGET = 4 << 30  # 4 GiB of float32 images in one request
MAX_STRENGTH = 100.0  # an attribute edit's strength, in the CLI, the API and the explorer alike


def request_budget() -> int:
    """Bytes one request may hold (``$VAEKIT_MAX_REQUEST_BYTES``, default 4 GiB)."""
    text = os.environ.get(BUDGET_VARIABLE, "")
    return int(text) if text.isdigit() and int(text) > 0 else DEFAULT_BUDGET


def require_within_budget(option: str, count: int, item_shape: Sequence[int], bytes_per_value: int = 4) -> None:
    """``count`` items of ``item_shape`` fit the request budget, or one ``ConfigError`` saying so."""
    per_item = math.prod(item_shape) * bytes_per_value
    budget = request_budget()
    if count < 1:
        raise ConfigError(f"{option}: must be at least 1, got {count}")
    if count * per_item > budget:
        raise ConfigError(
            f"{option}: {count:,} images of {'x'.join(map(str, item_shape))} need "
            f"{count * per_item / 2**30:,.1f} GiB; the limit is {budget // per_item:,} "
            f"({budget / 2**30:g} GiB, ${BUDGET_VARIABLE} raises it)"
        )


def require_strength(what: str, value: float) -> float:
    """An attribute edit's strength: a finite number within +-``MAX_STRENGTH``."""
    if not math.isfinite(value) or abs(value) > MAX_STRENGTH:
        raise ConfigError(f"{what}: a strength must be a number within +-{MAX_STRENGTH:g}, got {value}")
    return value
