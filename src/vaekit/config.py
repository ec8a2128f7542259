"""Typed run configuration: data / model / likelihood / objective / train, round-tripped to YAML.

Every section is a dataclass; options carry their choices (``Literal``, or ``component`` for a
registered name) and ranges (``positive``, ``bounded``) beside them. Only what is not a component's
own lives here: a component's options are a dataclass beside its code, registered with it, and held
by the section of its kind (``model.style`` by ``ModelConfig``: ``Sectioned``). ``Config.from_dict``
builds and checks them through ``vaekit.schema`` (messages name the dotted key); ``with_overrides``
takes ``key=value`` strings as given to ``--set`` (values parsed as YAML, so ``1e-3``, ``true`` and
``[1, 2]`` work).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml

from vaekit.registry import kind as registry_kind
from vaekit.registry import option_sections
from vaekit.schema import (  # noqa: F401  (re-exported: ConfigError, parse_yaml, read_yaml)
    MAX_COUNT,
    MAX_IMAGE_SIZE,
    MAX_LATENT,
    MAX_WIDTH,
    ConfigError,
    bounded,
    build,
    duration,
    non_negative,
    parse_yaml,
    plain,
    positive,
    read_yaml,
    set_dotted,
    split_override,
)


def component(kind: str, default: Any) -> Any:
    """A field naming registered components of ``kind`` (a name, or a list of names), checked when
    built with "did you mean" and the choices; ``vaekit components`` lists them."""

    def check(key: str, value: Any) -> None:
        for name in value if isinstance(value, list) else [value]:
            registry_kind(kind).check(name, key)

    factory = {"default_factory": (lambda: list(default))} if isinstance(default, list) else {"default": default}
    return field(metadata={"check": check, "component": kind}, **factory)


@dataclass(frozen=True)
class Sectioned:
    """A config section that also holds the options of the components registered under it
    (``model.style``, ``objective.adversarial``, ...): built, checked and written like its own fields,
    read as attributes (``config.model.style.noise``). Every registered section is present."""

    SECTION: ClassVar[str] = ""
    sections: dict[str, Any] = field(default_factory=dict, repr=False, kw_only=True)

    @classmethod
    def option_types(cls) -> dict[str, type]:
        """``{name: options dataclass}`` of the components whose options this section holds."""
        return option_sections(cls.SECTION)

    def __post_init__(self) -> None:
        types = self.option_types()
        unknown = set(self.sections) - set(types)
        if unknown:
            raise ConfigError(f"{self.SECTION}: unknown option sections {sorted(unknown)}")
        complete = {name: self.sections.get(name) or kind() for name, kind in types.items()}
        object.__setattr__(self, "sections", complete)

    def __getattr__(self, name: str) -> Any:
        sections = self.__dict__.get("sections") or {}
        if name in sections:
            return sections[name]
        raise AttributeError(f"{type(self).__name__} has no {name!r} (no registered component keeps options there)")


@dataclass(frozen=True)
class DataConfig:
    """Where images come from and how they are shaped.

    ``source`` is a spec: a path (kind detected), ``kind:path`` or ``shapes``; ``memory`` for data
    given as an array, tensor or dataset in Python (``fingerprint`` then names it).
    """

    source: str = "shapes"
    fingerprint: str | None = None  # memory data: "shape dtype sha256:..." of what was trained on
    vector_dim: int | None = positive(None, MAX_COUNT)  # memory data of (N, D) vectors (own networks only): D
    image_size: int = positive(32, MAX_IMAGE_SIZE)
    channels: Literal[1, 3] | None = None  # None: 1 for gray-only sources, else 3
    # random: a random square each epoch (decoded while training: tar shards); see data/recipes.py
    crop: str = component("crop", "center")
    val_fraction: float = bounded(0.05, 0.0, 0.9)  # used when the source has no split of its own
    seed: int = non_negative(0)  # generated data (shapes) and the random train/val split
    flip: bool = False  # random horizontal flip of training batches
    num_images: int = positive(20000, MAX_COUNT)  # for generated sources (shapes)
    labels: str | None = None  # CSV of filename,attr1,... (or a CelebA attribute file) for image folders
    cache_dir: str | None = None  # default: $VAEKIT_CACHE or ~/.cache/vaekit
    workers: int = non_negative(0)  # cache-build processes / shard decode threads; 0 = from the CPUs (and ranks)
    processes: int = non_negative(0, 64)  # loader worker processes decoding shards' batches; 0 = a thread
    rescan: bool = False  # stat every file of a folder at start instead of trusting its manifest
    limit: int | None = positive(None, MAX_COUNT)  # only the first N images (listing order), cut before decoding


@dataclass(frozen=True)
class ModelConfig(Sectioned):
    """The architecture and its sizes; each architecture's own options in ``model.<its name>``."""

    SECTION: ClassVar[str] = "model"

    arch: str = component("architecture", "conv")  # or package.module:Class (a plug-in)
    latent: str = component("latent kind", "gaussian")  # the bottleneck: gaussian, deterministic, a quantizer
    latent_dim: int = positive(16, MAX_LATENT)
    channels: list[int] = positive([32, 64, 128], MAX_WIDTH)
    kernel_size: int = positive(3, 31)
    norm: Literal["none", "batch", "group"] = "none"
    activation: Literal["relu", "leaky_relu", "silu"] = "relu"
    hidden_dim: int = non_negative(0, MAX_LATENT)  # optional dense layer between conv stack and latent heads (0: none)
    options: dict[str, Any] = field(default_factory=dict)  # a plug-in architecture's own options

    def _check(self, prefix: str) -> None:
        if not self.channels and self.arch == "conv":  # (resnet: empty means the published widths)
            raise ConfigError(f"{prefix}channels: give at least one layer width, e.g. [32, 64, 128]")


