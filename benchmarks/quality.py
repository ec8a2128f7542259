"""Quality suites: does each published system do what its paper claims, here?

    python benchmarks/quality.py SUITE [--scale cpu|gpu] [--minutes M] [--json OUT] [options]

Suites:
  toy2d               Soft-IntroVAE's 2-D density experiments (8 Gaussians, 2 spirals, checkerboard,
                      rings): VAE and Soft-IntroVAE trained through vaekit's public API (own MLP
                      modules, a tensor of points), scored with the official gnELBO / KL / JSD over
                      several seeds; with --reference PATH (the official soft_intro_vae_2d folder)
                      the official script is run unmodified with the same settings and seeds and
                      both tables are printed side by side.
                      Options: --dataset NAME|all --iterations N --seeds S [S ...] --reference PATH
  intro-mnist         Soft-IntroVAE and AS-IntroVAE against the ELBO VAE on MNIST, same network and
                      data: sample KID / FID in a classifier's features and reconstruction PSNR,
                      every --every minutes up to --minutes.
  style-celeba        The style-based decoder against the conv decoder on CelebA 64 px at equal
                      wall-clock, same likelihood: PSNR, SSIM, sample KID in a face-attribute
                      network's features.
  as-intro-paintings  AS-IntroVAE against the ELBO VAE on the 52 landscape paintings at 64 px, equal
                      wall-clock: PSNR / SSIM on the training paintings (3 would be held out), sample
                      and interpolation grids.

Each suite trains what it compares under the same budget, one after another or with --parallel all
at once (a process each: on a CPU each gets its own --threads cores, on a GPU they share it;
--systems picks some), reports wall-clock, steps and the FLOPs of a step (torch's count; TFLOP/s
achieved), evaluates on held-out data, writes every number and setting to --json and saves the grids
it shows next to it. --scale gpu runs the published sizes (on a GPU when one is present). --data
points at the datasets' folder (default: shared/data beside the project).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import torch
from budget import scores, step_flops, train_for

import vaekit
from vaekit.data.toy2d import OFFICIAL_NAMES, TOY2D_DATASETS, grid_range, sample_toy2d
from vaekit.evaluation.density2d import grid_normalized_elbo, histogram_jsd, histogram_kl
from vaekit.explore.grids import save_grid
from vaekit.models.mlp import MLPDecoder, MLPEncoder
from vaekit.training.callbacks import Callback

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "quality"

# ----------------------------------------------------------------------------------------- toy2d
# the official README's recommended settings: beta_kl, beta_rec, beta_neg (z_dim 2, batch 512)
TOY2D_BETAS = {
    "8gaussians": (0.3, 0.2, 0.9),
    "2spirals": (0.5, 0.2, 1.0),
    "checkerboard": (0.1, 0.2, 0.2),
    "rings": (0.2, 0.2, 1.0),
}
TOY2D_EPOCHS, TOY2D_WARMUP = 30, 2  # the run in 30 epochs; official: 2k plain-VAE its of 30k (1/15)
TOY2D_MILESTONES = (10_000, 15_000)  # official: lr / 10 at these iterations, whatever the run's length
BATCH = 512


def toy2d_steps_per_epoch(iterations: int) -> int:
    """Updates per epoch: the run in ``TOY2D_EPOCHS`` epochs."""
    return max(1, -(-iterations // TOY2D_EPOCHS))


def toy2d_overrides(dataset: str, method: str, iterations: int, seed: int) -> list[str]:
    """The official schedule in vaekit settings: an epoch stands for 1/30 of the run, so the warm-up
    (1/15) falls on the same iterations. The official milestones are fixed iterations, beyond a run
    shorter than 10,000; vaekit's count epochs, so they fall on the first epoch boundary at or after
    them (exactly on them at 30,000 iterations)."""
    beta_kl, beta_rec, beta_neg = TOY2D_BETAS[dataset]
    steps_per_epoch = toy2d_steps_per_epoch(iterations)
    milestones = [-(-iteration // steps_per_epoch) for iteration in TOY2D_MILESTONES]
    common = [
        f"train.batch_size={BATCH}",
        "train.lr=2e-4",
        f"train.epochs={TOY2D_EPOCHS}",
        f"train.max_steps={iterations}",
        "train.lr_schedule=multistep",
        f"train.lr_milestones=[{milestones[0]}, {milestones[1]}]",
        "train.lr_gamma=0.1",
        f"train.seed={seed}",
        f"data.seed={seed}",
        f"data.val_fraction={BATCH / (steps_per_epoch * BATCH + BATCH):.6f}",
        "train.log_every=1000000",
        f"train.checkpoint_every={10 * iterations}",
    ]
    if method == "vae":
        # beta_rec ||x - x'||^2 + beta_kl KL  =  beta_rec (||x - x'||^2 / (2 * 0.5) + (beta_kl / beta_rec) KL)
        return [*common, "objective.name=elbo", f"objective.kl.weight={beta_kl / beta_rec}"]
    return [
        *common,
        "objective.name=soft-intro",
        f"objective.intro.beta_kl={beta_kl}",
        f"objective.intro.beta_rec={beta_rec}",
        f"objective.intro.beta_neg={beta_neg}",
        "objective.intro.gamma_r=1e-8",
        f"objective.intro.warmup_epochs={TOY2D_WARMUP}",
    ]


def toy2d_model() -> vaekit.VAE:
    """The official networks: 2 -> 256 -> 3 x 256 -> 4 (mean, logvar) and back, ReLU; a Gaussian with
    variance 1/2 around the decoder's output (its negative log-density is the squared error + const)."""
    return vaekit.VAE.from_modules(
        MLPEncoder(2, 2, 256, 3),
        MLPDecoder(2, 2, 256, 3),
        latent_shape=(2,),
        likelihood="gaussian",
        output="identity",
        scale=0.5**0.5,
        learn_scale=False,
        encoder_args={"inputs": 2, "latent": 2, "hidden": 256, "layers": 3},
        decoder_args={"latent": 2, "outputs": 2, "hidden": 256, "layers": 3},
    )


