"""Typed run configuration: data / model / likelihood / objective / train, round-tripped to YAML.

Every section is a dataclass; options carry their choices (``Literal``) and ranges (``positive``,
``bounded``) beside them. ``Config.from_dict`` builds and checks them through ``vaekit.schema``
(messages name the dotted key); ``with_overrides`` takes ``key=value`` strings as given to ``--set``
(values parsed as YAML, so ``1e-3``, ``true`` and ``[1, 2]`` work).
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

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
    positive,
    read_yaml,
    set_dotted,
    split_override,
)


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
    crop: Literal["none", "center", "celeba-center140", "celeba-rows20", "celeba-crop160", "random"] = "center"
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
class StyleConfig:
    """Options of the style-based decoder (``model.arch: style``)."""

    mapping_layers: int = non_negative(8, 64)
    style_dim: int = positive(256, MAX_WIDTH)
    noise: bool = True  # per-pixel noise with a learned per-channel scale (starts at 0)
    blur: bool = True  # [1, 2, 1] blur after each upsampling conv
    modulation: Literal["stylize", "adain"] = "stylize"  # stylize: x * (scale + 1) + bias | adain: x * scale + bias
    level_latents: bool = False  # split z into one chunk per resolution, each styling its own level
    max_channels: int = positive(512, MAX_WIDTH)
    channel_base: int = positive(8192, 1 << 20)  # feature maps per level: min(channel_base / 2^level, max_channels)


@dataclass(frozen=True)
class SpatialConfig:
    """Options of the spatial-latent network (``model.arch: spatial``)."""

    latent_channels: int = positive(12, MAX_WIDTH)  # C of the H/f x W/f x C latent
    downsamplings: int = bounded(2, 0, 6)  # f = 2^downsamplings
    residual_blocks: int = non_negative(5, 256)
    norm: Literal["instance", "group", "sample", "none"] = "instance"  # sample: whole-sample normalisation
    dense: bool = False  # the dense-latent variant: flatten -> latent_dim -> back to a map


@dataclass(frozen=True)
class ModulesConfig:
    """Users' own encoder and decoder (``model.arch: modules``, made by ``VAE.from_modules``)."""

    encoder: str = ""  # package.module:Class, rebuilt with encoder_args (only with trust_code)
    decoder: str = ""
    encoder_args: dict[str, Any] = field(default_factory=dict)
    decoder_args: dict[str, Any] = field(default_factory=dict)
    latent_shape: list[int] = positive([], MAX_LATENT)


@dataclass(frozen=True)
class AutoencoderKLConfig:
    """The KL autoencoder of latent diffusion (``model.arch: autoencoder-kl``), as diffusers'
    ``AutoencoderKL`` config: the down-sampling factor is 2^(len(block_out_channels) - 1)."""

    block_out_channels: list[int] = positive([128, 256, 512, 512], MAX_WIDTH)
    layers_per_block: int = positive(2, 64)
    latent_channels: int = positive(4, MAX_WIDTH)
    norm_num_groups: int = positive(32)
    act_fn: Literal["silu", "swish", "relu", "gelu", "mish"] = "silu"
    mid_block_attention: bool = True
    use_quant_conv: bool = True
    use_post_quant_conv: bool = True


@dataclass(frozen=True)
class ModelConfig:
    """The architecture and its sizes."""

    arch: str = "conv"  # a registered architecture (vaekit components) or package.module:Class (a plug-in)
    latent_dim: int = positive(16, MAX_LATENT)
    channels: list[int] = positive([32, 64, 128], MAX_WIDTH)
    kernel_size: int = positive(3, 31)
    norm: Literal["none", "batch", "group"] = "none"
    activation: Literal["relu", "leaky_relu", "silu"] = "relu"
    hidden_dim: int = non_negative(0, MAX_LATENT)  # optional dense layer between conv stack and latent heads (0: none)
    style: StyleConfig = field(default_factory=StyleConfig)
    spatial: SpatialConfig = field(default_factory=SpatialConfig)
    modules: ModulesConfig = field(default_factory=ModulesConfig)
    autoencoder_kl: AutoencoderKLConfig = field(default_factory=AutoencoderKLConfig)
    options: dict[str, Any] = field(default_factory=dict)  # a plug-in architecture's own options

    def _check(self, prefix: str) -> None:
        if not self.channels and self.arch == "conv":  # (resnet: empty means the published widths)
            raise ConfigError(f"{prefix}channels: give at least one layer width, e.g. [32, 64, 128]")


