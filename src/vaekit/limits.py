"""What one request may allocate: a count of images is refused with one line, naming the option and
the limit, before any of them is made, when the images would not fit the request budget."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from vaekit.schema import ConfigError

BUDGET_VARIABLE = "VAEKIT_MAX_REQUEST_BYTES"
DEFAULT_BUDGET = 4 << 30  # 4 GiB of float32 images in one request
CHUNK_VALUES = 1 << 22  # image values made at once by chunked work (samples for FID, IWAE decodes): 16 MB
MAX_STRENGTH = 100.0  # an attribute edit's strength, in the CLI, the API and the explorer alike


_UNITS = {"": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30,
          "t": 1 << 40, "tib": 1 << 40}  # fmt: skip


def request_budget() -> int | None:
    """Bytes one request may hold: ``$VAEKIT_MAX_REQUEST_BYTES`` (a whole number of bytes, or with a
    unit: ``8GiB``, ``512MiB``), or None when it is not set; a value that is not one is one line."""
    text = os.environ.get(BUDGET_VARIABLE, "").strip()
    if not text:
        return None
    number = text.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    unit = text[len(number) :].strip().lower()
    if not number.strip().isdigit() or unit not in _UNITS or int(number) < 1:
        raise ConfigError(
            f"${BUDGET_VARIABLE}: {text[:40]!r} is not a size in bytes (a whole number, optionally with KiB, MiB,"
            " GiB or TiB, e.g. 8GiB)"
        )
    return int(number) * _UNITS[unit]


def budget_or_default() -> int:
    """The request budget: ``$VAEKIT_MAX_REQUEST_BYTES``, else 4 GiB."""
    return request_budget() or DEFAULT_BUDGET


def require_within_budget(option: str, count: int, item_shape: Sequence[int], bytes_per_value: int = 4) -> None:
    """``count`` items of ``item_shape`` fit the request budget, or one ``ConfigError`` saying so."""
    per_item = math.prod(item_shape) * bytes_per_value
    budget = budget_or_default()
    if count < 1:
        raise ConfigError(f"{option}: must be at least 1, got {count}")
    if count * per_item > budget:
        raise ConfigError(
            f"{option}: {count:,} images of {'x'.join(map(str, item_shape))} need "
            f"{count * per_item / 2**30:,.1f} GiB; the limit is {budget // per_item:,} "
            f"({budget / 2**30:g} GiB, ${BUDGET_VARIABLE} raises it)"
        )


def images_per_chunk(item_shape: Sequence[int], at_most: int) -> int:
    """How many images of ``item_shape`` one chunk of work makes (``CHUNK_VALUES`` values, at least
    one, at most ``at_most``): memory is the same at 28 px and at 512 px; the decoder's activations
    are some 10-30x the images."""
    return max(1, min(at_most, CHUNK_VALUES // max(1, math.prod(item_shape))))


def require_strength(what: str, value: float) -> float:
    """An attribute edit's strength: a finite number within +-``MAX_STRENGTH``."""
    if not math.isfinite(value) or abs(value) > MAX_STRENGTH:
        raise ConfigError(f"{what}: a strength must be a number within +-{MAX_STRENGTH:g}, got {value}")
    return value
