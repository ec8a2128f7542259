"""Export a model's encoder and decoder as ONNX or TorchScript files.

``encoder``: images ``(B, C, H, W)`` in [0, 1] -> ``(mean, logvar)`` of a Gaussian posterior, the
latents of a deterministic one, the integer token grids of a quantized one;
``decoder``: latents ``(B, *latent_shape)`` -> images in [0, 1]. The batch dimension is dynamic.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from vaekit.io.files import replace_folder
from vaekit.models.base import VAE
from vaekit.models.latents import latent_has
from vaekit.models.registry import ARCHITECTURES
from vaekit.schema import ConfigError

FORMATS = ("onnx", "torchscript", "diffusers")


class ImageEncoder(nn.Module):
    """[0, 1] images -> what the latent kind gives: (mean, logvar), the latents, or the tokens."""

    def __init__(self, model: VAE) -> None:
        super().__init__()
        self.model = model
        self.outputs = (
            ["mean", "logvar"]
            if latent_has(model, "gaussian")
            else ["tokens"]
            if latent_has(model, "tokens")
            else ["latents"]
        )

    def forward(self, images: torch.Tensor):
        posterior = self.model.encode(self.model.likelihood.prepare(images))
        if self.outputs == ["tokens"]:
            return posterior.indices
        return (posterior.mean, posterior.logvar) if len(self.outputs) == 2 else posterior.mean


class ImageDecoder(nn.Module):
    """Latents -> [0, 1] images."""

    def __init__(self, model: VAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.likelihood.mean(self.model.decode(z))


def export(model: VAE, folder: str | Path, fmt: str = "onnx", scaling: dict | None = None) -> list[Path]:
    """Write ``encoder.<ext>`` and ``decoder.<ext>`` for ``model`` into ``folder``; for ``diffusers``
    (KL autoencoders), an ``AutoencoderKL`` folder with ``scaling`` (scaling / shift factor) in its config."""
    if fmt not in FORMATS:
        raise ValueError(f"export format {fmt!r}: use one of {', '.join(FORMATS)}")
    entry = next((e for e in ARCHITECTURES if e.factory is type(model)), None)  # None: a plug-in class
    if entry is not None and not entry.has(fmt):
        formats = [f for f in FORMATS if entry.has(f)]
        raise ConfigError(
            f"export --format {fmt}: model.arch {entry.name} cannot be written as {fmt}"
            + (f"; use {' or '.join(formats)}" if formats else "; it declares no export format")
        )
    folder = Path(folder)
    model = model.cpu()
    names: list[str] = []

    def write(into: Path) -> None:
        written = export_diffusers(model, into, scaling) if fmt == "diffusers" else _export_networks(model, into, fmt)
        names.extend(path.name for path in written)

    with model.evaluating():  # the caller's model comes back in its own mode
        replace_folder(folder, write)  # whole or not at all, files with the umask's modes
    return [folder / name for name in names]


def _export_networks(model: VAE, folder: Path, fmt: str) -> list[Path]:
    """``encoder.<ext>`` and ``decoder.<ext>`` (ONNX or TorchScript) in ``folder``."""
    own = torch.Generator().manual_seed(0)  # example inputs leave the global random streams alone
    images = torch.rand(2, *model.image_shape, generator=own)
    latents = torch.randn(2, *model.latent_shape, generator=own)
    written = []
    encoder = ImageEncoder(model).eval()  # eval: the exporter sets a wrapper's mode back, and its model's
    for name, module, example, inputs, outputs in (
        ("encoder", encoder, images, ["images"], encoder.outputs),
        ("decoder", ImageDecoder(model).eval(), latents, ["latents"], ["images"]),
    ):
        if fmt == "torchscript":
            path = folder / f"{name}.pt"
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # TorchScript's deprecation and tracer notes; the files work
                torch.jit.trace(module, example, check_trace=False).save(str(path))
        else:
            path = folder / f"{name}.onnx"
            _export_onnx(module, example, path, inputs, outputs)
        written.append(path)
    return written


def _export_onnx(module: nn.Module, example: torch.Tensor, path: Path, inputs: list[str], outputs: list[str]) -> None:
    try:
        import onnx  # noqa: F401  (the exporter needs it)
    except ImportError as err:
        raise ValueError("export --format onnx needs onnx: pip install 'vaekit[onnx]'") from err
    axes = {name: {0: "batch"} for name in inputs + outputs}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (example,), str(path), input_names=inputs, output_names=outputs, dynamic_axes=axes, dynamo=False
        )


def export_diffusers(model: VAE, folder: Path, scaling: dict | None = None) -> list[Path]:
    """A ``from_pretrained``-ready folder of the model's own diffusers class (``AutoencoderKL``, or
    ``VQModel`` for a vector-quantized latent; the class of a ``model.arch: diffusers`` model):
    config.json with the measured latent statistics where the class keeps them (``scaling_factor``,
    ``shift_factor``, per-channel ``latents_mean`` / ``latents_std``, FLUX.2's batch-norm buffers)
    and diffusion_pytorch_model.safetensors."""
    from vaekit.models.autoencoder_kl import AutoencoderKLVAE, to_diffusers_state, vq_model_config
    from vaekit.models.diffusers_adapter import DiffusersVAE
    from vaekit.optional import require

    scaling = scaling or (getattr(model, "info", None) or {}).get("latent_scaling") or {}
    if isinstance(model, DiffusersVAE):
        autoencoder = model.exported(scaling)
    elif not isinstance(model, AutoencoderKLVAE):
        raise ValueError("--format diffusers exports diffusers autoencoders (model.arch autoencoder-kl or diffusers)")
    elif not scaling.get("scaling_factor"):
        raise ValueError("no measured latent scaling factor: run `vaekit evaluate RUN --metrics latents` first")
    else:
        diffusers = require("diffusers", "diffusers", "export --format diffusers")
        if latent_has(model, "tokens"):
            autoencoder = diffusers.VQModel(**vq_model_config(model), scaling_factor=float(scaling["scaling_factor"]))
        else:
            autoencoder = diffusers.AutoencoderKL(
                **model.diffusers_config,
                scaling_factor=float(scaling["scaling_factor"]),
                shift_factor=float(scaling["shift_factor"]) if scaling.get("shift_factor") is not None else None,
                latents_mean=tuple(scaling["latents_mean"]) if scaling.get("latents_mean") else None,
                latents_std=tuple(scaling["latents_std"]) if scaling.get("latents_std") else None,
            )
        autoencoder.load_state_dict(to_diffusers_state(model.state_dict()))
    autoencoder.save_pretrained(str(folder), safe_serialization=True)
    return [folder / "config.json", folder / "diffusion_pytorch_model.safetensors"]
