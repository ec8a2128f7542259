"""The Hugging Face Hub: a model folder from a repository id, and a folder pushed to one."""

from __future__ import annotations

import re
from pathlib import Path

from vaekit.optional import require

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


HUB_PREFIX = "hf://"


def hub_id(text: str) -> str | None:
    """The Hub repository ``text`` names, or None for a local path. ``hf://owner/name`` always names
    the Hub; a bare ``owner/name`` only when nothing local could be meant: no such path, and no
    local folder ``owner`` either (``runs/bsae`` beside a ``runs/`` folder is a mistyped run, never a
    stranger's model)."""
    if text.startswith(HUB_PREFIX):
        return text[len(HUB_PREFIX) :]
    if not _HUB_ID.match(text) or Path(text).exists() or Path(text.split("/")[0]).is_dir():
        return None
    return text


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
