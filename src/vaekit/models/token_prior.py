"""An ex-post autoregressive prior over a tokenizer's token grids (``--sampler autoregressive``).

A small decoder-only transformer (causal self-attention, learned positions, a start token) is fitted
on the token grids of the training images, read in raster order (a residual quantizer's stages one
after another within each position), as the second stage of VQ-VAE / VQGAN. It is stored beside the
model's weights as safetensors (``sampler-autoregressive.safetensors``, its sizes in the metadata),
and draws token grids that the tokenizer's codebook turns into latents.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save
from torch import nn

from vaekit.io.files import write_atomically
from vaekit.models.samplers import FILE, SAMPLERS

MAX_SEQUENCE = 4096  # tokens per image the prior models
MAX_CODES = 1 << 20


@dataclass(frozen=True)
class PriorShape:
    """What the transformer is: its vocabulary, sequence, width, depth and heads."""

    codes: int
    length: int
    width: int = 128
    layers: int = 2
    heads: int = 4


class TokenTransformer(nn.Module):
    """p(t_i | t_<i) over ``length`` tokens of ``codes`` values; index ``codes`` is the start token."""

    def __init__(self, shape: PriorShape) -> None:
        super().__init__()
        self.shape = shape
        self.embed = nn.Embedding(shape.codes + 1, shape.width)
        self.position = nn.Parameter(torch.zeros(shape.length, shape.width))
        layer = nn.TransformerEncoderLayer(
            shape.width, shape.heads, 4 * shape.width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, shape.layers, enable_nested_tensor=False)
        self.head = nn.Linear(shape.width, shape.codes)
        nn.init.normal_(self.position, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, L, codes)`` of each token of ``tokens`` ``(B, L)`` given those before it."""
        return self._logits(self._after_start(tokens[:, :-1]))

    def next_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, codes)`` of the token that follows ``tokens`` ``(B, L)`` (L < length)."""
        return self._logits(self._after_start(tokens))[:, -1]

    def _after_start(self, tokens: torch.Tensor) -> torch.Tensor:
        start = torch.full((len(tokens), 1), self.shape.codes, dtype=torch.long, device=tokens.device)
        return torch.cat([start, tokens], 1)

    def _logits(self, inputs: torch.Tensor) -> torch.Tensor:
        steps = inputs.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(steps, device=inputs.device)
        h = self.embed(inputs) + self.position[:steps]
        return self.head(self.blocks(h, mask=mask, is_causal=True))


@SAMPLERS.register(
    "autoregressive",
    summary="a small transformer fitted on a tokenizer's token grids (vaekit fit-sampler --sampler autoregressive)",
    needs=("tokens",),
    tiny={"steps": 3},
)
class TokenPrior:
    """A fitted ``TokenTransformer``; ``attach(model)`` binds the tokenizer whose codes it draws."""

    def __init__(self, network: TokenTransformer, token_grid: tuple[int, ...], meta: dict) -> None:
        self.network, self.token_grid, self.meta = network.eval(), tuple(token_grid), meta
        self.bottleneck = None
        self.latent_shape: tuple[int, ...] = tuple(meta.get("latent_shape", ()))

    def attach(self, model) -> TokenPrior:
        if tuple(model.bottleneck.token_grid) != self.token_grid or model.bottleneck.codebook_size != self.codes:
            raise ValueError(
                f"the prior draws {self.codes} codes on a {self.token_grid} grid; the model has "
                f"{model.bottleneck.codebook_size} on {tuple(model.bottleneck.token_grid)}"
            )
        self.bottleneck = model.bottleneck
        return self

    @property
    def codes(self) -> int:
        return self.network.shape.codes

    @torch.no_grad()
    def draw_tokens(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` token grids, each token drawn from p(t_i | t_<i) with its logits / ``temperature``."""
        length = self.network.shape.length
        tokens = torch.zeros((n, 0), dtype=torch.long)
        for _ in range(length):
            logits = self.network.next_logits(tokens).float() / max(temperature, 1e-6)
            nxt = torch.multinomial(F.softmax(logits, -1), 1, generator=generator)
            tokens = torch.cat([tokens, nxt], 1)
        return tokens.view(n, *self.token_grid)

    def draw(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` latents: drawn token grids looked up in the attached tokenizer's codebook (CPU)."""
        if self.bottleneck is None:
            raise ValueError("attach the tokenizer first (TokenPrior.attach(model))")
        with torch.no_grad():
            return self.bottleneck.detokenize(self.draw_tokens(n, temperature, generator)).cpu()

    def describe(self) -> str:
        held = self.meta.get("held_out_nats_per_token")
        nll = f", held-out NLL {held:.3f} nats/token (uniform: {math.log(self.codes):.3f})" if held else ""
        return (
            f"a {self.network.shape.layers}-layer token transformer over {self.network.shape.length} tokens "
            f"of {self.codes} codes, {self.meta.get('steps', 0)} steps on {self.meta.get('fitted_on', 0):,} grids{nll}"
        )

    @torch.no_grad()
    def nll_per_token(self, tokens: torch.Tensor, batch_size: int = 256) -> float:
        """Mean negative log-likelihood in nats per token of token grids ``(N, *grid)``."""
        flat, total = tokens.reshape(len(tokens), -1).long(), 0.0
        for start in range(0, len(flat), batch_size):
            chunk = flat[start : start + batch_size]
            total += F.cross_entropy(self.network(chunk).flatten(0, 1).float(), chunk.flatten(), reduction="sum").item()
        return total / max(flat.numel(), 1)

    def save(self, folder: Path) -> Path:
        meta = {**self.meta, "shape": asdict(self.network.shape), "token_grid": list(self.token_grid)}
        tensors = {k: v.detach().contiguous() for k, v in self.network.state_dict().items()}
        data = save(tensors, metadata={"vaekit_sampler": json.dumps(meta)})
        return write_atomically(folder / FILE.format(name="autoregressive"), data)

    @classmethod
    def load(cls, folder: Path) -> TokenPrior:
        path = Path(folder) / FILE.format(name="autoregressive")
        if not path.is_file():
            raise FileNotFoundError(
                f"{folder}: no fitted token prior ({path.name}); "
                "run `vaekit fit-sampler --sampler autoregressive` first"
            )
        try:
            with safe_open(str(path), "pt") as handle:
                meta = json.loads((handle.metadata() or {}).get("vaekit_sampler", "{}"))
            shape = PriorShape(**meta["shape"])
            grid = tuple(int(d) for d in meta["token_grid"])
            if not (1 <= shape.codes <= MAX_CODES and 1 <= shape.length <= MAX_SEQUENCE and math.prod(grid) > 0):
                raise ValueError("sizes out of range")
            network = TokenTransformer(shape)
            network.load_state_dict(load_file(str(path)))
        except (KeyError, TypeError, ValueError, RuntimeError, SafetensorError, OSError) as err:
            raise ValueError(f"{path}: not a usable token prior ({str(err).splitlines()[0]})") from None
        if math.prod(grid) != shape.length:
            raise ValueError(f"{path}: not a usable token prior (the grid {grid} is not {shape.length} tokens)")
        return cls(network, grid, meta)

    @classmethod
    def fit_model(cls, model, images: np.ndarray, seed: int = 0, max_time: float = 120.0, steps: int = 2000):
        """A prior fitted on the token grids of ``images`` (a tenth held out for its NLL)."""
        from vaekit.data.loader import BatchLoader

        device = next(model.parameters()).device
        with model.evaluating():
            loader = BatchLoader(images, 256, shuffle=False, drop_last=False, device=device)
            tokens = torch.cat([model.tokenize(batch).cpu() for batch in loader])
        return cls.fit(tokens, model.bottleneck.codebook_size, tuple(model.latent_shape), seed, max_time, steps)

    @classmethod
    def fit(
        cls,
        tokens: torch.Tensor,
        codes: int,
        latent_shape: tuple[int, ...],
        seed: int = 0,
        max_time: float = 120.0,
        steps: int = 2000,
        batch_size: int = 64,
    ) -> TokenPrior:
        """Fit on token grids ``(N, *grid)`` for ``steps`` Adam steps or ``max_time`` seconds."""
        grid, flat = tuple(tokens.shape[1:]), tokens.reshape(len(tokens), -1).long()
        if flat.shape[1] > MAX_SEQUENCE:
            raise ValueError(f"a token prior models at most {MAX_SEQUENCE} tokens per image, not {flat.shape[1]}")
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(flat), generator=generator)
        held = max(1, len(flat) // 10) if len(flat) >= 20 else 0
        train, held_out = flat[order[held:]], flat[order[:held]]
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            network = TokenTransformer(PriorShape(codes, flat.shape[1]))
        optimizer = torch.optim.AdamW(network.parameters(), lr=3e-4, weight_decay=0.01)
        started, done = time.monotonic(), 0
        network.train()
        while done < steps and time.monotonic() - started < max_time:
            batch = train[torch.randint(len(train), (min(batch_size, len(train)),), generator=generator)]
            loss = F.cross_entropy(network(batch).flatten(0, 1), batch.flatten())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
        prior = cls(network, grid, {"latent_shape": list(latent_shape), "fitted_on": len(train), "steps": done})
        if held:
            prior.meta["held_out_nats_per_token"] = prior.nll_per_token(held_out)
            prior.meta["uniform_nats_per_token"] = math.log(codes)
        return prior
