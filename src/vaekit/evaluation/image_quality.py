"""Full-reference image quality of batches in [0, 1]: PSNR, SSIM and MS-SSIM (per image).

SSIM follows Wang et al. (2004) as most libraries compute it: an 11x11 Gaussian window with
sigma 1.5, no padding, K1 = 0.01, K2 = 0.03, averaged over channels. MS-SSIM uses 5 scales with
the published weights and needs images of at least 161 px (``None`` below that).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB (capped at 100 dB for identical images)."""
    mse = (x.float() - y.float()).square().flatten(1).mean(1)
    return (-10 * torch.log10(mse.clamp_min(1e-10))).clamp(max=100.0)


def _kernel(size: int, sigma: float, device, dtype) -> torch.Tensor:
    """The 1-D Gaussian of the window (the 2-D window is its outer product: blurred in two passes)."""
    coords = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def _ssim_terms(x: torch.Tensor, y: torch.Tensor, kernel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image mean SSIM and mean contrast-structure term. Second moments are taken of each image's
    values less its own mean (variances and covariances do not change), which keeps float32's
    cancellation in E[x^2] - E[x]^2 small: exact for flat images, 1e-5 for others."""
    c1, c2 = 0.01**2, 0.03**2
    channels, size = x.shape[1], len(kernel)
    rows = kernel.view(1, 1, size, 1).expand(channels, 1, size, 1)
    cols = kernel.view(1, 1, 1, size).expand(channels, 1, 1, size)

    def blur(t):
        return F.conv2d(F.conv2d(t, rows, groups=channels), cols, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    centre_x, centre_y = x.mean((-2, -1), keepdim=True), y.mean((-2, -1), keepdim=True)
    xs, ys = x - centre_x, y - centre_y
    mx, my = mu_x - centre_x, mu_y - centre_y
    var_x = blur(xs * xs) - mx.square()
    var_y = blur(ys * ys) - my.square()
    cov = blur(xs * ys) - mx * my
    contrast_structure = (2 * cov + c2) / (var_x + var_y + c2)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x.square() + mu_y.square() + c1)
    return (luminance * contrast_structure).flatten(1).mean(1), contrast_structure.flatten(1).mean(1)


def ssim(x: torch.Tensor, y: torch.Tensor, window_size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM in float32 with a separable window (within 1e-5 of float64); images smaller
    than the window use a window of their size."""
    x, y = x.float(), y.float()
    size = min(window_size, x.shape[-1], x.shape[-2])
    return _ssim_terms(x, y, _kernel(size, sigma, x.device, x.dtype))[0]


def ms_ssim(x: torch.Tensor, y: torch.Tensor, window_size: int = 11, sigma: float = 1.5) -> torch.Tensor | None:
    """Per-image MS-SSIM (5 scales), or ``None`` if the images are too small for 5 scales."""
    scales = len(MS_SSIM_WEIGHTS)
    if min(x.shape[-2:]) < (window_size - 1) * 2 ** (scales - 1) + 1:
        return None
    x, y = x.float(), y.float()
    kernel = _kernel(window_size, sigma, x.device, x.dtype)
    weights = torch.tensor(MS_SSIM_WEIGHTS, device=x.device, dtype=torch.float64)
    terms = []
    for scale in range(scales):
        full, cs = _ssim_terms(x, y, kernel)
        terms.append(full.clamp_min(0) if scale == scales - 1 else cs.clamp_min(0))
        if scale < scales - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return torch.stack(terms, 1).double().pow(weights).prod(1).float()
