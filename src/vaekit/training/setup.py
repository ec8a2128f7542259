"""Before the loop: the device, the pretrained weights a run starts from and what else ``train`` asks
of the model, and the config entries a user-built model or in-memory data resolve (so that a run's
config describes it completely)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from vaekit.config import Config, ConfigError, TrainConfig
from vaekit.data import BatchLoader, DataError, ImageDataset, load_dataset
from vaekit.data.memory import MEMORY_SOURCE, fingerprint
from vaekit.data.sources import absolute_spec
from vaekit.defaults import BF16_PAYS, Choices, bf16_speedup, choose_from_data, choose_image_size
from vaekit.engine import distributed
from vaekit.likelihoods import LIKELIHOODS
from vaekit.models import ARCHITECTURES, VAE
from vaekit.objectives import OBJECTIVES
from vaekit.objectives.terms import check_terms
from vaekit.pretrained import load_initial_weights
from vaekit.schema import plain


def resolve_run(
    config: Config,
    dataset: ImageDataset | None,
    choose: set[str],
    choices: Choices | None,
    device: torch.device,
    ranks: distributed.Ranks,
) -> tuple[Config, ImageDataset]:
    """The run's config, resolved once, and its data: the image size chosen from the files (when
    ``choose`` asks), the data read (``dataset`` when given), its shape recorded, the settings chosen
    from the images, the precision resolved on this device. The config given is left as it is."""
    if choices is not None and dataset is None:
        config = choose_image_size(config, choose, choices)
    full = dataset if dataset is not None else load_dataset_first_on_rank0(config, ranks)
    config = describe_data(config, full)
    if config.data.source != MEMORY_SOURCE:  # recorded absolute: later commands work from any directory
        labels = {"data.labels": str(Path(config.data.labels).resolve())} if config.data.labels else {}
        config = config.with_overrides({"data.source": absolute_spec(config.data.source), **labels})
    if choices is not None:
        config = choose_from_data(config, full, choose, choices)
    precision = resolve_precision(config.train.precision, device, ranks)
    return config.with_overrides({"train.precision": precision}), full


def load_dataset_first_on_rank0(config: Config, ranks: distributed.Ranks) -> ImageDataset:
    """Rank 0 builds the image cache first (as long as that takes); the other ranks then map it,
    or, on a node whose cache is its own, one of them builds that node's copy while the rest of
    the job waits, also without a time limit."""
    if not ranks.is_main:
        distributed.wait_for_rank0(ranks, "the image cache")
    dataset = load_dataset(config.data)
    if ranks.is_main:
        distributed.wait_for_rank0(ranks, "the image cache")
    distributed.wait_for_every_rank()
    return dataset


def check_components(config: Config) -> None:
    """The components the config names are registered (or plug-ins) and can work together: one
    ``ConfigError`` naming the key, found before any run-folder or data work."""
    ARCHITECTURES.check(config.model.arch)
    likelihood = LIKELIHOODS.get(config.likelihood.name)
    OBJECTIVES.check(config.objective.name)
    arch = ARCHITECTURES.get(config.model.arch) if config.model.arch in ARCHITECTURES else None
    check_terms(config, arch.capabilities if arch is not None else None)
    if config.objective.name in OBJECTIVES:
        objective = OBJECTIVES.get(config.objective.name)
        if config.train.accumulate > 1 and not objective.has("accumulation"):
            raise ConfigError(
                f"train.accumulate: {objective.name} cannot share a step over micro-batches (it updates in phases)"
            )
        if objective.has("continuous-likelihood") and not likelihood.has("continuous"):
            raise ConfigError(
                f"likelihood.name: {objective.name} compares images as real values; "
                f"{likelihood.name} is not continuous (use gaussian, laplace or perceptual)"
            )
    if config.train.gradient_checkpointing and arch is not None and not arch.has("gradient-checkpointing"):
        raise ConfigError(f"train.gradient_checkpointing: model.arch {config.model.arch} does not support it")


def resolve_precision(name: str, device: torch.device, ranks: distributed.Ranks) -> str:
    """``train.precision``, with ``auto`` resolved: bf16 where its matrix products are measured
    faster on this device (on every rank), else fp32."""
    if name != "auto":
        return name
    fast = bf16_speedup(device.type) >= BF16_PAYS
    if ranks.distributed:
        fast = not distributed.any_rank(not fast, device)
    return "bf16" if fast else "fp32"


def prepare_model(model: VAE, config: Config, resume: bool) -> None:
    """What ``train`` asks of the model before training: initial weights (``init``, not on resume),
    a frozen encoder (``trainable: decoder``), gradient checkpointing."""
    train = config.train
    if train.init and not resume:
        load_initial_weights(model, train.init)
    if train.trainable == "decoder":
        model.encoder.requires_grad_(False)
        model.encoder_frozen = True
    if train.gradient_checkpointing:
        if not hasattr(model, "set_gradient_checkpointing"):
            raise ConfigError(f"train.gradient_checkpointing: model.arch {config.model.arch} does not support it")
        model.set_gradient_checkpointing(True)


def describe_model(config: Config, model: VAE) -> Config:
    """``config`` with a user-built model recorded in it, so that the run can be loaded again."""
    described: dict = {}
    modules = getattr(model, "modules_config", None)
    if modules is not None:
        described |= {"model.arch": "modules", "model.modules": asdict(modules)}
    if getattr(model, "likelihood_config", None) is not None:
        described["likelihood"] = plain(model.likelihood_config)
    return config.with_overrides(described) if described else config


def describe_data(config: Config, dataset: ImageDataset) -> Config:
    """``config`` with the data's shape resolved into it (and in-memory data named), so it is complete."""
    shape = dataset.image_shape
    described: dict = {}
    if dataset.source == MEMORY_SOURCE:
        described |= {"data.source": MEMORY_SOURCE, "data.fingerprint": fingerprint(dataset)}
        if len(shape) == 1:
            return config.with_overrides({**described, "data.vector_dim": shape[0]})
        described["data.image_size"] = shape[-1]
    described["data.channels"] = shape[0]  # "auto" resolved: what trained is what config.yaml says
    size = described.get("data.image_size", config.data.image_size)
    if shape[1:] != (size, size):
        raise DataError(f"data: the images are {shape[1]}x{shape[2]} px; data.image_size is {size} (square images)")
    return config.with_overrides(described)


