"""The loader's share of a training step when images are decoded while training (tar shards).

    python benchmarks/loader_share.py [--size 256] [--images 512] [--photo 768] [--batch 16] [--steps 12]
                                      [--workers 2] [--processes 2]

Writes a folder of synthetic JPEG photos (``--photo`` px, smooth random content) to a temporary
folder, converts it with ``vaekit shard``, and trains a conv VAE at ``--size`` px from the shards:
once decoding on the training thread (prefetch 0), once with the loader's background prefetch
(2 batches ahead, ``--workers`` decode threads) and once in ``--processes`` loader worker processes
(``data.processes``, each 2 batches ahead, one decode thread each). The share is the time the
training loop waits for its next batch over the whole step.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vaekit import noise
from vaekit.config import Config
from vaekit.data.loader import BatchLoader
from vaekit.data.shards import iter_folder, load_shards, write_shards
from vaekit.engine.precision import Precision
from vaekit.engine.step import StepInfo, update
from vaekit.models import create_model
from vaekit.objectives import create_objective


def photos(folder: Path, count: int, side: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(count):
        coarse = rng.integers(0, 256, (side // 32, side // 32, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((side, side), Image.Resampling.BICUBIC).save(folder / f"{i:05d}.jpg", quality=90)


def measure(images, config: Config, batch: int, steps: int, prefetch: int, processes: int) -> dict:
    model = create_model(config).train()
    precision = Precision("fp32", torch.device("cpu"))
    objective = create_objective(model, config, precision)
    loader = BatchLoader(images, batch, prefetch=prefetch, seed=0, processes=processes)
    batches = loader.epoch(0)
    waited = total = 0.0
    for step in range(steps + 1):
        started = time.perf_counter()
        x = next(batches)
        got = time.perf_counter()
        update(objective, precision, x, StepInfo(step, 0.0, 100, batch), noise.step_seed(0, step))
        if step:  # the first step warms up
            waited += got - started
            total += time.perf_counter() - started
    return {"loader_share": waited / total, "step_s": total / steps, "prefetch": prefetch, "processes": processes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--photo", type=int, default=768)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder, shards = Path(scratch, "photos"), Path(scratch, "shards")
        folder.mkdir()
        photos(folder, args.images, args.photo)
        write_shards(iter_folder(folder), shards, per_shard=128)
        config = Config().with_overrides({"data.image_size": args.size, "data.channels": 3,
                                          "model.channels": [32, 64, 128, 256, 256], "model.latent_dim": 128,
                                          "likelihood.name": "laplace", "train.batch_size": args.batch})  # fmt: skip
        results = []
        for prefetch, processes in ((0, 0), (2, 0), (2, args.processes)):
            threads = 0 if processes else args.workers  # 0: one decode thread in each worker process
            images = load_shards(str(shards), args.size, "center", 3, threads).images
            results.append(measure(images, config, args.batch, args.steps, prefetch, processes))
            print(json.dumps({**results[-1], "size": args.size, "photo": args.photo, "workers": args.workers}))


if __name__ == "__main__":
    main()
