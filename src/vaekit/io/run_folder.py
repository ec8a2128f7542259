"""The layout of a run directory and its metrics log.

```
RUN/config.yaml        the full, resolved configuration
RUN/checkpoints/       step-XXXXXXXX/ folders (see checkpoint.py)
RUN/metrics.csv        one row per log interval (split=train) and per epoch (split=val)
RUN/images/            recon-epoch-NNN.png and samples-epoch-NNN.png
RUN/curves.png         loss / KL curves
RUN/model/             final weights + config.yaml, read by vaekit.load(RUN)
RUN/.lock              pid and host of the process training into RUN (one writer per run)
RUN/.vaekit-run        vaekit's record that the folder is a run it made (what --overwrite checks)
```

``RunDir.start`` is the one door through which a run begins in a folder (train, demo, a fork): it
takes the lock first, then refuses, or clears only what vaekit wrote there: the run files named
above, and inside its folders only the entries vaekit names (``OWN``: checkpoints, grids, the model
folder's files; the trackers' folders whole). Anything else a user put there stays, and is named.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import os
import re
import shutil
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path

from vaekit.io.files import process_alive, write_atomically
from vaekit.schema import ConfigError

ARTEFACTS = (
    "config.yaml",
    "metrics.csv",
    "checkpoints",
    "images",
    "curves.png",
    "model",
    "tensorboard",
    "mlruns",
    "wandb",
    "interpolation.gif",
)
MARKER = ".vaekit-run"
MARKER_FORMAT = "vaekit run folder"  # the record's first key: an empty or hand-made file is not one
OWN = {  # what vaekit writes inside each folder of a run: the only entries --overwrite removes there
    "checkpoints": re.compile(r"step-\d{8}|\.tmp-[\w.-]+"),
    "images": re.compile(r"(recon|samples)-[\w.-]+\.png|[\w.-]+\.gif"),
    "model": re.compile(
        r"model\.safetensors|config\.yaml|README\.md|vaekit\.json|sampler-[\w-]+\.safetensors"
        r"|attributes\.(safetensors|json)|\.[\w.-]+\.partial"
    ),
}
WHOLE = ("tensorboard", "mlruns", "wandb")  # written by the trackers' own libraries into folders vaekit made


class RunInUse(RuntimeError):
    """Another live process is training into this run folder."""


class RunExists(ConfigError):
    """The folder already holds a run and neither --resume nor --overwrite was given."""


class NotARun(ConfigError):
    """--overwrite was asked of a folder whose files vaekit did not write."""


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

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    def artefacts(self) -> list[str]:
        """The run files already in the folder."""
        return [name for name in ARTEFACTS if (self.root / name).exists()]

    def write_config(self, text: str, reasons: str | None, *, keep_comments: bool) -> None:
        """config.yaml, below ``reasons`` (what was chosen from the data and why) as comments, or,
        with ``keep_comments`` (a resume), below the comments the file already starts with. Written
        aside and renamed, so a crash never leaves half a config."""
        if reasons:
            comments = "".join(f"# {line.strip()}\n" for line in reasons.splitlines())
        elif keep_comments and self.config.exists():
            lines = self.config.read_text().splitlines(keepends=True)
            comments = "".join(itertools.takewhile(lambda line: line.startswith("#"), lines))
        else:
            comments = ""
        write_atomically(self.config, comments + text)

    @property
    def marker(self) -> Path:
        return self.root / MARKER

    def start(self, *, overwrite: bool) -> None:
        """Begin a fresh run here: take the lock, then refuse if a run is already here, or
        (``overwrite``) remove the files vaekit wrote for it, and only those; the lock stays held."""
        self.lock()
        try:
            found = self.artefacts()
            if found and not overwrite:
                raise RunExists(
                    f"{self.root} already holds a run ({', '.join(found)}): continue it with --resume {self.root}, "
                    "pick another --out, or start over with --overwrite"
                )
            if found and not self.is_marked():
                raise NotARun(
                    f"{self.root} holds {', '.join(found)} that vaekit did not write (no {MARKER} of vaekit's): "
                    "--overwrite removes only a vaekit run's own files; pick another --out"
                )
            kept = [path for name in found for path in _remove_own(self.root / name)]
            if kept:
                shown = ", ".join(str(path.relative_to(self.root)) for path in kept[:3])
                warnings.warn(
                    f"{self.root}: kept {len(kept)} file(s) that vaekit did not write ({shown}"
                    + (", ..." if len(kept) > 3 else "")
                    + ")",
                    stacklevel=2,
                )
            self.mark()
        except BaseException:
            self.unlock()
            raise

    def mark(self) -> None:
        """Record that this folder is a run vaekit made (what ``start(overwrite=True)`` checks)."""
        if not self.is_marked():
            write_atomically(self.marker, json.dumps({"format": MARKER_FORMAT, "artefacts": list(ARTEFACTS)}) + "\n")

    def is_marked(self) -> bool:
        """The folder holds vaekit's record (this version's, or the names list earlier versions wrote)."""
        try:
            text = self.marker.read_text()[:4096]
        except (OSError, UnicodeDecodeError):
            return False
        if text.strip() and set(text.split()) <= set(ARTEFACTS):
            return True  # the record of vaekit 0.2.0 and earlier: a subset of the run's names
        try:
            record = json.loads(text)
        except ValueError:
            return False
        return isinstance(record, dict) and record.get("format") == MARKER_FORMAT

    def remove_own_files(self) -> None:
        """Undo a start that failed before any checkpoint: the run's own files, then the folder if empty."""
        for name in self.artefacts():
            _remove_own(self.root / name)
        self.marker.unlink(missing_ok=True)
        self.unlock()
        with contextlib.suppress(OSError):
            self.root.rmdir()  # only when nothing else is in it

    def lock(self) -> None:
        """Take the run's lock (pid + host); a stale lock of a dead process is taken over with a warning."""
        self.root.mkdir(parents=True, exist_ok=True)
        me = f"{os.getpid()} {socket.gethostname()}"
        for _ in range(2):
            try:
                descriptor = os.open(self.lock_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self.lock_file.read_text(errors="replace").split()
                pid, host = (
                    (int(owner[0]) if owner and owner[0].isdigit() else -1),
                    (owner[1] if len(owner) > 1 else "?"),
                )
                if host == socket.gethostname() and (pid == os.getpid() or not process_alive(pid)):
                    if pid != os.getpid():
                        warnings.warn(
                            f"{self.lock_file}: taking over the lock of process {pid}, which is gone", stacklevel=2
                        )
                    self.lock_file.unlink(missing_ok=True)
                    continue
                raise RunInUse(
                    f"{self.root} is being trained by process {pid} on {host}; wait for it, or delete "
                    f"{self.lock_file} if that process is gone"
                ) from None
            with os.fdopen(descriptor, "w") as handle:
                handle.write(me + "\n")
            return

    def unlock(self) -> None:
        try:
            if self.lock_file.read_text().split()[:1] == [str(os.getpid())]:
                self.lock_file.unlink()
        except OSError:
            pass


def fork_run(source: RunDir, target: RunDir) -> None:
    """Start ``target`` as a copy of ``source``'s state (config, metrics, grids, checkpoints);
    ``source`` is only read."""
    if target.root.resolve() == source.root.resolve():
        return
    target.start(overwrite=False)  # the lock stays with this process, which trains the fork next
    for name in ("config.yaml", "metrics.csv", "curves.png"):
        if (source.root / name).is_file():
            shutil.copy2(source.root / name, target.root / name)
    for name in ("checkpoints", "images"):
        if (source.root / name).is_dir():
            shutil.copytree(source.root / name, target.root / name, ignore=shutil.ignore_patterns(".tmp-*"))


def _remove(path: Path) -> None:
    """A run file or folder (a link is removed, never followed)."""
    shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def _remove_own(path: Path) -> list[Path]:
    """Remove what vaekit wrote at ``path`` (one of ``ARTEFACTS``): a file or a tracker's folder
    whole, else the entries of the folder that ``OWN`` names, and the folder once it is empty.
    Returns the files kept (a user's own)."""
    if path.is_symlink() or not path.is_dir() or path.name in WHOLE:
        _remove(path)
        return []
    own = OWN.get(path.name)
    kept: list[Path] = []
    for entry in sorted(path.iterdir()):
        if own is not None and own.fullmatch(entry.name):
            _remove(entry)
        else:
            kept += [entry] if not entry.is_dir() or entry.is_symlink() else sorted(entry.rglob("*")) or [entry]
    if not kept:
        path.rmdir()
    return kept


MAX_ROW_CHARS = 64 * 1024  # a metrics row is far shorter; a longer line is damage, dropped like it
BASE_COLUMNS = ("step", "epoch", "split", "elapsed_s", "lr", "images_per_s")


class MetricsLog:
    """Append-only CSV of scalars with a fixed set of columns.

    On resume, rows after the checkpoint's step are dropped so that the log matches the weights.
    """

    def __init__(self, path: Path, metric_names: tuple[str, ...], resume_step: int | None = None) -> None:
        self.path = path
        self.columns = list(BASE_COLUMNS) + list(dict.fromkeys(m for m in metric_names if m not in BASE_COLUMNS))
        if resume_step is not None and path.is_file():
            self.truncate_after(resume_step)
        else:
            self._rewrite([])

    def truncate_after(self, step: int) -> None:
        """Drop the rows after ``step`` (a resume or a rollback to that step's checkpoint), and any
        a crash left unreadable, so that the log matches the weights."""
        with open(self.path, newline="", errors="replace") as handle:
            lines = (line.replace("\0", "") for line in handle)
            read = list(csv.DictReader(line if len(line) < MAX_ROW_CHARS else "damaged\n" for line in lines))
        rows = [r for r in read if str(r.get("step") or "").isdigit() and int(r["step"]) <= step]
        if any(not str(r.get("step") or "").isdigit() for r in read):
            warnings.warn(
                f"{self.path}: dropped unreadable row(s) (a crash can leave them); the weights are fine", stacklevel=2
            )
        self._rewrite(rows)

    def _rewrite(self, rows: list[dict]) -> None:
        """The log replaced as a whole (written beside, renamed): a crash keeps the old one."""
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, self.columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        write_atomically(self.path, text.getvalue())

    def write(self, row: dict) -> None:
        with open(self.path, "a", newline="") as handle:
            csv.DictWriter(handle, self.columns, extrasaction="ignore").writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
            )

    def read(self) -> list[dict]:
        with open(self.path, newline="") as handle:
            return list(csv.DictReader(handle))


def plot_curves(
    rows: list[dict],
    path: Path,
    names: tuple[str, ...] = ("loss", "neg_elbo", "nll", "kl", "code_usage", "perplexity"),
) -> Path | None:
    """One panel per metric with train and val curves against step (a tokenizer's code usage and
    perplexity too)."""
    names = tuple(n for n in names if any(r.get(n) for r in rows))
    if not names:
        return None
    from matplotlib.figure import Figure  # no pyplot: the user's backend and state stay untouched

    fig = Figure(figsize=(4 * len(names), 3.2))
    # fixed margins: tight_layout measured every label and took a third of a plot's time
    fig.subplots_adjust(left=0.08 / len(names) + 0.04, right=0.98, bottom=0.16, top=0.9, wspace=0.3)
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
    fig.savefig(path, dpi=90)
    return path
