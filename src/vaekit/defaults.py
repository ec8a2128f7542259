"""Settings chosen from the data when neither a preset nor a config file nor ``--set`` names them.

A run without a preset starts from ``Config()``; the keys the user did not give are chosen here, in
two stages (the image size before decoding, the rest once the images are in memory), and each
choice is said once with its reason. The resolved values go into ``config.yaml`` like any others,
so a run is reproducible without these heuristics.
"""

from __future__ import annotations

import functools
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vaekit.config import Config
from vaekit.data.dataset import ImageDataset

CHOSEN = (
    "data.image_size",
    "likelihood.name",
    "model.channels",
    "model.latent_dim",
    "model.kernel_size",
    "model.norm",
    "model.activation",
    "train.precision",
    "train.epochs",
    "train.grid_size",
)
MAX_IMAGE_SIZE = 64
TARGET_STEPS = (1500, 20000)  # bounds on the training budget in optimiser steps
NEAR_BINARY_SHARE = 0.85  # MNIST: 0.91 at 28 px, 0.89 resampled to 32 px
BF16_PAYS = 1.3  # bf16 autocast is chosen where its matrix products are at least this much faster


@dataclass
class Choices:
    """What was chosen and why, one line per setting."""

    lines: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)  # dotted key -> chosen value

    def set(self, key: str, value: Any, reason: str) -> None:
        self.values[key] = value
        self.lines.append(f"  {key} = {value}  ({reason})")

    def also(self, key: str, value: Any) -> None:
        """A setting that follows from a choice above (said by that choice's line)."""
        self.values[key] = value

    def applied(self, config: Config) -> Config:
        """A new config with every choice so far (the config given is left as it is)."""
        return config.with_overrides(dict(self.values))

    def block(self) -> str:
        return "no preset: vaekit chose from the data (set any of these to override)\n" + "\n".join(self.lines)


