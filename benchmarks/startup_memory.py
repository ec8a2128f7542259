"""Peak memory of a training run's start against the dataset's size: the data are a memory-mapped
cache, and a split should index it, not copy it.

    python benchmarks/startup_memory.py --sizes 10000 30000 [--src SRC] [--ranks 2] [--image-size 64]

For each size: builds the shapes cache (64 px) once, then, in a fresh process (``--src`` selects
the source tree, default this checkout's src/), trains one step with the data-aware choices on and
prints its peak RSS (which counts the pages of the memory-mapped cache it has read: shared page
cache, not private memory), its private memory after the step (RssAnon) and its proportional set
size (PSS: pages shared with other processes counted once over all of them). ``--ranks N`` runs the
measured step under torchrun with N processes and prints each rank's numbers and their sums.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import json, resource, sys
from vaekit.config import Config
from vaekit.training.trainer import Trainer
n, cache, out, size = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
config = Config().with_overrides({
    "data.source": "shapes", "data.image_size": size, "data.num_images": n, "data.cache_dir": cache,
    "model.latent_dim": 8, "model.channels": [8, 16], "train.max_steps": 1, "train.batch_size": 16,
    "train.threads": 1, "train.grid_size": 4,
})
Trainer(config, out, choose={"train.epochs"}).fit()
pss = next(int(line.split()[1]) for line in open("/proc/self/smaps_rollup") if line.startswith("Pss:"))
anon = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("RssAnon:"))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"images": n, "size": size, "peak_rss_mb": peak, "pss_mb": pss / 1024, "anon_mb": anon / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 30000])
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "vaekit-startup-cache")
    parser.add_argument("--ranks", type=int, default=1, help="processes of the measured step (torchrun)")
    parser.add_argument("--image-size", type=int, default=64, help="image side in pixels")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(args.src.resolve()), "OMP_NUM_THREADS": "1"}
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as folder:
            script = Path(folder) / "child.py"
            script.write_text(CHILD)
            for attempt in ("warm the cache", "measure"):
                out = Path(folder) / attempt.replace(" ", "-")
                launch = [sys.executable, str(script)]
                if attempt == "measure" and args.ranks > 1:
                    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                              "--nproc_per_node", str(args.ranks), str(script)]  # fmt: skip
                result = subprocess.run(
                    [*launch, str(n), str(args.cache), str(out), str(args.image_size)],
                    env=env, capture_output=True, text=True, check=True,
                )  # fmt: skip
            ranks = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
            total = {key: round(sum(r[key] for r in ranks), 1) for key in ("peak_rss_mb", "pss_mb", "anon_mb")}
            print(json.dumps({"images": n, "size": args.image_size, "ranks": len(ranks), **total, "per_rank": ranks}))


if __name__ == "__main__":
    main()
