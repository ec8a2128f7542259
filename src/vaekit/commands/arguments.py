"""The types of the command line's values: each refuses a bad one with the reason, before any work."""

from __future__ import annotations

import argparse

MAX_GRID_SCALE = 16  # --scale: each pixel of a grid drawn as at most 16 x 16


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text}")
    return value


def seed_number(text: str) -> int:
    value = int(text)
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"a seed is a whole number from 0 to 2**63 - 1, not {text}")
    return value


def port_number(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535, not {text}")
    return value


def days(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 36500:
        raise argparse.ArgumentTypeError(f"a number of days is 0..36500, not {text}")
    return value


def grid_scale(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_GRID_SCALE:
        raise argparse.ArgumentTypeError(f"a grid scale is 1..{MAX_GRID_SCALE}, not {text}")
    return value


def finite_float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
    return value
