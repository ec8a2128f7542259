"""Reconstruct an image of any size with a model trained on small ones: overlapping tiles of the
model's size, each encoded and decoded on its own, blended with linear ramps at the seams.
Memory is bounded by the tile (and the output image), not by the image's size."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vaekit.models.base import VAE


def _starts(size: int, tile: int, stride: int) -> list[int]:
    starts = list(range(0, max(size - tile, 0) + 1, stride))
    if starts[-1] + tile < size:
        starts.append(size - tile)
    return starts


def _ramp(tile: int, overlap: int) -> torch.Tensor:
    """Weights 1 in the middle, rising linearly over ``overlap`` pixels at each edge (never 0)."""
    edge = torch.arange(1, tile + 1, dtype=torch.float32).clamp(max=overlap + 1)
    edge = torch.minimum(edge, edge.flip(0)) / (overlap + 1)
    return edge[:, None] * edge[None, :]


@torch.no_grad()
def reconstruct_tiled(model: VAE, image: torch.Tensor, overlap: int | None = None, batch: int = 4) -> torch.Tensor:
    """The reconstruction of one ``(C, H, W)`` image in [0, 1] of any size >= 1 px."""
    channels, tile = model.image_shape[0], model.image_shape[-1]
    if image.shape[0] != channels:
        raise ValueError(f"the image has {image.shape[0]} channels, the model {channels}")
    overlap = tile // 4 if overlap is None else overlap
    height, width = image.shape[-2:]
    pad_h, pad_w = max(tile - height, 0), max(tile - width, 0)
    padded = F.pad(image[None], (0, pad_w, 0, pad_h), mode="replicate")[0] if pad_h or pad_w else image
    H, W = padded.shape[-2:]
    stride = max(tile - overlap, 1)
    boxes = [(y, x) for y in _starts(H, tile, stride) for x in _starts(W, tile, stride)]
    weight = _ramp(tile, overlap)
    out = torch.zeros(channels, H, W)
    total = torch.zeros(1, H, W)
    device = next(model.parameters()).device
    with model.evaluating():
        for i in range(0, len(boxes), batch):
            chunk = boxes[i : i + batch]
            tiles = torch.stack([padded[:, y : y + tile, x : x + tile] for y, x in chunk]).to(device)
            for (y, x), rec in zip(chunk, model.reconstruct(tiles).float().cpu(), strict=True):
                out[:, y : y + tile, x : x + tile] += rec * weight
                total[:, y : y + tile, x : x + tile] += weight
    return (out / total)[:, :height, :width]
