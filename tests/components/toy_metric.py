"""A toy metric: the mean brightness of reconstructions against the originals'."""

from __future__ import annotations

import torch

from vaekit.evaluation.report import METRICS


@METRICS.register("toy-brightness", summary="mean brightness of reconstructions and originals (a test's toy)")
def brightness(model, images, settings, wanted):
    batch = torch.from_numpy(images[:64]).float() / 255
    with model.evaluating():
        reconstructed = model.reconstruct(batch.to(next(model.parameters()).device)).cpu()
    return {"toy": {"original": float(batch.mean()), "reconstructed": float(reconstructed.mean())}}, {}
