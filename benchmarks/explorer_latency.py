"""Latency of the explorer's /api/samples while clients upload large images.

    python benchmarks/explorer_latency.py RUN [--src SRC] [--uploads 4] [--probes 40] [--idle 200]

Starts ``vaekit serve RUN`` (from the source tree SRC, default this checkout's src/) in its own
process, measures /api/samples latency alone, then while ``--uploads`` clients each post a
6320x6320 PNG (just under the 40 Mpx limit: seconds of decoding), then (``--idle N``) while N
sockets stay open without sending a request, and prints p50 / p99 and the failed requests of each.
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


FAILED = float("nan")  # a probe answered with an error (e.g. 503) or not at all


async def probe(client: httpx.AsyncClient, count: int, done: asyncio.Event | None = None) -> list[float]:
    latencies = []
    while len(latencies) < count and not (done is not None and done.is_set() and latencies):
        start = time.perf_counter()
        try:
            response = await client.post("/api/samples", json={"count": 4, "seed": len(latencies)})
            ok = response.status_code == 200
        except httpx.HTTPError:
            ok = False
        latencies.append(time.perf_counter() - start if ok else FAILED)
        await asyncio.sleep(0.05)
    return latencies


async def measure(url: str, uploads: int, probes: int, idle: int) -> dict[str, list[float]]:
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
        results = {"quiet": quiet, "during uploads": busy}
        if idle:
            host, port = url.removeprefix("http://").split(":")
            sockets = [socket.create_connection((host, int(port))) for _ in range(idle)]
            try:
                results[f"{idle} idle sockets"] = await probe(client, probes)
            finally:
                for connection in sockets:
                    connection.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    parser.add_argument("--uploads", type=int, default=4)
    parser.add_argument("--probes", type=int, default=40)
    parser.add_argument("--idle", type=int, default=0, help="sockets that never send a request, in a last phase")
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
        results = asyncio.run(measure(url, args.uploads, args.probes, args.idle))
    finally:
        server.terminate()
        server.wait()
    for name, values in results.items():
        answered = sorted(v for v in values if v == v)
        failed = len(values) - len(answered)
        if not answered:
            print(f"{name:16s} n={len(values):3d}  all failed")
            continue
        p99 = answered[min(len(answered) - 1, round(0.99 * (len(answered) - 1)))]
        print(
            f"{name:16s} n={len(values):3d}  failed {failed:3d}  p50 {statistics.median(answered) * 1000:7.1f} ms"
            f"  p99 {p99 * 1000:7.1f} ms"
        )


if __name__ == "__main__":
    main()
