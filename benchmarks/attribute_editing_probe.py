"""Does attribute editing work? Measure it with a linear probe instead of by eye.

    python benchmarks/attribute_editing_probe.py RUN --attr Smiling --strength 1.5

On the run's own data (a CelebA folder): attribute vectors from the train split; a logistic
regression on train-split posterior means predicting the attribute; then each test portrait is
edited by +strength, 0 and -strength, decoded, *re-encoded*, and scored by the probe. Editing works
if the mean probe score rises with +strength and falls with -strength. Writes RUN/probe-<attr>.json
and RUN/probe-<attr>.png (test portraits: original, then the strengths of a sweep).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

import vaekit
from vaekit.data import BatchLoader, load_dataset
from vaekit.explore.attributes import compute_attribute_vectors, edit_latent, posterior_means
from vaekit.explore.grids import save_grid


@torch.no_grad()
def edited_means(model, images: np.ndarray, direction: dict, batch_size: int = 128) -> torch.Tensor:
    """Posterior means of the decodes of edited latents (edit, decode, re-encode)."""
    out = []
    for batch in BatchLoader(images, batch_size, shuffle=False, drop_last=False):
        z = edit_latent(model.embed(batch), direction["vectors"], direction["strengths"])
        out.append(model.embed(model.to_image(z)).flatten(1))
    return torch.cat(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--attr", default="Smiling")
    parser.add_argument("--strength", type=float, default=1.5)
    parser.add_argument("--max-test", type=int, default=600)
    args = parser.parse_args()
    torch.manual_seed(0)

    model = vaekit.load(args.run)
    config = model.config.data
    data = load_dataset(config)
    train, test = data.split("train"), data.split("test")
    test = test.subset(np.arange(min(args.max_test, len(test))))
    column = train.label_names.index(args.attr)

    vectors = compute_attribute_vectors(model, train, [args.attr])
    train_means = posterior_means(model, train.images).flatten(1).numpy()
    probe = LogisticRegression(max_iter=2000, C=0.1).fit(train_means, train.labels[:, column] > 0)
    test_means = posterior_means(model, test.images).flatten(1).numpy()
    accuracy = probe.score(test_means, test.labels[:, column] > 0)

    scores = {}
    for strength in (-args.strength, 0.0, args.strength):
        means = edited_means(model, test.images, {"vectors": vectors, "strengths": {args.attr: strength}})
        scores[f"{strength:+.1f}"] = float(probe.predict_proba(means.numpy())[:, 1].mean())
    result = {
        "run": str(args.run),
        "attribute": args.attr,
        "vector_counts": vectors.counts[args.attr],
        "probe_test_accuracy_on_unedited_latents": accuracy,
        "test_portraits": len(test),
        "mean_probe_probability_after_edit": scores,
    }
    (args.run / f"probe-{args.attr}.json").write_text(json.dumps(result, indent=2))

    sweep = np.linspace(-2 * args.strength, 2 * args.strength, 7).tolist()
    rows = []
    for image in next(iter(BatchLoader(test.images[:6], 6, shuffle=False))):
        z = model.embed(image[None])
        edits = torch.cat([edit_latent(z, vectors, {args.attr: s}) for s in sweep])
        rows.append(torch.cat([image[None], model.to_image(edits)]))
    save_grid(torch.cat(rows), args.run / f"probe-{args.attr}.png", nrow=len(sweep) + 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
