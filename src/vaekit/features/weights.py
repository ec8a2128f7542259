"""Find, verify and read pretrained weights: a local file, ``$VAEKIT_WEIGHTS``, torch.hub's cache, or
the standard public URL (into that cache). Without any of them, one error names the file and where
to put it. Files whose names carry a hash prefix (torchvision's convention) are checked against it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file


class WeightsNotFound(FileNotFoundError):
    """Pretrained weights are neither on disk nor downloadable; the message says what to do."""


@dataclass(frozen=True)
class PretrainedWeights:
    name: str
    filename: str
    url: str
    sha256_prefix: str | None = None


VGG16 = PretrainedWeights(
    "VGG16 (torchvision)", "vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth", "397923af"
)
VGG19 = PretrainedWeights(
    "VGG19 (torchvision)", "vgg19-dcbb9e9d.pth", "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", "dcbb9e9d"
)
ALEXNET = PretrainedWeights(
    "AlexNet (torchvision)",
    "alexnet-owt-7be5be79.pth",
    "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "7be5be79",
)
FID_INCEPTION = PretrainedWeights(
    "FID Inception v3 (pytorch-fid)",
    "pt_inception-2015-12-05-6726825d.pth",
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
    "6726825d",
)
LPIPS_VGG = PretrainedWeights(
    "LPIPS v0.1 linear layers (VGG)",
    "lpips-v0.1-vgg.pth",
    "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth",
)
LPIPS_ALEX = PretrainedWeights(
    "LPIPS v0.1 linear layers (AlexNet)",
    "lpips-v0.1-alex.pth",
    "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth",
)


def hub_checkpoints() -> Path:
    """torch.hub's checkpoint cache (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def locate(spec: PretrainedWeights, path: str | Path | None = None, download: bool = True) -> Path:
    """The verified file for ``spec``: ``path`` if given, else the first found in
    ``$VAEKIT_WEIGHTS`` and torch.hub's cache, else downloaded there."""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise WeightsNotFound(f"{spec.name}: no file at {path}")
        verify(spec, path)
        return path
    folders = [Path(os.environ["VAEKIT_WEIGHTS"])] if os.environ.get("VAEKIT_WEIGHTS") else []
    folders.append(hub_checkpoints())
    for folder in folders:
        candidate = folder / spec.filename
        if candidate.is_file():
            verify(spec, candidate)
            return candidate
    target = hub_checkpoints() / spec.filename
    problem = "downloads are off"
    if download and not os.environ.get("VAEKIT_OFFLINE"):
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(spec.url, str(target), hash_prefix=spec.sha256_prefix, progress=True)
            return target
        except Exception as err:  # any network or hash failure becomes the one clear message below
            problem = f"download failed: {err}"
    raise WeightsNotFound(
        f"pretrained weights for {spec.name} not found ({problem}). Put {spec.filename} "
        f"(from {spec.url}) in {target.parent}/ or in $VAEKIT_WEIGHTS, or pass its path."
    )


def verify(spec: PretrainedWeights, path: Path) -> None:
    """Check the file's sha256 against the prefix the spec carries (if any)."""
    if spec.sha256_prefix is None:
        return
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if not digest.hexdigest().startswith(spec.sha256_prefix):
        raise WeightsNotFound(
            f"{path} is not the published {spec.name} file (sha256 does not start with {spec.sha256_prefix}); "
            f"delete it and fetch {spec.url}"
        )


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a ``.safetensors`` file or a ``.pth`` state dict (no arbitrary unpickling)."""
    if path.suffix == ".safetensors":
        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def load_pretrained(
    module: torch.nn.Module, state: dict[str, torch.Tensor], source: str, ignore: tuple[str, ...] = ()
) -> None:
    """Load ``state`` into ``module`` strictly, except keys starting with ``ignore`` prefixes;
    a mismatch names the keys and the file."""
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.startswith(ignore)}
    own = module.state_dict()
    for key in own:  # checkpoints older than BatchNorm's counter lack it; torch itself tolerates that
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = own[key]
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or wrong:
        raise WeightsNotFound(
            f"{source} does not match {type(module).__name__}: missing {missing[:3]}, unexpected {unexpected[:3]}, "
            f"wrong shape {wrong[:3]}"
        )
    module.load_state_dict(state)
