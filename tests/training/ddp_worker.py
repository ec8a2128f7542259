"""Run by ``torchrun`` from test_distributed.py: train CONFIG into OUT (resuming if asked), then
every rank writes its own weights (and how it averaged gradients) to OUT/rank-R/ so the test can
compare ranks."""

import os
import sys
from pathlib import Path

from vaekit.config import Config
from vaekit.io.checkpoints import save_weights
from vaekit.training.trainer import Trainer

if __name__ == "__main__":
    config_file, out = Path(sys.argv[1]), Path(sys.argv[2])
    trainer = Trainer(Config.from_yaml(config_file), out, resume="--resume" in sys.argv)
    trainer.fit()
    rank_folder = out / f"rank-{os.environ['RANK']}"
    rank_folder.mkdir()
    save_weights(trainer.model, rank_folder)
    (rank_folder / "gradient_sync").write_text(str(trainer.gradient_sync))


def check_reductions(rank: int, world: int, init_file: str, out: str) -> None:
    """Spawned by the reduction test: rank r holds gradients r + 1 and metrics [r, 10 r]; writes
    what ``average_gradients`` and ``mean_over_ranks`` made of them."""
    import torch
    import torch.distributed as dist

    from vaekit.engine.distributed import average_gradients, mean_over_ranks

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    weight, bias = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    weight.grad = torch.full((3,), float(rank + 1))
    bias.grad = torch.full((1,), float(rank + 1), dtype=torch.float64)
    average_gradients([weight, bias], world)
    metrics = mean_over_ranks(torch.tensor([float(rank), 10.0 * rank]), world)
    torch.save({"weight": weight.grad, "bias": bias.grad, "metrics": metrics}, Path(out) / f"rank-{rank}.pt")
    dist.barrier()  # neither rank tears gloo down while the other still talks to it
    dist.destroy_process_group()


def check_stop_votes(rank: int, world: int, init_file: str, out: str) -> None:
    """Spawned by the stop test: each rank wishes to stop at its own step; writes what ``StopVote``
    agreed at each step, for a signal on rank 1 and for time budgets alone."""
    import json

    import torch
    import torch.distributed as dist

    from vaekit.engine.distributed import StopVote

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    scenarios = {
        "signal": {0: (5, "time budget"), 1: (3, "SIGTERM")},
        "budgets": {0: (2, "time budget"), 1: (4, "time budget")},
    }
    agreed = {}
    for name, wishes in scenarios.items():
        vote, wish, seen = StopVote(torch.device("cpu")), None, []
        for step in range(7):
            when, reason = wishes[rank]
            wish = reason if step >= when else wish
            seen.append(vote.agree(wish))
        vote.finish()
        agreed[name] = seen
    (Path(out) / f"votes-{rank}.json").write_text(json.dumps(agreed))
    dist.barrier()
    dist.destroy_process_group()


def check_patient_wait(rank: int, world: int, init_file: str, out: str) -> None:
    """Spawned by the patient-wait test: the training group times out after 0.5 s; rank 1 takes 1.5 s
    (a node building its own cache) before both meet in ``wait_for_every_rank``."""
    import time
    from datetime import timedelta

    import torch.distributed as dist

    from vaekit.engine import distributed

    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world, timeout=timedelta(seconds=0.5)
    )
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank))
    _file_barrier(Path(out) / "arrived", rank, world)  # both start setup together: its 0.5 s is not a race
    distributed.setup("cpu")  # joins the patient group beside the training group
    if rank == 1:
        time.sleep(1.5)
    started = time.monotonic()
    distributed.wait_for_every_rank()
    (Path(out) / f"waited-{rank}").write_text(f"{time.monotonic() - started:.2f}")
    distributed.wait_for_every_rank()  # neither rank tears gloo down while the other still talks to it
    dist.destroy_process_group()


def _file_barrier(folder: Path, rank: int, world: int) -> None:
    """Wait (without any process group, whose timeout is short on purpose) until every rank is here."""
    import time

    folder.mkdir(parents=True, exist_ok=True)
    (folder / str(rank)).touch()
    while len(list(folder.iterdir())) < world:
        time.sleep(0.005)