def toy2d_scores(model: vaekit.VAE, dataset: str, seed: int) -> dict[str, float]:
    """gnELBO on 100 x 128 fresh points, KL and JSD of 5,000 prior samples against 5,000 fresh points,
    as the official evaluation draws them."""
    half = grid_range(dataset)
    generator = torch.Generator().manual_seed(10_000 + seed)
    model.eval()
    with torch.no_grad():
        z = torch.randn(5000, 2, generator=generator)
        samples = model.likelihood.location(model.decode(z))
    return {
        "gnelbo": grid_normalized_elbo(model, sample_toy2d(dataset, 100 * 128, generator), half),
        "kl": histogram_kl(sample_toy2d(dataset, 5000, generator), samples, half),
        "jsd": histogram_jsd(sample_toy2d(dataset, 5000, generator), samples, half),
        "samples": samples,
    }


class FreshPoints(Callback):
    """New draws of the point set in place of the training points at each epoch's end, so that, as
    in the official script (a new batch every iteration), no point is trained on twice."""

    def __init__(self, dataset: str, seed: int) -> None:
        self.dataset, self.generator = dataset, torch.Generator().manual_seed(20_000 + seed)

    def on_validation(self, trainer, epoch, metrics, images) -> None:
        points = trainer.loader.images
        points[:] = sample_toy2d(self.dataset, len(points), self.generator).numpy()


def train_toy2d_vaekit(
    dataset: str, method: str, iterations: int, seed: int, out: Path, callbacks=()
) -> tuple[vaekit.VAE, float]:
    """The official run through vaekit's public API: the trained model and its training seconds."""
    points = sample_toy2d(
        dataset, toy2d_steps_per_epoch(iterations) * BATCH + BATCH, torch.Generator().manual_seed(seed)
    )
    model = toy2d_model()
    started = time.perf_counter()
    vaekit.train(
        data=points,
        model=model,
        out=out,
        overwrite=True,
        overrides=toy2d_overrides(dataset, method, iterations, seed),
        callbacks=[FreshPoints(dataset, seed), *callbacks],
    )
    return model, time.perf_counter() - started


