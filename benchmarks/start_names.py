"""A start's cost in time and memory from the image names of a cache entry, at a million images.

    python benchmarks/start_names.py --images 1000000 [--src SRC]

Builds an entry of ``--images`` tiny images, each with a CelebA-like name, then, in a fresh
process (``--src`` selects the source tree), reads the entry and splits it as training does, and
prints the time and the growth of RSS.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import sys, time
import numpy as np
from vaekit.data.cache import cached_dataset
from vaekit.data.dataset import ImageDataset
action, n, cache = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def build(folder):
    names = [f"img_align_celeba/{i:07d}.jpg" for i in range(n)]
    return ImageDataset(np.zeros((n, 1, 8, 8), np.uint8), names=names, source="names")
def rss():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) // 1024
before, started = rss(), time.perf_counter()
dataset = cached_dataset(cache, "t", {"n": n}, build)
if action == "measure":
    dataset.split("train", 0.05, 0)
    print(f"start + split: {time.perf_counter() - started:.2f} s, RSS +{rss() - before} MB")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--src", type=Path, default=Path(__file__).resolve().parents[1] / "src")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(args.src.resolve())}
    with tempfile.TemporaryDirectory() as cache:
        for action in ("build", "measure"):
            command = [sys.executable, "-c", CHILD, action, str(args.images), cache]
            print(subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout, end="")


if __name__ == "__main__":
    main()
