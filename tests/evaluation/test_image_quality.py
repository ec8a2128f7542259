import math

import pytest
import torch

from vaekit.evaluation.image_quality import ms_ssim, psnr, ssim


def test_psnr_of_a_known_error():
    x = torch.full((2, 3, 8, 8), 0.5)
    assert psnr(x, x + 0.1).tolist() == pytest.approx([20.0, 20.0], rel=1e-5)
    assert psnr(x, x).tolist() == [100.0, 100.0]  # capped, not infinite


def test_ssim_of_constant_images_matches_the_closed_form():
    a, b = 0.2, 0.6
    c1 = 0.01**2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)  # variances are zero: structure term is 1
    value = ssim(torch.full((1, 1, 16, 16), a), torch.full((1, 1, 16, 16), b))
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_ssim_is_one_for_identical_images_and_falls_with_noise():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 32, 32, generator=g)
    assert ssim(x, x).tolist() == pytest.approx([1.0] * 3, abs=1e-5)
    noisy = [ssim(x, (x + s * torch.randn(x.shape, generator=g)).clamp(0, 1)).mean().item() for s in (0.05, 0.2)]
    assert 1 > noisy[0] > noisy[1]


def test_ssim_of_a_hand_computed_pair():
    # 11x11 images: the single window covers each image exactly once
    x = torch.zeros(1, 1, 11, 11)
    y = torch.zeros(1, 1, 11, 11)
    x[..., ::2, :] = 1.0  # alternate rows
    coords = torch.arange(11.0) - 5
    g = torch.exp(-(coords**2) / (2 * 1.5**2))
    w = (g[:, None] * g[None, :]) / g.sum() ** 2
    mu_x = (w * x[0, 0]).sum()
    var_x = (w * x[0, 0] ** 2).sum() - mu_x**2
    c1, c2 = 0.01**2, 0.03**2
    expected = (c1 / (mu_x**2 + c1)) * (c2 / (var_x + c2))  # y is all zeros
    assert ssim(x, y).item() == pytest.approx(expected.item(), rel=1e-4)


def test_ms_ssim_needs_161_pixels():
    assert ms_ssim(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)) is None
    x = torch.rand(1, 3, 176, 176, generator=torch.Generator().manual_seed(0))
    assert ms_ssim(x, x).item() == pytest.approx(1.0, abs=1e-4)
    assert ms_ssim(x, (x + 0.2 * torch.rand_like(x)).clamp(0, 1)).item() < 0.99
    assert math.isfinite(ms_ssim(x, torch.zeros_like(x)).item())


def test_ms_ssim_weights_each_scale_by_its_published_exponent():
    from vaekit.evaluation.image_quality import _kernel, _ssim_terms

    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 176, 176, generator=g)
    y = (x + 0.3 * torch.randn(2, 1, 176, 176, generator=g)).clamp(0, 1)
    a, b, terms = x.double(), y.double(), []
    window = _kernel(11, 1.5, a.device, a.dtype)
    for scale in range(5):
        full, cs = _ssim_terms(a, b, window)
        terms.append(full if scale == 4 else cs)
        a, b = torch.nn.functional.avg_pool2d(a, 2), torch.nn.functional.avg_pool2d(b, 2)
    published = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # finest scale first (Wang et al. 2003)
    expected = torch.stack([t.clamp_min(0) ** w for t, w in zip(terms, published, strict=True)], 1).prod(1)
    assert len({round(t[0].item(), 3) for t in terms}) == 5  # the scales really differ
    torch.testing.assert_close(ms_ssim(x, y), expected.float())


def test_ms_ssim_takes_the_full_ssim_at_the_coarsest_scale_where_brightness_differs():
    """y is x dimmed and lifted: the luminance term is far from 1, so a contrast-only last scale shows."""
    from vaekit.evaluation.image_quality import _kernel, _ssim_terms

    x = torch.rand(1, 1, 176, 176, generator=torch.Generator().manual_seed(1))
    a, b, terms = x.double(), (0.3 * x + 0.7).double(), []
    window = _kernel(11, 1.5, a.device, a.dtype)
    for scale in range(5):
        full, contrast = _ssim_terms(a, b, window)
        terms.append(full if scale == 4 else contrast)
        a, b = torch.nn.functional.avg_pool2d(a, 2), torch.nn.functional.avg_pool2d(b, 2)
    assert full.item() < 0.97 * contrast.item()  # at the last scale the two candidates really differ
    weights = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
    expected = torch.stack([t.clamp_min(0) ** w for t, w in zip(terms, weights, strict=True)], 1).prod(1)
    torch.testing.assert_close(ms_ssim(x, 0.3 * x + 0.7), expected.float())


def test_ssim_of_images_smaller_than_the_window_uses_a_window_of_their_size():
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ssim(x, x), torch.ones(3))
    assert (ssim(x, (x + 0.2).clamp(0, 1)) < 1).all()


def test_float32_ssim_with_a_separable_window_matches_the_float64_full_window_definition():
    def reference(x, y, size=11, sigma=1.5):  # Wang et al. 2004 as written: a full 2-D window, float64
        x, y = x.double(), y.double()
        g = torch.exp(-((torch.arange(size, dtype=torch.float64) - (size - 1) / 2) ** 2) / (2 * sigma**2))
        window = (g / g.sum())[:, None] * (g / g.sum())[None, :]
        window = window.expand(x.shape[1], 1, size, size)
        blur = lambda t: torch.nn.functional.conv2d(t, window, groups=x.shape[1])  # noqa: E731
        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
        c1, c2 = 0.01**2, 0.03**2
        return (((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))).flatten(1).mean(1)

    generator = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 48, 48, generator=generator)
    for y in (
        x,
        (x + 0.1 * torch.randn(x.shape, generator=generator)).clamp(0, 1),
        torch.rand(x.shape, generator=generator),
    ):
        assert ssim(x, y).dtype == torch.float32
        torch.testing.assert_close(ssim(x, y).double(), reference(x, y), rtol=0, atol=1e-5)