@dataclass(frozen=True)
class PerceptualConfig:
    """Feature-space reconstruction term (``likelihood.name: perceptual``)."""

    # vgg16 | vgg19 | lpips-vgg | lpips-alex | classifier (weights: a train-classifier file; layers body.1,
    # body.4, body.9) | package.module:factory (layers by name)
    network: str = "vgg16"
    layers: list[str] = field(default_factory=lambda: ["relu1_1", "relu2_1", "relu3_1"])
    layer_weights: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])
    resize: int | None = positive(
        256, MAX_IMAGE_SIZE
    )  # images are resized to this before the network (None: as they are)
    imagenet_normalize: bool = True
    weights: str | None = None  # local weights file; default: torch.hub cache / public URL
    random_weights: bool = False  # only for tests and CPU-only benchmarks; never a silent fallback
    pixel: Literal["none", "gaussian", "laplace"] = "none"  # add a pixel term (with likelihood.scale)
    pixel_weight: float = non_negative(1.0)


@dataclass(frozen=True)
class LikelihoodConfig:
    """The reconstruction term p(x|z); it also fixes the decoder's output range."""

    name: str = "bernoulli"  # a registered likelihood (vaekit components)
    binarize: Literal["none", "dynamic"] = "none"  # bernoulli only
    scale: float = bounded(1.0, 0, above=True)  # gaussian sigma / laplace b (initial value when learned)
    learn_scale: bool = False
    # the decoder's output: sigmoid -> [0,1]; tanh -> [-1,1]; identity (data in [0,1]) or signed (data in
    # [-1,1], as diffusers' VAEs): a linear output, clamped only for display
    output: Literal["sigmoid", "tanh", "identity", "signed"] = "sigmoid"
    perceptual: PerceptualConfig = field(default_factory=PerceptualConfig)


@dataclass(frozen=True)
class KLConfig:
    """Weight of the KL term over training, and free bits."""

    schedule: Literal["constant", "linear", "sigmoid", "inverse_batch"] = "constant"
    weight: float = non_negative(1.0)  # final (or constant) weight
    warmup_steps: int = non_negative(0)  # linear: steps from 0 to `weight`
    sigmoid_center: float = 5.0  # sigmoid: epoch at which the weight is weight/2
    sigmoid_slope: float = bounded(1.0, 0, above=True)  # sigmoid: steepness per epoch
    free_bits: float = non_negative(0.0)  # nats per latent dimension below which KL is not penalised
    group_weights: list[float] = non_negative([])  # per latent group (e.g. style levels), x weight


@dataclass(frozen=True)
class IntroConfig:
    """Soft-IntroVAE / AS-IntroVAE hyper-parameters (``objective.name: soft-intro | as-intro``)."""

    beta_kl: float = non_negative(1.0)
    beta_rec: float = non_negative(1.0)
    beta_neg: float = non_negative(256.0)  # change it on resume: --resume RUN --set objective.intro.beta_neg=...
    beta_neg_schedule: list[float] = non_negative([])  # per epoch (last value continues); wins
    gamma_r: float = non_negative(1.0e-8)
    warmup_epochs: int = non_negative(0)  # plain-VAE epochs before the introspective game
    ema_decay: float = bounded(0.0, 0.0, 0.999999)  # EMA of the decoder for samples and the saved model
    transition: Literal["tanh", "linear"] = "tanh"  # as-intro: c = min(1, tanh(5 t / T)) or min(1, 5 t / T)
    kl_fake_patience: int = positive(3)  # epochs of KL(fake) < KL(real) before warning to raise beta_neg


