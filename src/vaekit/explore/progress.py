"""A GIF of training progress from the grids a run writes to ``images/`` (per epoch, and at the end)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vaekit.data.reader import read_image
from vaekit.explore.interpolation import save_gif


def progress_gif(run: Path | str, output: Path | str, kind: str = "samples", frame_ms: int = 400) -> Path:
    """Animate ``images/<kind>-epoch-*.png`` in epoch order, then ``<kind>-final.png``, each frame
    labelled; a run shorter than one epoch has its final grid alone."""
    if kind not in ("samples", "recon"):
        raise ValueError(f"kind must be samples or recon, got {kind!r}")
    folder = Path(run, "images")
    grids = [(f"epoch {int(path.stem.rsplit('-', 1)[1])}", path) for path in sorted(folder.glob(f"{kind}-epoch-*.png"))]
    if (folder / f"{kind}-final.png").is_file():
        grids.append(("final", folder / f"{kind}-final.png"))
    if not grids:
        raise FileNotFoundError(f"{run}: no images/{kind}-*.png grids (is it a vaekit run that has finished an epoch?)")
    frames = []
    for label, path in grids:
        picture = read_image(path).convert("RGB")
        labelled = Image.new("RGB", (picture.width, picture.height + 14), "white")
        labelled.paste(picture, (0, 14))
        ImageDraw.Draw(labelled).text((2, 1), label, fill="black")
        frames.append(np.asarray(labelled))
    return save_gif(frames, output, frame_ms=frame_ms, hold_ms=frame_ms * 3, pingpong=False)