@dataclass(frozen=True)
class LikelihoodConfig(Sectioned):
    """The reconstruction term p(x|z); it also fixes the decoder's output range."""

    SECTION: ClassVar[str] = "likelihood"

    name: str = component("likelihood", "bernoulli")
    binarize: Literal["none", "dynamic"] = "none"  # bernoulli only
    scale: float = bounded(1.0, 0, above=True)  # gaussian sigma / laplace b (initial value when learned)
    learn_scale: bool = False
    # the decoder's output: sigmoid -> [0,1]; tanh -> [-1,1]; identity (data in [0,1]) or signed (data in
    # [-1,1], as diffusers' VAEs): a linear output, clamped only for display
    output: Literal["sigmoid", "tanh", "identity", "signed"] = "sigmoid"


@dataclass(frozen=True)
class ObjectiveConfig(Sectioned):
    """The training objective; its own options and each term's (``objective.adversarial``) beside it."""

    SECTION: ClassVar[str] = "objective"

    name: str = component("objective", "elbo")  # or package.module:Class (a plug-in)
    options: dict[str, Any] = field(default_factory=dict)  # a plug-in objective's own options


@dataclass(frozen=True)
class TrainConfig:
    """The training loop: optimiser, schedule, precision, budget and bookkeeping."""

    epochs: int = positive(10, MAX_COUNT)
    max_steps: int | None = positive(None)
    max_time: float | None = duration(None)  # seconds of training (or "10m", "1h30m"), then stop cleanly
    batch_size: int = positive(64, 65536)
    optimizer: Literal["adam", "adamw"] = "adam"
    lr: float = non_negative(1e-3)
    weight_decay: float = non_negative(0.0)
    betas: list[float] = bounded([0.9, 0.999], 0.0, 0.999999)
    lr_schedule: str = component("learning-rate schedule", "constant")
    lr_milestones: list[int] = non_negative([])  # multistep: epochs
    lr_gamma: float = bounded(0.1, 0, above=True)  # multistep factor / exponential factor per epoch
    grad_clip: float | None = bounded(None, 0, above=True)
    # skip: drop an update whose gradients hold NaN/inf (rolling back after max_skipped); auto: skip while
    # a discriminator trains (a GAN phase diverges now and then), else stop
    on_nonfinite: Literal["auto", "stop", "skip"] = "auto"
    max_skipped: int = positive(5, 1_000_000)  # skipped updates within skip_window steps that roll the run back
    skip_window: int = positive(200, 10_000_000)
    max_rollbacks: int = non_negative(3)  # rollbacks (each halving the lr) before the run stops as diverged
    precision: Literal["fp32", "bf16", "fp16", "auto"] = "fp32"  # auto: bf16 where measured faster, else fp32
    accumulate: int = positive(1, 1024)  # micro-batches per update (batch_size is the whole update's batch)
    gradient_sync: Literal["auto", "ddp", "flat"] = "auto"  # across processes; auto: ddp where the objective allows
    ddp_bucket_mb: float = bounded(25.0, 0, above=True)  # DDP gradient bucket size (MiB)
    channels_last: bool = False  # NHWC activations (measured no faster on CPU, fp32 or bf16: BENCHMARKS.md)
    compile: bool = False  # torch.compile encoder and decoder (measured: see BENCHMARKS.md)
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    seed: int = non_negative(0)
    threads: int | None = positive(None, 4096)  # torch intra-op threads; None: torch default
    log_every: int = positive(20)
    checkpoint_every: int = positive(500)  # steps; a checkpoint is also written at every epoch end
    keep_checkpoints: int = positive(3, 10000)
    grid_size: int = positive(64, 1024)  # images per reconstruction / sample grid
    fit_sampler: bool = True  # end by fitting the Gaussian-mixture sampler new images then come from
    sampler_images: int = positive(5000, 1_000_000)  # training images whose latents it is fitted on, at most
    sampler_seconds: float = bounded(60.0, 0, above=True)  # the end's sampler fit (encoding: a third of it)
    final_pass_seconds: float | None = bounded(1.0, 0, above=True)  # the end's held-out and latent passes, each
    ema_decay: float = bounded(0.0, 0.0, 0.999999)  # EMA of all weights (warmed up) for grids, evaluation, export
    trainable: Literal["all", "decoder"] = "all"  # decoder: fine-tune the decoder, encoder frozen (latents kept)
    gradient_checkpointing: bool = False  # recompute activations in backward (models that support it)
    init: str | None = None  # start from these weights: a vaekit model folder / run or a diffusers VAE folder
    loggers: list[str] = component("logger", ["csv"])

    def _check(self, prefix: str) -> None:
        device = self.device.split(":")[0]
        if device not in ("auto", "cpu", "cuda", "mps") or (":" in self.device and not self.device[5:].isdigit()):
            raise ConfigError(f"{prefix}device: {self.device!r} is not auto, cpu, cuda, cuda:N or mps")
        if len(self.betas) != 2:
            raise ConfigError(f"{prefix}betas: give two numbers, e.g. [0.9, 0.999]")