def seconds_per_step(config: Config, repeats: int = 3) -> float:
    """How long one training update of ``config``'s model takes here (CPU, random images of its
    shape, after a warm-up step): the basis of a run's time estimate before it starts."""
    import time

    from vaekit import noise
    from vaekit.engine.precision import Precision
    from vaekit.engine.step import StepInfo, update
    from vaekit.models import create_model
    from vaekit.objectives import create_objective

    data, batch = config.data, config.train.batch_size
    model = create_model(config).train()
    precision = Precision("fp32", torch.device("cpu"))
    objective = create_objective(model, config, precision)
    images = torch.rand(batch, data.channels or 3, data.image_size, data.image_size, generator=torch.Generator())
    times = []
    for step in range(repeats + 1):
        started = time.perf_counter()
        update(objective, precision, images, StepInfo(step, 0.0, 100, batch), noise.step_seed(0, step))
        times.append(time.perf_counter() - started)
    return min(times[1:])


def training_loader(train_set: ImageDataset, config: Config, device: torch.device, ranks: distributed.Ranks):
    """The training batches: this rank's slice of each global batch, in the order (seed, epoch) fix,
    the next ones prefetched (gathered, or decoded for shards, in ``data.processes`` worker
    processes where set) while one trains."""
    from vaekit.data.loader import BatchLoader

    train = config.train
    if train.batch_size % ranks.world or (train.batch_size // ranks.world) % train.accumulate:
        raise ConfigError(
            f"train.batch_size {train.batch_size} must split evenly over {ranks.world} process(es)"
            f" x {train.accumulate} micro-batch(es)"
        )
    return BatchLoader(
        train_set.images,
        train.batch_size,
        flip=config.data.flip,
        seed=train.seed,
        device=device,
        shard=(ranks.rank, ranks.world),
        channels_last=train.channels_last,
        prefetch=2,
        processes=config.data.processes,
    )


def fixed_batch(images: ImageDataset, train: TrainConfig, device: torch.device) -> torch.Tensor:
    """The images every grid of a run reconstructs: the first ``grid_size / 2`` of ``images``."""
    n = min(train.grid_size // 2 or 1, len(images))
    return next(iter(BatchLoader(images.images[:n], n, shuffle=False, device=device)))
