"""Run by ``torchrun`` from test_distributed.py: train CONFIG into OUT (resuming if asked), then
every rank writes its own weights to OUT/rank-R.safetensors so the test can compare ranks."""

import os
import sys
from pathlib import Path

from vaekit.config import Config
from vaekit.training.checkpoint import save_weights
from vaekit.training.trainer import Trainer

if __name__ == "__main__":
    config_file, out = Path(sys.argv[1]), Path(sys.argv[2])
    trainer = Trainer(Config.from_yaml(config_file), out, resume="--resume" in sys.argv)
    trainer.fit()
    rank_folder = out / f"rank-{os.environ['RANK']}"
    rank_folder.mkdir()
    save_weights(trainer.model, rank_folder)