@dataclass(frozen=True)
class Config:
    """A whole run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    likelihood: LikelihoodConfig = field(default_factory=LikelihoodConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        return build(cls, data, "")

    def _check(self, prefix: str) -> None:
        objective, latents = registry_kind("objective"), registry_kind("latent kind")
        needs_gaussian = self.objective.name in objective.names() and not objective.get(self.objective.name).has(
            "any-latent"
        )
        if needs_gaussian and not latents.get(self.model.latent).has("gaussian"):
            raise ConfigError(
                f"objective.name {self.objective.name} needs a Gaussian latent; model.latent is {self.model.latent}"
                " (train it with objective.name=elbo)"
            )
        arches, likelihoods = registry_kind("architecture"), registry_kind("likelihood")
        image_output = self.model.arch in arches.names() and arches.get(self.model.arch).has("image-output")
        known = self.likelihood.name in likelihoods.names()
        if image_output and known and not likelihoods.get(self.likelihood.name).has("continuous"):
            continuous = [e.name for e in likelihoods if e.has("continuous")]
            raise ConfigError(
                f"likelihood.name {self.likelihood.name}: model.arch {self.model.arch} decodes images, not "
                f"{self.likelihood.name} parameters; use {', '.join(continuous)}"
            )

    def to_dict(self) -> dict[str, Any]:
        return plain(self)

    @classmethod
    def from_yaml(cls, path: str | Path) -> Config:
        raw = read_yaml(path)
        try:
            return cls.from_dict(raw)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from err

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    def with_overrides(self, overrides: list[str] | dict[str, Any]) -> Config:
        """A copy with dotted ``key=value`` overrides applied and validated."""
        merged = self.to_dict()
        items = overrides.items() if isinstance(overrides, dict) else map(split_override, overrides)
        for key, value in items:
            set_dotted(merged, key, value)
        return Config.from_dict(merged)


def available_presets() -> list[str]:
    """Names of the built-in presets."""
    folder = resources.files("vaekit") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> Config:
    """The built-in preset ``name`` (see ``vaekit presets``)."""
    names = available_presets()
    if name not in names:
        hint = difflib.get_close_matches(name, names, n=1)
        raise ConfigError(
            f"unknown preset {name!r}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; available: {', '.join(names)}"
        )
    path = resources.files("vaekit") / "presets" / f"{name}.yaml"
    return Config.from_yaml(Path(str(path)))


def preset_description(name: str) -> str:
    """The first comment line of a preset file."""
    path = resources.files("vaekit") / "presets" / f"{name}.yaml"
    first = path.read_text().splitlines()[0] if path.is_file() else ""
    return first.lstrip("# ").strip()
