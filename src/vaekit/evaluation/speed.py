"""Encode and decode throughput of a model, in images per second."""

from __future__ import annotations

import time

import torch

from vaekit.models.base import VAE


@torch.no_grad()
def throughput(model: VAE, batch_size: int = 64, repeats: int = 5, warmup: int = 2) -> dict[str, float]:
    """Images/s of ``encode`` and of ``decode`` on random inputs, after ``warmup`` untimed batches."""
    device = next(model.parameters()).device
    own = torch.Generator().manual_seed(0)  # timing inputs leave the global random streams alone
    images = torch.rand(batch_size, *model.image_shape, generator=own).to(device)
    latents = torch.randn(batch_size, *model.latent_shape, generator=own).to(device)
    result = {}
    with model.evaluating():
        for name, run in (("encode", lambda: model.encode(images).mean), ("decode", lambda: model.decode(latents))):
            for _ in range(warmup):
                run()
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            for _ in range(repeats):
                run()
            if device.type == "cuda":
                torch.cuda.synchronize()
            result[f"{name}_images_per_s"] = batch_size * repeats / (time.perf_counter() - started)
    return {**result, "batch_size": batch_size, "device": str(device), "threads": torch.get_num_threads()}
