"""Training ends by fitting the ex-post sampler new images come from, so ``samples-final.png``,
``vaekit sample``, ``interpolate``, the explorer and the API show the model at its best
(``--sampler prior`` draws from the prior; ``samples-final-prior.png`` shows it).

Two candidates are fitted on the training images' posterior means: a Gaussian mixture
(``models/samplers.py``) and a second-stage VAE (``models/two_stage.py``, Dai & Wipf). The one with
the higher mean log-density of the held-out images' latents (exact for the mixture, an
importance-sampled lower bound for the second stage) is named in the card; both are saved.

Bounded: a tenth of the run's training time (at least ``MIN_SECONDS``, at most
``train.sampler_seconds``), so a short run's end stays short; at most ``train.sampler_images``
latents, encoded within a quarter of it (the held-out ones within an eighth), the mixture (more
components tried by BIC while time is left) and the second stage (at most ``SECOND_STAGE_STEPS``
steps) within the rest. Skipped for latent kinds a
mixture cannot model (tokens, which take an autoregressive prior), after a signal, and with
``train.fit_sampler: false``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from vaekit.data.dataset import first_rows
from vaekit.explore.grids import save_run_grids
from vaekit.io.card import record_sampler
from vaekit.models.latents import latent_has
from vaekit.models.samplers import fit_gmm, posterior_means
from vaekit.models.two_stage import NAME as SECOND_STAGE
from vaekit.models.two_stage import TwoStageSampler
from vaekit.training.callbacks import Callback, Trainer
from vaekit.training.progress import bounded_batch

SECOND_STAGE_STEPS = 2000
MIN_SECONDS = 0.5  # the end's fit takes a tenth of the training time, at least this, at most train.sampler_seconds
HELD_OUT_LATENTS = 1000  # held-out images whose latents judge the candidates


class FitSamplerAtEnd(Callback):
    """Fits both candidates, keeps the better on held-out latents, once a finished run's model is written."""

    def on_model_written(self, trainer: Trainer, folder: Path) -> None:
        train, model = trainer.config.train, trainer.model  # the weights just saved (EMA ones where averaged)
        signalled = getattr(getattr(trainer, "stop", None), "signal", None)  # a SIGTERM while the model was written
        if signalled or not train.fit_sampler or not latent_has(model, "continuous"):
            return
        started = time.monotonic()
        budget = min(train.sampler_seconds, max(MIN_SECONDS, trainer.clock.elapsed() / 10))  # a short run: short
        batch = bounded_batch(train.batch_size, budget)
        means = posterior_means(model, first_rows(trainer.train_set.images, train.sampler_images), batch, budget / 4)
        held = first_rows(trainer.val_set.images, HELD_OUT_LATENTS)
        held_out = posterior_means(model, held, batch, seconds=budget / 8) if len(held) else torch.empty(0)
        left = budget - (time.monotonic() - started)
        candidates = {"gmm": fit_gmm(means, seed=train.seed, seconds=left / 2)}
        left = budget - (time.monotonic() - started)
        candidates[SECOND_STAGE] = TwoStageSampler.fit(means, train.seed, max(left, 0.2), SECOND_STAGE_STEPS)
        name, judged = _held_out_choice(held_out, candidates, train.seed)
        for candidate in candidates.values():
            candidate.save(folder)
        chosen = candidates[name]
        record_sampler(folder, name, chosen.describe() + judged)
        prior = trainer.run.images / "samples-final.png"
        if prior.is_file() and trainer.is_image_data:
            os.replace(prior, trainer.run.images / "samples-final-prior.png")
            model.latent_sampler = chosen
            try:
                save_run_grids(model, trainer.fixed_images, trainer.run.images, "final", train.grid_size, train.seed)
            finally:
                model.latent_sampler = None  # the trainer's model draws from the prior, as before
        tqdm.write(
            f"sampler: {chosen.describe()}{judged}, fitted in {time.monotonic() - started:.0f} s; new images come "
            "from it (samples-final.png; the prior's: samples-final-prior.png, --sampler prior)"
        )


def _held_out_choice(latents: torch.Tensor, candidates: dict, seed: int) -> tuple[str, str]:
    """The candidate with the higher mean log-density of the held-out latents, and a clause saying so
    (the mixture when there are too few held-out images to judge by)."""
    if len(latents) < 2:
        return "gmm", ""
    generator = torch.Generator().manual_seed(seed)
    scores = {name: float(c.log_prob(latents, generator=generator).mean()) for name, c in candidates.items()}
    best = max(scores, key=scores.get)
    others = ", ".join(f"{name} {score:,.1f}" for name, score in scores.items() if name != best)
    return best, f"; chosen by held-out log-density per latent, {scores[best]:,.1f} nats (against {others})"
