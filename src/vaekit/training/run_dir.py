"""The layout of a run directory and its metrics log.

```
RUN/config.yaml        the full, resolved configuration
RUN/checkpoints/       step-XXXXXXXX/ folders (see checkpoint.py)
RUN/metrics.csv        one row per log interval (split=train) and per epoch (split=val)
RUN/images/            recon-epoch-NNN.png and samples-epoch-NNN.png
RUN/curves.png         loss / KL curves
RUN/model/             final weights + config.yaml, read by vaekit.load(RUN)
```
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.csv"

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def curves(self) -> Path:
        return self.root / "curves.png"

    @property
    def model(self) -> Path:
        return self.root / "model"


BASE_COLUMNS = ("step", "epoch", "split", "elapsed_s", "lr", "images_per_s")


class MetricsLog:
    """Append-only CSV of scalars with a fixed set of columns.

    On resume, rows after the checkpoint's step are dropped so that the log matches the weights.
    """

    def __init__(self, path: Path, metric_names: tuple[str, ...], resume_step: int | None = None) -> None:
        self.path = path
        self.columns = list(BASE_COLUMNS) + [m for m in metric_names if m not in BASE_COLUMNS]
        rows = []
        if resume_step is not None and path.is_file():
            with open(path, newline="") as handle:
                rows = [r for r in csv.DictReader(handle) if int(r["step"]) <= resume_step]
        self._rewrite(rows)

    def _rewrite(self, rows: list[dict]) -> None:
        with open(self.path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, self.columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    def write(self, row: dict) -> None:
        with open(self.path, "a", newline="") as handle:
            csv.DictWriter(handle, self.columns, extrasaction="ignore").writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
            )

    def read(self) -> list[dict]:
        with open(self.path, newline="") as handle:
            return list(csv.DictReader(handle))


def plot_curves(
    rows: list[dict], path: Path, names: tuple[str, ...] = ("loss", "neg_elbo", "nll", "kl")
) -> Path | None:
    """One panel per metric with train and val curves against step."""
    names = tuple(n for n in names if any(r.get(n) for r in rows))
    if not names:
        return None
    from matplotlib.figure import Figure  # no pyplot: the user's backend and state stay untouched

    fig = Figure(figsize=(4 * len(names), 3.2))
    axes = fig.subplots(1, len(names), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for split, style in (("train", "-"), ("val", "o-")):
            points = [(int(r["step"]), float(r[name])) for r in rows if r["split"] == split and r.get(name)]
            if points:
                ax.plot(*zip(*points, strict=True), style, label=split, markersize=3)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path
