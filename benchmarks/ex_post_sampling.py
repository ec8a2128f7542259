"""Samples from the prior against samples from an ex-post Gaussian mixture, on one trained model.

    python benchmarks/ex_post_sampling.py --preset conv-mnist --data ../shared/data/mnist \
        --minutes 4 --out benchmarks/results/expost-mnist

Trains the preset for ``--minutes`` (or reuses OUT if it holds a finished run), trains the domain
classifier whose features FID / KID use (Inception weights cannot be downloaded here), fits the GMM
sampler on the train split's posterior means (components by BIC), then scores sample FID / KID with
the prior and with the mixture (same seed, same held-out images), the prior-hole figure and the
discretised 8-bit NLL (IWAE). Writes OUT/ex-post.json and prints one Markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import torch

import vaekit
from vaekit.config import DataConfig
from vaekit.data import load_dataset
from vaekit.data.labels import classes_from_folders
from vaekit.features.classifier import save_classifier, train_classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=4.0, help="training budget")
    parser.add_argument("--samples", type=int, default=2000, help="generated images per FID / KID")
    parser.add_argument("--images", type=int, default=2000, help="held-out images scored")
    parser.add_argument("--k", type=int, default=50, help="importance samples of the IWAE bound")
    args = parser.parse_args()

    started = time.perf_counter()
    if not (args.out / "model" / "model.safetensors").is_file():
        vaekit.train(
            preset=args.preset, data=args.data, out=args.out, overrides=[f"train.max_time={args.minutes * 60:.0f}"]
        )
    trained_s = time.perf_counter() - started
    model = vaekit.load(args.out)
    data = model.config.data
    classifier = args.out / "domain-classifier.safetensors"
    if not classifier.is_file():
        labelled = load_dataset(DataConfig(source=data.source, image_size=data.image_size, crop=data.crop))
        labelled = labelled if labelled.labels is not None else classes_from_folders(labelled)
        network, accuracy = train_classifier(labelled.split("train"), labelled.split("test"), epochs=2)
        save_classifier(network, classifier)
        print(f"domain classifier: test accuracy {accuracy:.4f}")

    fit_started = time.perf_counter()
    mixture = vaekit.fit_sampler(args.out)
    fit_s = time.perf_counter() - fit_started
    settings = {"n_samples": args.samples, "max_images": args.images, "features": str(classifier), "iwae_k": args.k}
    scores = {}
    for sampler in ("prior", "gmm"):
        metrics = ["fid", "kid", "prdc"] + (["prior_hole", "nll", "elbo"] if sampler == "prior" else [])
        report = vaekit.evaluate(args.out, metrics=metrics, sampler=sampler, **settings)
        scores[sampler] = report["metrics"]
    result = {
        "preset": args.preset,
        "trained_s": round(trained_s, 1),
        "gmm": {"components": len(mixture.weights), "full": mixture.full, "fitted_on": mixture.fitted_on,
                "fit_s": round(fit_s, 1)},
        "scores": scores,
        "likelihood_units": report["model"]["likelihood_units"],
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "date": date.today().isoformat(),
    }  # fmt: skip
    (args.out / "ex-post.json").write_text(json.dumps(result, indent=2, default=float))
    prior, gmm = scores["prior"], scores["gmm"]
    print("| sampler | FID | KID | precision | recall | density | coverage |")
    print("|---|---|---|---|---|---|---|")
    for name, values in (("prior N(0, I)", prior), (f"GMM, {len(mixture.weights)} components", gmm)):
        generation = values["generation"]
        spread = f" ± {generation['kid_std']:.4f}" if "kid_std" in generation else ""
        quality = " | ".join(f"{generation[key]:.3f}" for key in ("precision", "recall", "density", "coverage"))
        print(f"| {name} | {generation['fid']:.3f} | {generation['kid']:.4f}{spread} | {quality} |")
    print(f"prior hole: {prior['prior_hole']}")
    print(f"elbo: {prior['elbo']}")
    print(f"iwae: {prior['nll']}")


if __name__ == "__main__":
    main()
