"""How a tokenizer uses its codes over a held-out set: usage, perplexity, tokens per image."""

from __future__ import annotations

import numpy as np
import torch

from vaekit.data.loader import BatchLoader
from vaekit.models.base import VAE
from vaekit.models.quantizers import perplexity


@torch.no_grad()
def codebook_usage(model: VAE, images: np.ndarray, batch_size: int = 128) -> dict:
    """Over every token of ``images``: the share of codes used at least once, the perplexity of the
    code histogram (the number of equally used codes it is worth), and the codebook's size.
    Residual quantizers count each stage's codes apart (``codes`` is stages x codebook size)."""
    device = next(model.parameters()).device
    bottleneck = model.bottleneck
    size, depth = bottleneck.codebook_size, bottleneck.depth
    counts = torch.zeros(size * depth, dtype=torch.int64)
    with model.evaluating():
        for batch in BatchLoader(images, batch_size, shuffle=False, drop_last=False, device=device):
            tokens = model.tokenize(batch).cpu()
            if depth > 1:
                tokens = tokens + torch.arange(depth) * size
            counts += torch.bincount(tokens.flatten(), minlength=size * depth)
    used = int((counts > 0).sum())
    return {
        "code_usage": used / counts.numel(),
        "codes_used": used,
        "codes": int(counts.numel()),
        "perplexity": float(perplexity(counts)),
        "tokens_per_image": int(np.prod(bottleneck.token_grid)),
        "bits_per_token": float(np.log2(size) * depth),
    }
