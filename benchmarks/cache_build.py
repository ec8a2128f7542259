"""The cold cache build of a folder of photos: threads against worker processes, an interrupted
build resumed, and the listing of a start with and without the folder's manifest.

    python benchmarks/cache_build.py --photos 1500 --files 50000 [--size 256] [--workers 2]

Writes ``--photos`` synthetic JPEG photos (640 x 480 to 1600 x 1200, smooth random content) and
times the build of the 256 px cache in threads and in worker processes (each in a fresh process,
alone). Then a build in processes is stopped with SIGINT half-way (by its progress) and the next
start resumes it: the time of the second part is printed. Last, ``--files`` tiny PNGs are listed
the first time (a ``stat`` of each) and again (the manifest reused).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import sys, time
from vaekit.data import build
from vaekit.data.images import ImageFiles, load_image_files
folder, cache, size, workers, processes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
build.PROCESS_FROM = 1 if processes == "processes" else 10**12
started = time.perf_counter()
data = load_image_files(ImageFiles.scan(folder), image_size=size, crop="center", channels=3, cache_dir=cache,
                        workers=workers)
print(f"SECONDS {time.perf_counter() - started:.2f} IMAGES {len(data)}", flush=True)
"""


def photos(folder: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        width, height = int(rng.integers(640, 1601)), 0
        height = width * 3 // 4
        small = rng.integers(0, 256, (height // 32 + 1, width // 32 + 1, 3), dtype=np.uint8)
        Image.fromarray(small).resize((width, height), Image.BICUBIC).save(folder / f"{i:06d}.jpg", quality=90)


def run_build(script: Path, folder: Path, cache: Path, size: int, workers: int, mode: str, stop_at: float = 0):
    """A child build; with ``stop_at`` (a fraction), SIGINT once that share of the rows is done."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(script), str(folder), str(cache), str(size), str(workers), mode]
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if stop_at:
        while child.poll() is None:
            status = list(cache.glob(".images-*.partial/status.npy"))
            if status:
                try:
                    done = (np.load(status[0], mmap_mode="r") != 0).mean()
                except (OSError, ValueError):
                    done = 0.0
                if done >= stop_at:
                    child.send_signal(signal.SIGINT)
                    break
            time.sleep(0.2)
        child.wait()
        return None
    out, _ = child.communicate()
    return float(out.split("SECONDS")[1].split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=1500)
    parser.add_argument("--files", type=int, default=50000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photos(tmp / "photos", args.photos)
        script = tmp / "child.py"
        script.write_text(CHILD)
        results = {}
        for mode in ("threads", "processes"):
            seconds = run_build(script, tmp / "photos", tmp / f"cache-{mode}", args.size, args.workers, mode)
            results[f"build_{mode}_s"] = seconds
            results[f"build_{mode}_ms_per_photo"] = round(1000 * seconds / args.photos, 2)
        run_build(script, tmp / "photos", tmp / "cache-resume", args.size, args.workers, "processes", stop_at=0.5)
        left = np.load(next((tmp / "cache-resume").glob(".images-*.partial/status.npy")))
        results["resume_rows_done_before"] = int((left != 0).sum())
        results["resume_rest_s"] = run_build(
            script, tmp / "photos", tmp / "cache-resume", args.size, args.workers, "processes"
        )

        sys.path.insert(0, str(ROOT / "src"))
        from vaekit.data.listing import list_folder

        many = tmp / "many"
        for i in range(args.files):
            sub = many / f"{i // 1000:03d}"
            if i % 1000 == 0:
                sub.mkdir(parents=True)
            (sub / f"{i:07d}.png").write_bytes(b"\x89PNG")
        os.sync()
        started = time.perf_counter()  # what a start did before the manifest (commit 487c63a)
        paths = sorted(p for p in many.rglob("*") if p.is_file() and p.suffix == ".png")
        [(st.st_size, st.st_mtime_ns, st.st_ctime_ns) for st in map(Path.stat, paths)]
        results["list_before_s"] = round(time.perf_counter() - started, 3)
        for label, manifests in (
            ("list_no_manifest_s", None),
            ("list_first_s", tmp / "m"),
            ("list_reused_s", tmp / "m"),
        ):
            started = time.perf_counter()
            list_folder(many, manifests)
            results[label] = round(time.perf_counter() - started, 3)
        results["files"] = args.files
        print(json.dumps(results))


if __name__ == "__main__":
    main()
