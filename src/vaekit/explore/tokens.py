"""Tokens out and back: a tokenizer's token grids of a dataset, written to ``.npy`` in chunks (a
stopped job resumes where it stopped), and token grids decoded back into images.

While it works, the array is ``.NAME.partial`` beside the output with ``.NAME.partial.json``, which
records the rows done and what they were made from (the model's weights, the images' count, shape
and first rows); a second start with the same model and data continues from there, anything else
starts afresh. The finished file is renamed into place, so ``NAME`` is always whole.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from vaekit.data.loader import BatchLoader
from vaekit.data.progress import JobProgress
from vaekit.data.shards import shard_urls, write_shards
from vaekit.io.files import write_atomically
from vaekit.limits import require_within_budget
from vaekit.models.base import VAE
from vaekit.models.latents import require_latent

SAVE_EVERY = 10.0  # seconds between records of the rows done
MAX_GRID_BYTES = 1 << 24  # a token grid's .npy member, at most (larger ones are not token grids)


def token_dtype(model: VAE) -> np.dtype:
    """The smallest integer type that holds every code of ``model``'s codebook."""
    return np.dtype(np.int16 if model.bottleneck.codebook_size <= np.iinfo(np.int16).max else np.int32)


def fingerprint(model: VAE) -> str:
    """A hash of every weight and buffer of ``model`` (tokens resume only under the same model)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@torch.no_grad()
def tokenize_images(model: VAE, images: np.ndarray, out: Path, batch_size: int = 64) -> Path:
    """The token grids of ``images`` (uint8 ``(N, C, H, W)``) as ``out`` (``.npy``, ``(N, *token_grid)``)."""
    require_latent(model, "tokens", "tokenize")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial, record = out.with_name(f".{out.name}.partial"), out.with_name(f".{out.name}.partial.json")
    grid, dtype = tuple(model.bottleneck.token_grid), token_dtype(model)
    signature = {
        "model": fingerprint(model),
        "images": len(images),
        "image_shape": list(images.shape[1:]),
        "first_rows": hashlib.sha256(np.ascontiguousarray(images[: min(4, len(images))]).tobytes()).hexdigest(),
        "token_grid": list(grid),
        "dtype": dtype.name,
    }
    done = _rows_done(partial, record, signature)
    mode = "r+" if done else "w+"
    array = np.lib.format.open_memmap(partial, mode=mode, dtype=dtype, shape=(len(images), *grid))
    device = next(model.parameters()).device
    saved = time.monotonic()
    with model.evaluating(), JobProgress(f"tokenize {out.name}", len(images), done) as progress:
        if done < len(images):
            loader = BatchLoader(images[done:], batch_size, shuffle=False, drop_last=False, device=device)
            for batch in loader:
                array[done : done + len(batch)] = model.tokenize(batch).cpu().numpy().astype(dtype)
                done += len(batch)
                progress.advance(len(batch))
                if time.monotonic() - saved > SAVE_EVERY:
                    _record(array, record, signature, done)
                    saved = time.monotonic()
    array.flush()
    del array
    os.replace(partial, out)
    record.unlink(missing_ok=True)
    return out


def _rows_done(partial: Path, record: Path, signature: dict) -> int:
    """Rows a stopped job of the same model and data wrote, or 0."""
    if not (partial.is_file() and record.is_file()):
        return 0
    try:
        state = json.loads(record.read_text())
    except (OSError, ValueError):
        return 0
    done = state.get("done") if isinstance(state, dict) and state.get("signature") == signature else 0
    return done if isinstance(done, int) and 0 <= done <= signature["images"] else 0


def _record(array: np.memmap, record: Path, signature: dict, done: int) -> None:
    array.flush()  # the rows are on disk before the record says so
    write_atomically(record, json.dumps({"signature": signature, "done": done}))


SHARD_GRIDS = 10_000  # token grids per WebDataset shard


def write_token_shards(tokens: Path, out: Path, per_shard: int = SHARD_GRIDS) -> Path:
    """The grids of a finished tokens ``.npy`` as WebDataset shards in ``out`` (a ``KEY.npy`` member
    per grid, in the data's order, and ``index.json``); the ``.npy`` is removed once they are whole."""
    write_shards(_grid_members(np.load(tokens, mmap_mode="r", allow_pickle=False)), out, per_shard)
    tokens.unlink()
    return out


def _grid_members(grids: np.ndarray) -> Iterator[tuple[str, bytes, None]]:
    for grid in grids:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(grid), allow_pickle=False)
        yield "grid.npy", buffer.getvalue(), None


def _read_token_shards(folder: Path, grid: tuple[int, ...]) -> np.ndarray:
    """The grids of a folder of token shards, in order (each member read with ``allow_pickle=False``)."""
    urls = shard_urls(str(folder))
    rows: list[np.ndarray] = []
    for url in urls:
        with tarfile.open(url) as tar:
            for member in tar:
                if member.isfile() and member.name.endswith(".npy") and member.size <= MAX_GRID_BYTES:
                    rows.append(np.load(io.BytesIO(tar.extractfile(member).read()), allow_pickle=False))
                    require_within_budget("decode: token grids", len(rows), grid)
    if not rows:
        raise ValueError(f"{folder}: no token grids (KEY.npy members) in its shards")
    return np.stack(rows)


def read_tokens(path: Path | str, model: VAE) -> np.ndarray:
    """Token grids from a ``.npy`` file (memory-mapped; never unpickled) or a folder of WebDataset
    shards ``tokenize`` wrote, checked against ``model``."""
    require_latent(model, "tokens", "decode")
    grid = tuple(model.bottleneck.token_grid)
    try:
        tokens = (
            _read_token_shards(Path(path), grid)
            if Path(path).is_dir()
            else np.load(path, mmap_mode="r", allow_pickle=False)
        )
    except (OSError, ValueError, tarfile.TarError) as err:
        raise ValueError(f"{path}: not a .npy array or shards of tokens ({err})") from None
    if not np.issubdtype(tokens.dtype, np.integer) or tuple(tokens.shape[1:]) != grid:
        raise ValueError(f"{path}: {tokens.dtype} tokens shaped {tokens.shape}; this model's are (N, {grid}) integers")
    return tokens


@torch.no_grad()
def decode_tokens(model: VAE, tokens: np.ndarray, batch_size: int = 64) -> Iterator[torch.Tensor]:
    """Images in [0, 1] decoded from token grids, chunk by chunk (memory holds one chunk)."""
    with model.evaluating():
        for start in range(0, len(tokens), batch_size):
            chunk = torch.from_numpy(np.asarray(tokens[start : start + batch_size], dtype=np.int64))
            yield model.detokenize(chunk.to(next(model.parameters()).device)).cpu()
