"""The Python API: everything the CLI does, as functions on models, runs and in-memory data.

>>> import vaekit
>>> run = vaekit.train(data=images_uint8_nhwc, overrides=["train.epochs=5"])
>>> model = vaekit.load(run)
>>> model.generate(16)                          # (16, C, H, W) in [0, 1]
>>> vaekit.evaluate(model, data=test_images)    # metrics as a dict
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaekit.config import Config, ConfigError
from vaekit.data import DataError, ImageDataset, load_dataset
from vaekit.data.image_files import load_images
from vaekit.data.loader import BatchLoader
from vaekit.data.memory import MEMORY_SOURCE, from_memory, is_in_memory, shaped_for
from vaekit.io.card import record_evaluation
from vaekit.io.run_folder import RunDir
from vaekit.limits import require_within_budget
from vaekit.models import VAE
from vaekit.models.latents import require_latent
from vaekit.models.samplers import attach_sampler
from vaekit.pretrained import card_folder, load, model_folder
from vaekit.training.callbacks import Callback
from vaekit.training.setup import check_components
from vaekit.training.start import (
    default_run_folder,
    keys_to_choose,
    merged_config,
    new_config,
    resumed_run,
    training_data,
)
from vaekit.training.trainer import Trainer

Data = Any  # a path / spec string, numpy array, torch tensor, torch Dataset or datasets.Dataset
Model = VAE | str | Path


def resolve_config(
    config: Config | str | Path | None = None, preset: str | None = None, overrides: Sequence[str] = ()
) -> Config:
    """The config a preset, a YAML file (its keys win over the preset's) and overrides make together,
    its components checked against the registries."""
    resolved = merged_config(config, preset).with_overrides(list(overrides))
    check_components(resolved)
    return resolved


def train(
    config: Config | str | Path | None = None,
    *,
    preset: str | None = None,
    data: Data = None,
    labels: Any = None,
    model: VAE | None = None,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    overrides: Sequence[str] = (),
    callbacks: Sequence[Callback] = (),
    trust_code: bool = False,
    overwrite: bool = False,
    init: str | Path | None = None,
) -> Path:
    """Train a model and return its run directory.

    ``data``: a path or spec (``"shapes"``, a folder, ``celeba:PATH``) or in-memory data (numpy
    ``(N, H, W[, C])``, torch ``(N, C, H, W)``, a torch ``Dataset`` of images or (image, label), a
    Hugging Face dataset with an image column; ``(N, D)`` vectors with your own networks); ``labels``
    for in-memory data. ``model``: your own ``VAE`` (e.g. ``VAE.from_modules``). ``resume``: continue
    that run (pass in-memory data and own modules again); with ``out`` as well, continue it as a
    new run there and leave ``resume`` untouched (a fork). ``callbacks``: ``vaekit.Callback``
    objects. ``overwrite`` replaces a run already in ``out``. ``init``: start from pretrained weights
    (a vaekit run / model folder / Hub id, or a diffusers VAE folder, whose architecture is then used).
    """
    if resume is not None:
        cfg, out = resumed_run(resume, out, config, preset, overwrite)
    else:
        cfg = new_config(config, preset, init)
    forked = resume is not None and Path(out).resolve() != Path(resume).resolve()
    try:
        dataset, overrides = training_data(data, labels, model is not None, cfg, overrides, resume)
        cfg = cfg.with_overrides(overrides)
        fresh = config is None and preset is None and resume is None and init is None and model is None
        trainer = Trainer(
            cfg,
            out if out is not None else default_run_folder(preset),
            choose=keys_to_choose(overrides, data is not None, dataset is not None) if fresh else set(),
            resume=resume is not None,
            dataset=dataset,
            model=model,
            callbacks=callbacks,
            trust_code=trust_code,
            overwrite=overwrite,
        )
    except BaseException:
        if forked:  # a fork that could not start leaves nothing: the next attempt is not "already a run"
            RunDir(Path(out)).remove_own_files()
        raise
    return trainer.fit()


def distill(
    teacher: str | Path,
    student: str = "tiny",
    *,
    data: Data = None,
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    overwrite: bool = False,
) -> Path:
    """Train a student (``tiny``: a TAESD-style ``AutoencoderTiny``; or an architecture name) to
    reproduce ``teacher``'s latents and decodes (``objectives/distill.py``); returns its run."""
    from vaekit.objectives.distill import student_config

    config = student_config(load(teacher), str(teacher), student)
    return train(config, data=data, out=out, overrides=overrides, overwrite=overwrite)


def use_decoder(model: Model, decoder: Model, trust_code: bool = False) -> VAE:
    """``model`` with the decoder of ``decoder`` (a distilled preview decoder of the same latents):
    sampling, interpolation and the explorer then decode with it."""
    vae, preview = as_model(model, trust_code), as_model(decoder, trust_code)
    if tuple(preview.latent_shape) != tuple(vae.latent_shape):
        raise ConfigError(
            f"--decoder: it decodes latents {tuple(preview.latent_shape)}, the model's are {tuple(vae.latent_shape)}"
        )
    vae.decoder, vae.likelihood = preview.decoder, preview.likelihood
    vae.preview = preview  # keeps the preview model (its decoder's owner) alive with this one
    return vae


def reconstruct_full_size(model: Model, image: torch.Tensor, overlap: int | None = None) -> torch.Tensor:
    """The reconstruction of one ``(C, H, W)`` image of any size, in overlapping tiles of the model's
    size blended at the seams; memory is bounded by the tile."""
    from vaekit.explore.tiling import reconstruct_tiled

    return reconstruct_tiled(as_model(model), image, overlap)


# ---------------------------------------------------------------------- the CLI's commands as functions
def as_model(model: Model, trust_code: bool = False) -> VAE:
    """A loaded model, or the model given."""
    return model if isinstance(model, VAE) else load(model, trust_code=trust_code)


def as_images(images: Any, model: VAE) -> torch.Tensor:
    """Image paths or in-memory images (as ``train`` takes them) as a [0, 1] batch for ``model``."""
    if isinstance(images, str | Path):
        images = [images]
    if isinstance(images, Sequence) and images and isinstance(images[0], str | Path):
        return load_images(images, model.config)
    if isinstance(images, torch.Tensor) and images.is_floating_point() and images.dim() == 3:
        images = images[None]
    dataset = _memory_data_for(model, images)
    batch = torch.from_numpy(np.asarray(dataset.images)).float()
    return batch / 255.0 if dataset.images.dtype == np.uint8 else batch


def _memory_data_for(model: VAE, data: Any, labels: Any = None) -> ImageDataset:
    """In-memory data through the model's own recipe (crop, resize, channels), as files go."""
    dataset = from_memory(data, labels, allow_vectors=len(model.image_shape) == 1)
    return shaped_for(dataset, model.image_shape, model.config.data.crop if model.config else "center")


def dataset_for(
    model: VAE, data: Data = None, labels: Any = None, split: str | None = None, limit: int | None = None
) -> ImageDataset:
    """The data to evaluate or explore ``model`` with: in-memory data as given (all of it), or a
    split of a path / the run's own source. Runs trained on memory data need it passed again.
    ``limit``: where the whole source is wanted, only its first images are read (and decoded)."""
    config = model.config.data
    if is_in_memory(data):
        return _memory_data_for(model, data, labels)
    if data is None and config.source == MEMORY_SOURCE:
        raise DataError(
            f"this model was trained on in-memory data ({config.fingerprint}); pass the data again (data=...)"
        )
    whole = split in (None, "all")
    config = replace(
        config,
        source=str(data) if data is not None else config.source,
        labels=labels or config.labels,
        limit=limit if whole else None,
    )
    dataset = load_dataset(config)
    return dataset.split(split, config.val_fraction, config.seed) if split not in (None, "all") else dataset


def evaluate(
    model: Model,
    data: Data = None,
    *,
    split: str | None = None,
    metrics: Sequence[str] | None = None,
    output: str | Path | None = None,
    trust_code: bool = False,
    sampler: str | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Metrics of ``model`` on held-out data (see ``vaekit.evaluation.report.EvaluationSettings`` for
    the other settings); returns the report and writes it as JSON + Markdown when ``output`` is set.

    ``split``: ``all``, ``test``, ``val`` or ``train``; by default all of a held-out source given
    as ``data`` (it is held out already) and the test split of the run's own source. ``sampler``:
    where FID / KID samples come from (``prior`` or ``gmm``, see ``use_sampler``)."""
    from vaekit.evaluation.report import EvaluationSettings, default_metrics, require_metrics, write_report
    from vaekit.evaluation.report import evaluate as run_evaluation

    vae = as_model(model, trust_code) if sampler is None else use_sampler(model, sampler, trust_code)
    split = split or ("all" if data is not None else "test")
    chosen = EvaluationSettings(split=split, metrics=list(metrics or default_metrics(vae)), **settings)
    require_metrics(vae, chosen.metrics)  # before any data is read
    held_out = dataset_for(vae, data, split=split, limit=settings.get("max_images"))
    report = run_evaluation(vae, held_out, chosen, run=str(model) if not isinstance(model, VAE) else "")
    if output is not None:
        write_report(report, Path(output))
    folder = None if isinstance(model, VAE) else card_folder(model)
    if folder is not None:  # the card keeps its headline numbers, one row per split and sampler
        record_evaluation(folder, report)
    return report


MAX_SAMPLER_IMAGES = 20000  # posterior means a GMM sampler is fitted on, by default


def fit_sampler(
    model: Model,
    data: Data = None,
    *,
    sampler: str = "gmm",
    max_images: int = MAX_SAMPLER_IMAGES,
    seed: int = 0,
    save: bool = True,
    **options: Any,
):
    """An ex-post sampler fitted on the training images (the train split of the run's own source, or
    ``data``): ``gmm``, a Gaussian mixture of the posterior means (``components`` chosen by BIC unless
    given), or ``autoregressive``, a transformer over a tokenizer's token grids (``max_time``,
    ``steps``); saved beside the model's weights (``save``) for ``sample(..., sampler=NAME)``."""
    from vaekit.models.samplers import SAMPLERS

    entry = SAMPLERS.get(sampler, "sampler")
    if entry.factory is None:
        raise ConfigError(f"sampler {sampler}: the prior needs no fitting")
    vae = as_model(model)
    for need in entry.declares.get("needs", ()):
        require_latent(vae, need, f"sampler {sampler}")
    dataset = dataset_for(vae, data, split="train" if data is None else "all", limit=max_images)
    fitted = entry.factory.fit_model(vae, dataset.images[:max_images], seed, **options)
    if save:
        if isinstance(model, VAE):
            raise ConfigError("fit_sampler(save=True) needs a run or model folder; pass save=False for a model object")
        fitted.save(model_folder(model))
    return fitted.attach(vae) if hasattr(fitted, "attach") else fitted


def use_sampler(model: Model, sampler: str = "prior", trust_code: bool = False) -> VAE:
    """``model`` drawing new latents from ``sampler``: ``prior`` (N(0, I)) or ``gmm`` (the mixture
    ``fit_sampler`` saved beside a run's model); used by ``sample``, ``interpolate`` and the explorer.
    A model object keeps the ``latent_sampler`` attached to it (``fit_sampler(..., save=False)``)."""
    vae = as_model(model, trust_code)
    if isinstance(model, VAE):
        if sampler != "prior" and getattr(model, "latent_sampler", None) is None:
            raise ConfigError("this model object has no fitted sampler: set model.latent_sampler = fit_sampler(...)")
        if sampler == "prior":
            vae.latent_sampler = None
        return vae
    return attach_sampler(vae, model_folder(model), sampler)


def sample(
    model: Model, n: int = 64, *, temperature: float = 1.0, seed: int = 0, sampler: str | None = None
) -> torch.Tensor:
    """``n`` random images ``(n, C, H, W)`` in [0, 1]; ``sampler``: ``prior`` or ``gmm`` (default:
    whatever the model draws from, the prior unless ``use_sampler`` said otherwise)."""
    from vaekit.explore.sampling import sample_images

    vae = as_model(model) if sampler is None else use_sampler(model, sampler)
    require_within_budget("sample -n", n, vae.image_shape)
    return sample_images(vae, n, seed=seed, temperature=temperature)


def reconstruct(model: Model, images: Any) -> torch.Tensor:
    """Reconstructions in [0, 1] of image files or in-memory images."""
    vae = as_model(model)
    return vae.reconstruct(as_images(images, vae).to(next(vae.parameters()).device)).cpu()


def tokenize(
    model: Model, data: Data = None, *, out: str | Path | None = None, split: str = "all", batch_size: int = 64
) -> np.ndarray | Path:
    """The token grids ``(N, *token_grid)`` of a tokenizer (a quantized ``model.latent``) for
    ``data`` (in-memory images, or a source spec; by default ``split`` of the run's own source).
    With ``out``, written to that ``.npy`` in chunks with progress (a stopped job resumes) and its
    path returned, or, for an ``out`` that is not a ``.npy``, to that folder as WebDataset shards
    (``KEY.npy`` members, ``index.json``); else returned as an array. ``decode`` turns them back
    into ``reconstruct``'s images."""
    from vaekit.explore.tokens import token_dtype, tokenize_images, write_token_shards

    vae = as_model(model)
    images = dataset_for(vae, data, split=split).images
    if out is not None and Path(out).suffix.lower() != ".npy":  # a folder of shards, from a resumable array
        return write_token_shards(tokenize_images(vae, images, Path(out) / "tokens.npy", batch_size), Path(out))
    if out is not None:
        return tokenize_images(vae, images, Path(out), batch_size)
    device = next(vae.parameters()).device
    with vae.evaluating():
        loader = BatchLoader(images, batch_size, shuffle=False, drop_last=False, device=device)
        return np.concatenate([vae.tokenize(batch).cpu().numpy().astype(token_dtype(vae)) for batch in loader])


def decode(model: Model, tokens: Any, batch_size: int = 64) -> torch.Tensor:
    """Images in [0, 1] from token grids (an array, a tensor or a ``.npy`` file ``tokenize`` wrote)."""
    from vaekit.explore.tokens import decode_tokens, read_tokens

    vae = as_model(model)
    if isinstance(tokens, str | Path):
        tokens = read_tokens(tokens, vae)
    tokens = tokens.numpy() if isinstance(tokens, torch.Tensor) else np.asarray(tokens)
    require_within_budget("decode", len(tokens), vae.image_shape)
    return torch.cat(list(decode_tokens(vae, tokens, batch_size)))


def interpolate(
    model: Model,
    images: Any = None,
    *,
    steps: int = 16,
    mode: str = "slerp",
    seed: int = 0,
    gif: str | Path | None = None,
) -> torch.Tensor:
    """Frames ``(steps, C, H, W)`` from image A to image B (two files or images), or between two
    random latents; also written as a GIF when ``gif`` is given."""
    from vaekit.explore.interpolation import save_gif
    from vaekit.explore.sampling import interpolation_frames

    vae = as_model(model)
    require_within_budget("interpolate --steps", steps, vae.image_shape)
    batch = as_images(images, vae) if images is not None else None
    frames = interpolation_frames(vae, batch, steps=steps, mode=mode, seed=seed)
    if gif is not None:
        save_gif(frames, gif, scale=max(1, 128 // vae.image_shape[-1]))
    return frames


def attributes(
    model: Model,
    data: Data = None,
    *,
    labels: Any = None,
    label_names: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
    save: bool | str | Path = False,
):
    """Attribute vectors (mean latent difference with / without each binary attribute).

    In-memory data takes ``labels`` ``(N, K)`` of 0/1 with ``label_names``; a path takes its own
    labels (CelebA) or a CSV. ``save=True`` writes them beside a run's model (``edit`` reads them).
    """
    from vaekit.explore.attributes import compute_attribute_vectors

    vae = as_model(model)
    dataset = dataset_for(vae, data, labels if not is_in_memory(data) else None, split="train")
    if is_in_memory(data):
        if labels is None or label_names is None:
            raise DataError("attributes of in-memory data need labels (N, K) and label_names (K names)")
        dataset = from_memory(data, labels)
        dataset.label_names = list(label_names)
        if dataset.labels.ndim != 2 or dataset.labels.shape[1] != len(label_names):
            raise DataError(f"labels {dataset.labels.shape} do not match {len(label_names)} label_names")
    vectors = compute_attribute_vectors(vae, dataset, list(names) if names else None)
    if save:
        target = Path(save) if not isinstance(save, bool) else model_folder(model)  # type: ignore[arg-type]
        vectors.save(target)
    return vectors


def edit(model: Model, images: Any, strengths: Mapping[str, float], vectors=None) -> torch.Tensor:
    """Images edited along attribute vectors, e.g. ``edit(run, "me.png", {"Smiling": 1.5})``;
    ``vectors`` default to those saved beside the model."""
    from vaekit.explore.attributes import AttributeVectors, edit_images

    vae = as_model(model)
    if vectors is None:
        if isinstance(model, VAE):
            raise ValueError("edit: pass vectors= (from vaekit.attributes) when giving a model object")
        vectors = AttributeVectors.load(model_folder(model))
    return edit_images(vae, as_images(images, vae), vectors, dict(strengths))


def latent_map(
    model: Model,
    data: Data = None,
    output: str | Path = "latent-map.png",
    *,
    method: str = "tsne",
    split: str = "train",
    **options: Any,
) -> Path:
    """A 2-D map (t-SNE, PCA or UMAP) of posterior means with image thumbnails."""
    from vaekit.explore.latent_map import latent_map as draw

    vae = as_model(model)
    return draw(vae, dataset_for(vae, data, split=split), output, method=method, **options)


__all__ = [
    "attributes",
    "edit",
    "evaluate",
    "interpolate",
    "latent_map",
    "load",
    "load_images",
    "model_folder",
    "reconstruct",
    "resolve_config",
    "sample",
    "train",
]
