"""The Hugging Face Hub: a model folder from a repository id, and a folder pushed to one."""

from __future__ import annotations

import re
from pathlib import Path

from vaekit.optional import require

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


HUB_PREFIX = "hf://"


def hub_id(text: str) -> str | None:
    """The Hub repository ``text`` names (``hf://owner/name``), or None: anything else is a local
    path. A mistyped run folder (``runs/no-such-run``) never reaches the network, where anyone could
    have published a model under that name. (``hf:/owner/name`` is the same name after a path
    normalised its double slash.)"""
    for prefix in (HUB_PREFIX, "hf:/"):
        if text.startswith(prefix) and _HUB_ID.match(text[len(prefix) :]):
            return text[len(prefix) :]
    return None


def hub_snapshot(repo_id: str) -> Path:
    """A local copy of a Hub model repository (from the cache when offline)."""
    hub = require("huggingface_hub", "hub", f"{repo_id}: loading from the Hub")
    try:
        return Path(hub.snapshot_download(repo_id, allow_patterns=["*.safetensors", "*.yaml", "*.json", "*.md"]))
    except Exception as err:  # network, auth, not found: one line
        raise ValueError(f"{repo_id}: not a local folder, and the Hub could not provide it ({err})") from err


def push_to_hub(folder: Path, repo_id: str, private: bool = False) -> str:
    """Upload a model folder to the Hub; returns the repository URL."""
    api = require("huggingface_hub", "hub", "vaekit push").HfApi()
    url = api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message="Upload vaekit model")
    return str(url)
