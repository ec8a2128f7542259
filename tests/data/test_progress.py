"""A long data job's progress: a bar on a terminal, lines in a log."""

from vaekit.data import progress
from vaekit.data.progress import JobProgress


def test_without_a_terminal_progress_is_a_line_per_interval_ending_done(monkeypatch, capsys):
    monkeypatch.setattr(progress, "EVERY", 3600.0)  # no line until the end, then one
    with JobProgress("sharding photos", 10, done=4) as job:
        for _ in range(6):
            job.advance(1)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("sharding photos: 10 of 10 images (100%), ") and line.endswith("img/s, done")


def test_each_interval_says_how_much_is_left(monkeypatch, capsys):
    monkeypatch.setattr(progress, "EVERY", 0.0)
    with JobProgress("decoding x", 4) as job:
        job.advance(1)
    assert capsys.readouterr().err.startswith("decoding x: 1 of 4 images (25%), ")


def test_a_job_counts_in_its_own_unit(capsys):
    from vaekit.data.progress import JobProgress

    with JobProgress("fitting the Gaussian mixture", 2, unit="mixtures") as progress:
        progress.advance(1)
        progress.advance(1)
    assert "fitting the Gaussian mixture: 2 of 2 mixtures (100%)" in capsys.readouterr().err


def test_a_pass_within_the_interval_says_nothing_and_its_caller_speaks(capsys):
    with JobProgress("encoding the images", 3, says_done=False) as job:
        job.advance(3)
    assert capsys.readouterr().err == ""


def test_the_long_passes_of_evaluate_fit_sampler_and_train_classifier_say_how_far_they_are(monkeypatch, capsys):
    monkeypatch.setattr(progress, "EVERY", 0.0)  # as if each pass took longer than the interval
    import numpy as np
    import torch

    from tests.helpers import tiny_config
    from vaekit.data.dataset import ImageDataset
    from vaekit.evaluation.likelihood import iwae_nll
    from vaekit.features.classifier import train_classifier
    from vaekit.models import create_model
    from vaekit.models.samplers import fit_gmm, posterior_means

    images = np.random.default_rng(0).integers(0, 255, (20, 3, 16, 16), dtype=np.uint8)
    model = create_model(tiny_config())
    fit_gmm(posterior_means(model, images), components=1)
    iwae_nll(model, images, k=2)
    train_classifier(ImageDataset(images, labels=np.arange(20) % 2), None, epochs=2)
    said = capsys.readouterr().err
    lines = ["encoding the images: 20 of 20 images", "fitting the Gaussian mixture: 1 of 1 mixtures"]
    lines += ["IWAE bound (k=2): 20 of 20 images", "training the classifier (2 epochs): 40 of 40 images"]
    assert all(line in said for line in lines), said
    assert torch.is_tensor(posterior_means(model, images))
