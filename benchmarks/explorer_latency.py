"""Latency of the explorer's /api/samples while clients upload large images.

    python benchmarks/explorer_latency.py RUN [--src SRC] [--uploads 4] [--probes 40]

Starts ``vaekit serve RUN`` (from the source tree SRC, default this checkout's src/) in its own
process, measures /api/samples latency alone, then while ``--uploads`` clients each post a
6320x6320 PNG (just under the 40 Mpx limit: seconds of decoding), and prints p50 / p99 of both.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def big_png(side: int = 6320) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((side, side, 3), np.uint8)).save(buffer, "PNG", compress_level=9)
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def probe(client: httpx.AsyncClient, count: int, done: asyncio.Event | None = None) -> list[float]:
    latencies = []
    while len(latencies) < count and not (done is not None and done.is_set() and latencies):
        start = time.perf_counter()
        response = await client.post("/api/samples", json={"count": 4, "seed": len(latencies)})
        response.raise_for_status()
        latencies.append(time.perf_counter() - start)
        await asyncio.sleep(0.05)
    return latencies


async def measure(url: str, uploads: int, probes: int) -> dict[str, list[float]]:
    png = big_png()
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        quiet = await probe(client, probes)
        done = asyncio.Event()

        async def upload():
            response = await client.post("/api/encode", files={"file": ("big.png", png, "image/png")})
            return response.status_code

        async def all_uploads():
            codes = await asyncio.gather(*[upload() for _ in range(uploads)])
            done.set()
            return codes

        codes, busy = await asyncio.gather(all_uploads(), probe(client, 10**6, done))
    print(f"upload status codes: {codes}")
    return {"quiet": quiet, "during uploads": busy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    parser.add_argument("--uploads", type=int, default=4)
    parser.add_argument("--probes", type=int, default=40)
    args = parser.parse_args()
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(args.src.resolve()), "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "vaekit", "serve", str(args.run), "--port", str(port)], env=env, cwd=args.src.parent
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/api/info", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        results = asyncio.run(measure(url, args.uploads, args.probes))
    finally:
        server.terminate()
        server.wait()
    for name, values in results.items():
        ordered = sorted(values)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        print(
            f"{name:16s} n={len(values):3d}  p50 {statistics.median(values) * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms"
        )


if __name__ == "__main__":
    main()