def run_toy2d_vaekit(dataset: str, method: str, iterations: int, seed: int, out: Path) -> dict:
    model, seconds = train_toy2d_vaekit(dataset, method, iterations, seed, out)
    scores = toy2d_scores(model.cpu(), dataset, seed)
    return {"implementation": "vaekit", "train_s": seconds, "steps": iterations, **scores}


_OFFICIAL_LINE = re.compile(r"grid-normalized elbo: (\S+), kl: (\S+), jsd: (\S+)")


def run_toy2d_official(reference: Path, dataset: str, method: str, iterations: int, seed: int, threads: int) -> dict:
    """The official script, unmodified, in a scratch folder (it writes checkpoints and plots to its
    working directory); the VAE is its plain-VAE phase run for all iterations (--num_vae N)."""
    beta_kl, beta_rec, beta_neg = TOY2D_BETAS[dataset]
    warmup = iterations if method == "vae" else iterations * TOY2D_WARMUP // TOY2D_EPOCHS
    device = "0" if torch.cuda.is_available() else "-1"  # where vaekit trains too
    command = [sys.executable, str(reference.resolve() / "main.py"), "--device", device]
    command += ["--dataset", OFFICIAL_NAMES[dataset]]
    command += ["--num_iter", str(iterations), "--seed", str(seed), "--num_vae", str(warmup), "--lr", "2e-4"]
    command += ["--beta_kl", str(beta_kl), "--beta_rec", str(beta_rec), "--beta_neg", str(beta_neg)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "MPLBACKEND": "Agg"}
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        done = subprocess.run(command, cwd=scratch, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
    match = _OFFICIAL_LINE.search(done.stdout)
    if done.returncode or match is None:
        raise RuntimeError(f"the official script failed ({done.returncode}): {done.stderr[-2000:]}")
    gnelbo, kl, jsd = map(float, match.groups())
    return {
        "implementation": "official",
        "train_s": seconds,
        "steps": iterations,
        "gnelbo": gnelbo,
        "kl": kl,
        "jsd": jsd,
    }


def toy2d_run(job: tuple[str, str, str, int], args) -> dict:
    """One (implementation, dataset, method, seed) run, in this process or a pool's."""
    implementation, dataset, method, seed = job
    torch.set_num_threads(args.threads)
    if implementation == "vaekit":
        out = args.out / "toy2d" / f"{dataset}-{method}-{seed}"
        result = run_toy2d_vaekit(dataset, method, args.iterations, seed, out)
    else:
        result = run_toy2d_official(args.reference, dataset, method, args.iterations, seed, args.threads)
    row = {"dataset": dataset, "method": method, "seed": seed, **result}
    print(json.dumps({k: v for k, v in row.items() if k != "samples"}), flush=True)
    return row


def toy2d(args) -> dict:
    datasets = list(TOY2D_DATASETS) if args.dataset == "all" else [args.dataset]
    implementations = ["vaekit", "official"] if args.reference else ["vaekit"]
    # seed by seed, so that a run cut short has every cell for its first seeds
    jobs = [(i, d, m, s) for s in args.seeds for d in datasets for m in ("vae", "soft-intro") for i in implementations]
    if args.jobs > 1:  # spawn: a forked child would inherit CUDA state
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            runs = list(pool.map(toy2d_run, jobs, [args] * len(jobs)))
    else:
        runs = [toy2d_run(job, args) for job in jobs]
    samples = {(r["dataset"], r["method"]): r.pop("samples") for r in runs if "samples" in r}
    figure = args.out / "toy2d" / "toy2d-samples.png"
    plot_toy2d(datasets, samples, figure)
    table = summarise(runs, ("dataset", "method", "implementation"), ("gnelbo", "kl", "jsd", "train_s"))
    return {"runs": runs, "summary": table, "images": [str(figure)]}


def plot_toy2d(datasets: list[str], samples: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(3 * 3, 3 * len(datasets)))
    axes = figure.subplots(len(datasets), 3, squeeze=False)
    for row, dataset in enumerate(datasets):
        half = grid_range(dataset)
        shown = {"data": sample_toy2d(dataset, 5000, torch.Generator().manual_seed(0))}
        shown |= {method: samples[(dataset, method)] for method in ("vae", "soft-intro")}
        for ax, (name, points) in zip(axes[row], shown.items(), strict=True):
            ax.scatter(points[:, 0], points[:, 1], s=1, alpha=0.5)
            ax.set(xlim=(-half, half), ylim=(-half, half), xticks=[], yticks=[], title=f"{dataset}: {name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80, bbox_inches="tight")


def summarise(runs: list[dict], keys: tuple[str, ...], values: tuple[str, ...]) -> list[dict]:
    """Mean and standard deviation over seeds of ``values`` per combination of ``keys``."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault(tuple(run[k] for k in keys), []).append(run)
    rows = []
    for group, members in groups.items():
        row = dict(zip(keys, group, strict=True)) | {"seeds": len(members)}
        for value in values:
            numbers = [m[value] for m in members]
            row[value] = statistics.mean(numbers)
            row[f"{value}_std"] = statistics.stdev(numbers) if len(numbers) > 1 else 0.0
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------- image suites
def _need(path: Path) -> Path:
    if not path.exists():
        raise SystemExit(f"{path} is missing: the image suites need the shared datasets beside the project")
    return path


def feature_network(name: str, data: str, out: Path, image_size: int, epochs: int, crop: str = "none") -> Path:
    """A classifier trained with vaekit (``vaekit train-classifier``) whose penultimate layer gives
    the KID / FID features; reused when already there."""
    weights = out / f"classifier-{name}.safetensors"
    if not weights.exists():
        weights.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "vaekit", "train-classifier", "--data", data, "-o", str(weights)]
        command += ["--image-size", str(image_size), "--epochs", str(epochs), "--crop", crop]
        subprocess.run(command, check=True)
    return weights


@dataclass
class ImageSuite:
    """What an image suite compares: ``systems`` (name -> (preset, overrides)) trained on ``data``,
    scored on ``split``, with KID / FID in ``features`` when given."""

    data: str
    out: Path
    systems: dict[str, tuple[str, list[str]]]
    features: Path | None = None
    split: str = "test"
    baseline: str | None = None  # report where the others first beat it


def compare_at_equal_time(suite: ImageSuite, minutes: float, every: float, only: list[str] | None = None) -> list[dict]:
    """Train each system (those in ``only`` when given) in turn for ``every`` minutes at a time up to
    ``minutes``; evaluate after each segment; save sample and interpolation grids."""
    rows = []
    marks = [every * (i + 1) for i in range(round(minutes / every))]
    metrics = ["reconstruction", "kid", "fid"] if suite.features else ["reconstruction"]
    for name, (preset, overrides) in suite.systems.items():
        if only and name not in only:
            continue
        run = suite.out / name
        flops = step_flops(preset, suite.data, run, overrides)
        for i, mark in enumerate(marks):
            trained = train_for(preset, suite.data, run, mark * 60, overrides, resume=i > 0)
            achieved = {"step_gflop": flops / 1e9, "tflop_per_s": flops * trained["steps"] / trained["train_s"] / 1e12}
            scored = scores(run, suite.data, suite.features, metrics, split=suite.split)
            row = {"system": name, "minutes": mark, **trained, **achieved, **scored}
            rows.append(row)
            print(json.dumps(row), flush=True)
        save_grid(vaekit.sample(run, 64), suite.out / f"{name}-samples.png")
        frames = [vaekit.interpolate(run, steps=8, seed=seed) for seed in range(6)]  # between random latents
        save_grid(torch.cat(frames), suite.out / f"{name}-interpolations.png", nrow=8)
    return rows


def in_parallel(args, names: list[str]) -> list[dict]:
    """Run this script once per system at the same time (``--systems NAME``, its output in
    ``OUT/SUITE/NAME.log``) and gather the rows. On a CPU each process gets its own ``--threads``
    cores; on a GPU they share it."""
    cores = sorted(os.sched_getaffinity(0))
    pin = not torch.cuda.is_available() and len(names) * args.threads <= len(cores)
    folder = args.out / args.suite
    folder.mkdir(parents=True, exist_ok=True)
    children = []
    for i, name in enumerate(names):
        command = [sys.executable, __file__, args.suite, "--systems", name, "--json", str(folder / f"{name}.json")]
        for option in ("scale", "minutes", "every", "out", "threads", "data"):
            command += [f"--{option}", str(getattr(args, option))]
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        own = set(cores[i * args.threads : (i + 1) * args.threads])
        start = (lambda own=own: os.sched_setaffinity(0, own)) if pin else None
        with open(folder / f"{name}.log", "w") as log:
            children.append((name, subprocess.Popen(command, env=env, preexec_fn=start, stdout=log, stderr=log)))
    rows = []
    for name, child in children:
        if child.wait():
            tail = (folder / f"{name}.log").read_text()[-3000:]
            raise SystemExit(f"{args.suite} --systems {name} failed ({child.returncode}):\n{tail}")
        rows += json.loads((folder / f"{name}.json").read_text())["rows"]
    return rows


def run_image_suite(suite: ImageSuite, args) -> dict:
    only = args.systems or list(suite.systems)
    unknown = set(only) - set(suite.systems)
    if unknown:
        raise SystemExit(f"--systems {' '.join(sorted(unknown))}: {args.suite} has {', '.join(suite.systems)}")
    if args.parallel and len(only) > 1:
        rows = in_parallel(args, only)
    else:
        rows = compare_at_equal_time(suite, args.minutes, args.every, only)
    result: dict = {"rows": rows}
    if suite.baseline:
        result["crossings"] = crossings(rows, suite.baseline)
    return result


def intro_mnist(args) -> ImageSuite:
    data = str(_need(args.data / "mnist"))
    out = args.out / "intro-mnist"
    features = feature_network("mnist", data, out, 28, 3)
    same = ["train.precision=auto", f"train.threads={args.threads}"]  # bf16 where it is faster
    # a Gaussian of sigma 1/sqrt(2): the ELBO is then exactly the intro objectives' plain-VAE term
    # (summed squared error + KL), on the same resnet, z, batch and learning rate (the published ones)
    systems = {
        "elbo": ("soft-intro-mnist", [*same, "objective.name=elbo", "likelihood.scale=0.70710678"]),
        "soft-intro": ("soft-intro-mnist", same),
        "as-intro": ("soft-intro-mnist", [*same, "objective.name=as-intro"]),
    }
    return ImageSuite(data, out, systems, features, baseline="elbo")


def crossings(rows: list[dict], baseline: str) -> dict[str, dict[str, float | None]]:
    """For each system and metric, the first mark (minutes) at which it is better than ``baseline``
    (higher PSNR / SSIM, lower FID / KID), or ``None`` within the budget."""
    higher = {"reconstruction.psnr", "reconstruction.ssim"}
    lower = {"generation.fid", "generation.kid"}
    by = {(r["system"], r["minutes"]): r for r in rows}
    found: dict[str, dict[str, float | None]] = {}
    for system in {r["system"] for r in rows} - {baseline}:
        found[system] = {}
        for metric in sorted(higher | lower):
            marks = sorted(m for (s, m) in by if s == system and metric in by[(s, m)])
            better = [
                m
                for m in marks
                if (baseline, m) in by
                and metric in by[(baseline, m)]
                and (by[(system, m)][metric] > by[(baseline, m)][metric]) == (metric in higher)
            ]
            found[system][metric] = better[0] if better else None
    return found


def style_celeba(args) -> ImageSuite:
    data = str(_need(args.data / "celeba-subset"))
    out = args.out / "style-celeba"
    features = feature_network("celeba-attributes", data, out, 64, 12, crop="celeba-center140")
    same = ["train.precision=auto", f"train.threads={args.threads}"]  # bf16 where it is faster
    if args.scale == "cpu":
        style = ("style-celeba64-cpu", same)
    else:  # the published decoder (512 maps, z=256, 8 mapping layers) under conv-celeba64's Gaussian
        gaussian = ["likelihood.name=gaussian", "likelihood.scale=0.1", "objective.kl.weight=1.0"]
        style = ("style-celeba64", [*same, *gaussian, "train.lr=2e-4"])
    # the published recipe's perceptual loss, with the face-attribute network in VGG16's place
    perceptual = [
        "likelihood.name=perceptual",
        "likelihood.perceptual.network=classifier",
        f"likelihood.perceptual.weights={features}",
        "likelihood.perceptual.layers=[body.1, body.4, body.9]",
        "likelihood.perceptual.layer_weights=[1.0, 1.0, 1.0]",
        "likelihood.perceptual.resize=null",
        "likelihood.perceptual.imagenet_normalize=false",
    ]
    systems = {
        "style": style,
        "conv": ("conv-celeba64", same),
        "style-perceptual": (style[0], [*style[1], *perceptual]),
    }
    return ImageSuite(data, out, systems, features)


def as_intro_paintings(args) -> ImageSuite:
    data = str(_need(args.data / "bob-ross-paintings"))
    out = args.out / "as-intro-paintings"
    # scored on the 49 training paintings (the held-out split of 52 is 3 images): fit, not
    # generalisation. No sample KID: no network here judges paintings (the face-attribute network
    # rewards degenerate samples, see BENCHMARKS.md), so samples are judged from the grids
    preset = "as-intro-fantasy64"
    same = [f"train.threads={args.threads}", "train.precision=auto"]
    if args.scale == "cpu":  # half the published 64 px widths: ~4x the updates in the budget (0.27/s on one core)
        same += ["model.channels=[32, 64, 128, 256]", "model.latent_dim=128"]
    # the preset's plain-VAE term is 0.5 rec + KL: a Gaussian of sigma 1 gives the ELBO the same loss;
    # a decoder EMA of 0.995 (the preset's 0.999 averages over more updates than a 30-minute run makes);
    # the transition to the adversarial game (tanh over the planned 300 epochs) is complete by half of them
    systems = {
        "as-intro": (preset, [*same, "objective.intro.ema_decay=0.995"]),
        # its learning rate is constant, so its planned epochs only cap the run: the clock ends it
        "elbo": (preset, [*same, "objective.name=elbo", "likelihood.scale=1.0", "train.epochs=100000"]),
    }
    return ImageSuite(data, out, systems, split="train")


IMAGE_SUITES = {"intro-mnist": intro_mnist, "style-celeba": style_celeba, "as-intro-paintings": as_intro_paintings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", choices=["toy2d", *IMAGE_SUITES])
    parser.add_argument("--scale", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--minutes", type=float, default=30.0, help="training budget per system (image suites)")
    parser.add_argument("--every", type=float, default=5.0, help="image suites: evaluate every this many minutes")
    parser.add_argument("--json", type=Path, help="write every number and setting here")
    parser.add_argument("--out", type=Path, default=RESULTS, help="runs and grids")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--systems", nargs="+", help="image suites: train only these")
    parser.add_argument("--parallel", action="store_true", help="image suites: all at once, a process each")
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the datasets (mnist, ...)")
    parser.add_argument("--dataset", default="all", choices=["all", *TOY2D_DATASETS], help="toy2d")
    parser.add_argument("--iterations", type=int, default=30000, help="toy2d: updates per run (official: 30,000)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="toy2d")
    parser.add_argument("--jobs", type=int, default=1, help="toy2d: runs at a time (processes)")
    parser.add_argument("--reference", type=Path, help="toy2d: the official soft_intro_vae_2d folder, to run beside")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.scale == "gpu" and not torch.cuda.is_available():
        raise SystemExit("--scale gpu: no CUDA device here")
    if args.reference and not (args.reference / "main.py").exists():
        raise SystemExit(f"--reference {args.reference}: no main.py there (give the soft_intro_vae_2d folder)")
    started = time.perf_counter()
    result = toy2d(args) if args.suite == "toy2d" else run_image_suite(IMAGE_SUITES[args.suite](args), args)
    result["settings"] = {
        **{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "seconds": time.perf_counter() - started,
    }
    text = json.dumps(result, indent=2, default=float)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    print(text)


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    main()
