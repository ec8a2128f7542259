"""Reconstruction quality over a dataset: MSE, PSNR, SSIM, MS-SSIM (when the size allows), LPIPS."""

from __future__ import annotations

import numpy as np
import torch

from vaekit.data.loader import BatchLoader
from vaekit.evaluation.image_quality import ms_ssim, psnr, ssim
from vaekit.models.base import VAE


@torch.no_grad()
def reconstruction_metrics(
    model: VAE, images: np.ndarray, batch_size: int = 128, lpips: torch.nn.Module | None = None
) -> dict[str, float | None]:
    """Means over images of posterior-mean reconstructions against the originals (both in [0, 1])."""
    device = next(model.parameters()).device
    sums: dict[str, float] = {"mse": 0.0, "psnr": 0.0, "ssim": 0.0, "ms_ssim": 0.0, "lpips": 0.0}
    has_ms_ssim = True
    with model.evaluating():
        for batch in BatchLoader(images, batch_size, shuffle=False, drop_last=False, device=device):
            recon = model.reconstruct(batch).float()
            sums["mse"] += (recon - batch).square().flatten(1).mean(1).sum().item()
            sums["psnr"] += psnr(recon, batch).sum().item()
            sums["ssim"] += ssim(recon, batch).sum().item()
            multi = ms_ssim(recon, batch)
            has_ms_ssim = multi is not None
            sums["ms_ssim"] += multi.sum().item() if multi is not None else 0.0
            if lpips is not None:
                sums["lpips"] += lpips(recon, batch).sum().item()
    result: dict[str, float | None] = {name: total / len(images) for name, total in sums.items()}
    if not has_ms_ssim:
        result["ms_ssim"] = None
    if lpips is None:
        result["lpips"] = None
    return result
