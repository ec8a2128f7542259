"""Where a run starts, in named steps: the config of a resumed (or forked) run, of a new one (preset,
YAML file, pretrained folder), the data it trains on, and the keys left for vaekit to choose."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vaekit.config import Config, ConfigError, load_preset, read_yaml
from vaekit.data import DataError, ImageDataset
from vaekit.data.memory import MEMORY_SOURCE, from_memory, is_in_memory
from vaekit.data.streams import is_stream, stream_to_shards
from vaekit.defaults import explicit_keys, free_keys
from vaekit.io.checkpoints import CheckpointError, list_checkpoints
from vaekit.io.run_folder import RunDir, fork_run
from vaekit.pretrained import with_pretrained_architecture


def merged_config(config: Config | str | Path | None, preset: str | None) -> Config:
    """A preset (or the defaults) with a YAML file's keys over it, key by key; a ``Config`` as it is."""
    base = load_preset(preset) if preset else Config()
    if isinstance(config, Config):
        return config
    if config is not None:
        return Config.from_dict(deep_merge(base.to_dict(), read_yaml(config)))
    return base


def deep_merge(base: dict[str, Any], update: Any) -> dict[str, Any]:
    if not isinstance(update, dict):
        raise ConfigError(f"config file: expected a mapping at the top, got {type(update).__name__}")
    merged = dict(base)
    for key, value in update.items():
        merged[key] = (
            deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


def resumed_run(
    resume: str | Path, out: str | Path | None, config: Any, preset: str | None, overwrite: bool
) -> tuple[Config, Path]:
    """The config and folder of the run ``resume`` names; with another ``out``, a fork of it there."""
    if overwrite:
        raise ConfigError("--resume continues a run and --overwrite replaces one: give one of them")
    if config is not None or preset is not None:
        raise ConfigError(
            "--resume continues a run with its own config; give changes with --set, not --preset/--config"
        )
    run = RunDir(Path(resume))
    if not run.config.is_file():
        raise FileNotFoundError(f"{resume}: not a run directory (no config.yaml)")
    if not list_checkpoints(run.checkpoints):
        raise CheckpointError(f"{resume}: no checkpoint to resume from")
    if out is not None and Path(out).resolve() != run.root.resolve():
        fork_run(run, RunDir(Path(out)))
        run = RunDir(Path(out))
    return Config.from_yaml(run.config), run.root


def new_config(config: Config | str | Path | None, preset: str | None, init: str | Path | None) -> Config:
    """A new run's config (checked by the trainer, once a model of your own has described itself);
    with ``init``, the architecture of the pretrained folder it starts from."""
    merged = merged_config(config, preset)
    return with_pretrained_architecture(merged, str(init)) if init is not None else merged


def training_data(
    data: Any, labels: Any, own_model: bool, config: Config, overrides: Sequence[str], resume: Any
) -> tuple[ImageDataset | None, list[str]]:
    """(in-memory data as a dataset, or None; the overrides with ``data.source`` when a spec names
    it). A stream is read once into tar shards in the cache, which the run then trains from."""
    overrides = list(overrides)
    if is_stream(data):
        data = str(stream_to_shards(data, config.with_overrides(overrides).data.cache_dir))
    if is_in_memory(data):
        return from_memory(data, labels, allow_vectors=own_model), overrides
    if data is not None:
        return None, [*overrides, f"data.source={data}"]
    if resume is not None and config.data.source == MEMORY_SOURCE:
        raise DataError(f"{resume} was trained on in-memory data: pass it again, vaekit.train(resume=..., data=...)")
    return None, overrides


def keys_to_choose(overrides: Sequence[str], data_given: bool, in_memory: bool) -> set[str]:
    """The settings of a run without preset, config or model that vaekit chooses from the data."""
    choose = free_keys(explicit_keys(list(overrides), data_given))
    if in_memory:
        choose.discard("data.image_size")  # in-memory data has its own size
    return choose


def default_run_folder(preset: str | None) -> Path:
    return Path("runs") / f"{preset or 'run'}-{time.strftime('%Y%m%d-%H%M%S')}"