def typical_image_size(source: str, sample: int = 200, cache_dir: str | None = None) -> int | None:
    """The median short side of up to ``sample`` images of a folder, zip or CelebA folder (headers
    only), or of an IDX file's images (its header); ``cache_dir`` keeps the folder's listing."""
    from vaekit.data.cache import cache_root
    from vaekit.data.celeba import celeba_images
    from vaekit.data.idx import find_idx, idx_shape
    from vaekit.data.images import ImageFiles
    from vaekit.data.sources import parse_spec

    kind, path = parse_spec(source)
    if kind == "mnist":
        return 28
    if kind == "idx" and path is not None:
        images = find_idx(path, "train", "images-idx3")
        return min(idx_shape(images)[1:3]) if images is not None else None
    if kind not in ("images", "celeba") or path is None:
        return None
    files = ImageFiles.scan(celeba_images(path) if kind == "celeba" else path, cache_root(cache_dir))
    opener = files.opener()
    sides = []
    for member in files.members[:: max(1, len(files.members) // sample)][:sample]:
        try:
            with opener(member) as image:
                sides.append(min(image.size))
        except Exception:  # unreadable files are reported when the data is decoded
            continue
    return int(statistics.median(sides)) if sides else None


def choose_image_size(config: Config, free: set[str], choices: Choices) -> Config:
    """Stage 1, before decoding: the image size from the data's typical size: kept when it is at most
    ``MAX_IMAGE_SIZE`` and a multiple of 4, else the power of two at or below it, capped."""
    if "data.image_size" not in free:
        return config
    side = typical_image_size(config.data.source, cache_dir=config.data.cache_dir)
    if side is None:
        return config
    if 8 <= side <= MAX_IMAGE_SIZE and side % 4 == 0:
        size = side  # as the images are (MNIST stays 28 px): two stride-2 layers divide it evenly
    else:
        size = min(MAX_IMAGE_SIZE, max(8, 2 ** int(math.log2(side)))) if side >= 8 else 8
    reason = f"typical image {side} px" + (f", capped at {MAX_IMAGE_SIZE}" if side > MAX_IMAGE_SIZE else "")
    choices.set("data.image_size", size, reason)
    return choices.applied(config)


def is_near_binary(images: np.ndarray, sample: int = 2000) -> bool:
    """Gray images whose pixels are almost all near black or white (digits, line art)."""
    if images.shape[1] != 1:
        return False
    picked = np.asarray(images[: min(len(images), sample)], dtype=np.float32) / 255.0
    return float(((picked < 0.1) | (picked > 0.9)).mean()) > NEAR_BINARY_SHARE


@functools.cache
def bf16_speedup(device: str) -> float:
    """How many times faster a bf16 matrix product runs than fp32 on ``device`` (measured once).

    CUDA with bf16 support counts as 2x without measuring. On a CPU, bf16 pays only where there are
    matrix units for it: with AMX several times, while AVX512-BF16 alone can be slower than fp32
    (measured 0.5x on a Xeon VM that hides AMX), so the CPU is timed on a 1024^3 product (~0.1 s).
    """
    import torch

    if device in ("auto", "cuda") and torch.cuda.is_available():
        return 2.0 if torch.cuda.is_bf16_supported() else 0.0
    cpu = getattr(torch, "cpu", None)
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    if not any(bool(getattr(cpu, probe, lambda: False)()) for probe in probes):
        return 0.0
    return matmul_seconds(torch.float32) / matmul_seconds(torch.bfloat16)


def matmul_seconds(dtype, size: int = 1024, repeats: int = 3) -> float:
    """Seconds of the fastest of ``repeats`` ``size``-square matrix products in ``dtype`` (after a
    warm-up), on operands from a private generator: timing leaves every random stream as it was."""
    import torch

    own = torch.Generator().manual_seed(0)  # never the global generator: a choice must not move the run's seed
    a, b = (torch.randn(size, size, generator=own).to(dtype) for _ in range(2))
    a @ b  # warm-up: oneDNN builds its kernel
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return best


def choose_from_data(config: Config, data: ImageDataset, free: set[str], choices: Choices) -> Config:
    """Stage 2, with the images in memory: likelihood, network, latent size, precision, budget."""
    channels, size = data.image_shape[0], data.image_shape[-1]
    binary = is_near_binary(data.images)
    if "likelihood.name" in free:
        if binary:
            choices.set("likelihood.name", "bernoulli", "gray and near-binary pixels")
            choices.also("likelihood.binarize", "dynamic")
        else:
            choices.set("likelihood.name", "laplace", "natural images: L1 with a learned scale")
            choices.also("likelihood.learn_scale", True)
            choices.also("likelihood.scale", 0.1)
    if "model.channels" in free:
        depth = max(1, round(math.log2(max(size, 8) / 4)))  # stride-2 layers down to about 4x4 (28 px: 3)
        widths = [min(32 * 2**i, 256) for i in range(depth)]
        choices.set("model.channels", widths, f"{depth} stride-2 layers for {size} px")
    if not binary:  # the anime-l1 recipe's layers: faster early than plain 3x3 ReLU ones (BENCHMARKS.md)
        for key, value in (("model.kernel_size", 4), ("model.norm", "batch"), ("model.activation", "leaky_relu")):
            if key in free:
                choices.set(key, value, "natural images: 4x4 kernels, batch norm, leaky ReLU")
    if "model.latent_dim" in free:
        latent = 16 if channels == 1 and size <= 32 else (64 if size <= 32 else 128)
        choices.set("model.latent_dim", latent, f"{channels}-channel {size} px images")
    if "train.precision" in free:
        speedup = bf16_speedup(config.train.device)
        if speedup >= BF16_PAYS:
            choices.set("train.precision", "bf16", f"bf16 matrix products {speedup:.1f}x fp32 here")
        else:
            why = f"{speedup:.1f}x fp32 here" if speedup else "no bf16 units here"
            choices.set("train.precision", "fp32", f"bf16 matrix products {why}")
    if "train.epochs" in free:
        n = max(1, len(data.split("train", config.data.val_fraction, config.data.seed)))  # the source's own split
        per_epoch = max(1, n // config.train.batch_size)
        epochs = math.ceil(min(max(30 * per_epoch, TARGET_STEPS[0]), TARGET_STEPS[1]) / per_epoch)
        choices.set("train.epochs", epochs, f"{n} training images: about {epochs * per_epoch} steps")
    if "train.grid_size" in free and size > 64:  # a grid stays about 1,000 px wide, and quick to draw
        side = max(2, 1024 // size)
        choices.set("train.grid_size", side * side, f"{size} px images: a {side}x{side} grid")
    return choices.applied(config)


def free_keys(explicit: set[str]) -> set[str]:
    """The chosen keys the user did not set."""
    return {key for key in CHOSEN if key not in explicit}


def explicit_keys(overrides: list[str] | tuple[str, ...], source_given: bool) -> set[str]:
    """Keys named by ``--set KEY=VALUE`` (``data.source`` too when ``--data`` was given)."""
    keys = {item.split("=", 1)[0].strip() for item in overrides if "=" in item}
    for key in list(keys):  # a whole section set at once counts for its keys
        keys.update(chosen for chosen in CHOSEN if chosen.startswith(key + "."))
    return keys | ({"data.source"} if source_given else set())


__all__ = ["Choices", "choose_from_data", "choose_image_size", "explicit_keys", "free_keys"]
