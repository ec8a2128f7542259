"""A start over many tar shards, and the bytes a sample costs from a URL.

    python benchmarks/shard_index.py [--shards 100] [--per-shard 1000] [--samples 256]

Writes ``--shards`` shards of ``--per-shard`` small PNGs with class labels, then times
``load_shards`` (tar headers and labels read, or their index kept in a cache) twice in a row, and
serves the shards from a local HTTP server that answers byte ranges (as object stores do) to count
the bytes sent to read ``--samples`` random images. Run it with ``PYTHONPATH=OLD/src`` to measure
an older tree (which keeps no index).
"""

from __future__ import annotations

import argparse
import inspect
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from vaekit.data.shards import load_shards, write_shards

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/range_server.py
from tests.range_server import serve_with_ranges


def load(spec: str, cache: Path):
    keeps_index = "cache" in inspect.signature(load_shards).parameters
    return load_shards(spec, 32, "center", 3, **({"cache": cache} if keeps_index else {}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=int, default=100)
    parser.add_argument("--per-shard", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=256)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, "PNG")
    with tempfile.TemporaryDirectory() as scratch:
        shards, cache = Path(scratch, "shards"), Path(scratch, "cache")
        items = ((f"{i}.png", buffer.getvalue(), i % 10) for i in range(args.shards * args.per_shard))
        write_shards(items, shards, per_shard=args.per_shard)
        result = {"shards": args.shards, "samples": args.shards * args.per_shard}
        for attempt in ("first_start_s", "next_start_s"):
            started = time.perf_counter()
            load(str(shards), cache)
            result[attempt] = round(time.perf_counter() - started, 3)
        server, handler = serve_with_ranges(shards)
        url = f"http://127.0.0.1:{server.server_port}/shard-{{000000..{min(args.shards, 4) - 1:06d}}}.tar"
        remote = load(url, cache).images
        handler.sent = 0
        positions = np.sort(rng.choice(len(remote), args.samples, replace=False))
        remote.read(positions)
        result["http_bytes_per_sample"] = round(handler.sent / args.samples)
        result["image_bytes"] = len(buffer.getvalue())
        server.shutdown()
        print(json.dumps(result))


if __name__ == "__main__":
    main()
