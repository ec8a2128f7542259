"""What the one check before anything is saved costs: ``require_finite`` over a model's weights and
buffers and its optimiser state, beside writing the checkpoint it guards.

    python benchmarks/save_guard.py --preset kl-f8-sd --threads 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

import vaekit
from vaekit.io.checkpoints import first_nonfinite, save_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="kl-f8-sd")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = vaekit.create_model(vaekit.load_preset(args.preset).with_overrides(["data.image_size=32"]))
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.rand(1, *model.image_shape)).params.float().mean().backward()
    optimizer.step()  # Adam's two moments: the state a checkpoint holds
    state = {"optimizers": {"model": optimizer.state_dict()}}
    check, write = [], []
    with tempfile.TemporaryDirectory() as folder:
        for step in range(args.repeats):
            started = time.perf_counter()
            assert first_nonfinite(model.state_dict()) is None and first_nonfinite(state) is None
            check.append(time.perf_counter() - started)
            started = time.perf_counter()
            save_checkpoint(Path(folder), step, model, {"step": step, **state}, keep=1)
            write.append(time.perf_counter() - started)  # includes its own check
    parameters = sum(p.numel() for p in model.parameters())
    print(
        json.dumps(
            {
                "preset": args.preset,
                "parameters_M": round(parameters / 1e6, 2),
                "threads": args.threads,
                "check_s": round(min(check), 3),
                "save_checkpoint_s": round(min(write), 3),
                "check_share_of_save": round(min(check) / min(write), 3),
            }
        )
    )


if __name__ == "__main__":
    main()
