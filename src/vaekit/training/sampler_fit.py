"""Training ends by fitting the ex-post sampler: a Gaussian mixture of the training images' latents
(``models/samplers.py``), saved beside the model and named in its card as the sampler new images come
from, so ``samples-final.png``, ``vaekit sample``, ``interpolate``, the explorer and the API show the
model at its best (``--sampler prior`` draws from the prior; ``samples-final-prior.png`` shows it).

Bounded: at most ``train.sampler_images`` latents, encoded within a third of ``train.sampler_seconds``;
mixtures of more components are tried (by BIC) while time is left. Skipped for latent kinds a mixture
cannot model (tokens, which take an autoregressive prior) and with ``train.fit_sampler: false``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tqdm.auto import tqdm

from vaekit.explore.grids import save_run_grids
from vaekit.io.card import record_sampler
from vaekit.models.latents import latent_has
from vaekit.models.samplers import fit_gmm, posterior_means
from vaekit.training.callbacks import Callback, Trainer


class FitSamplerAtEnd(Callback):
    """Fits, saves and names the run's Gaussian-mixture sampler once a finished run's model is written."""

    def on_model_written(self, trainer: Trainer, folder: Path) -> None:
        train, model = trainer.config.train, trainer.model  # the weights just saved (EMA ones where averaged)
        signalled = getattr(getattr(trainer, "stop", None), "signal", None)  # a SIGTERM while the model was written
        if signalled or not train.fit_sampler or not latent_has(model, "continuous"):
            return
        started = time.monotonic()
        images = trainer.train_set.images[: train.sampler_images]
        means = posterior_means(model, images, 256, seconds=train.sampler_seconds / 3)
        mixture = fit_gmm(means, seed=train.seed, seconds=train.sampler_seconds - (time.monotonic() - started))
        mixture.save(folder)
        record_sampler(folder, "gmm", mixture.describe())
        prior = trainer.run.images / "samples-final.png"
        if prior.is_file() and trainer.is_image_data:
            os.replace(prior, trainer.run.images / "samples-final-prior.png")
            model.latent_sampler = mixture
            try:
                save_run_grids(model, trainer.fixed_images, trainer.run.images, "final", train.grid_size, train.seed)
            finally:
                model.latent_sampler = None  # the trainer's model draws from the prior, as before
        tqdm.write(
            f"sampler: {mixture.describe()}, fitted in {time.monotonic() - started:.0f} s; new images come from it "
            "(samples-final.png; the prior's: samples-final-prior.png, --sampler prior)"
        )