@dataclass(frozen=True)
class AdversarialConfig:
    """An optional PatchGAN discriminator term (hinge loss) added to any objective's decoder loss."""

    enabled: bool = False
    weight: float = non_negative(0.5)  # times the adaptive weight
    adaptive: bool = True  # balance by gradient norms at the decoder's last layer (as in VQGAN)
    start_step: int = non_negative(0)
    loss: Literal["hinge", "vanilla"] = "hinge"  # the discriminator's loss
    layers: int = positive(3, 8)
    channels: int = positive(64, MAX_WIDTH)
    lr: float | None = bounded(None, 0, above=True)  # default: train.lr
    r1_weight: float = non_negative(0.0)  # R1 penalty: gamma / 2 * |grad D(real)|^2 (Mescheder et al. 2018)
    lecam_weight: float = non_negative(0.0)  # LeCam: logits kept near the other side's running mean (Tseng 2021)
    lecam_decay: float = bounded(0.99, 0.0, 0.999999)


@dataclass(frozen=True)
class EquivarianceConfig:
    """EQ-VAE's regulariser: decoding a downscaled / rotated latent should give the same transform
    of the image (objectives with spatial latents; see objectives/equivariance.py)."""

    enabled: bool = False
    weight: float = non_negative(1.0)
    probability: float = bounded(0.5, 0.0, 1.0)  # share of steps that draw a transform
    scales: list[float] = bounded([0.5, 0.75], 0.0, 1.0, above=True)  # downscales of the latent (and image)
    rotations: bool = True  # also rotations by 90, 180, 270 degrees


@dataclass(frozen=True)
class AlignmentConfig:
    """VA-VAE / REPA-E: the latent aligned to a frozen vision model's patch features (objectives with
    spatial latents; see objectives/alignment.py)."""

    enabled: bool = False
    network: str = "facebook/dinov2-small"  # transformers checkpoint (Hub id or folder) or package.module:factory
    random_weights: bool = False  # the network's architecture untrained (tests; never for real use)
    image_size: int | None = positive(224, 4096)  # the network's input side (a multiple of its patch)
    loss: Literal["vf", "repa"] = "vf"  # vf: VA-VAE's cosine + distance-matrix margins; repa: -cosine
    weight: float = non_negative(0.5)
    margin_cos: float = bounded(0.5, 0.0, 2.0)
    margin_distance: float = bounded(0.25, 0.0, 2.0)


@dataclass(frozen=True)
class ObjectiveConfig:
    """The training objective and its hyper-parameters."""

    name: str = "elbo"  # a registered objective (vaekit components) or package.module:Class (a plug-in)
    kl: KLConfig = field(default_factory=KLConfig)
    intro: IntroConfig = field(default_factory=IntroConfig)
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    equivariance: EquivarianceConfig = field(default_factory=EquivarianceConfig)
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)
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
    lr_schedule: Literal["constant", "multistep", "exponential", "cosine"] = "constant"
    lr_milestones: list[int] = non_negative([])  # multistep: epochs
    lr_gamma: float = bounded(0.1, 0, above=True)  # multistep factor / exponential factor per epoch
    grad_clip: float | None = bounded(None, 0, above=True)
    on_nonfinite: Literal["stop", "skip"] = "stop"  # skip: drop an update whose gradients hold NaN/inf
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
    ema_decay: float = bounded(0.0, 0.0, 0.999999)  # EMA of all weights (warmed up) for grids, evaluation, export
    trainable: Literal["all", "decoder"] = "all"  # decoder: fine-tune the decoder, encoder frozen (latents kept)
    gradient_checkpointing: bool = False  # recompute activations in backward (models that support it)
    init: str | None = None  # start from these weights: a vaekit model folder / run or a diffusers VAE folder
    loggers: list[str] = field(default_factory=lambda: ["csv"])  # registered loggers (vaekit components)

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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

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
