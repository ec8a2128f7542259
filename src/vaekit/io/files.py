"""Writing files so that a crash never leaves half of one: written beside, then renamed over."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: Path, content: str | bytes) -> Path:
    """``path`` holds ``content`` or its old content, never a mix: written to a temporary file in the
    same folder, flushed to disk, then renamed over ``path`` (mode as the umask says)."""
    data = content.encode() if isinstance(content, str) else content
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o666 & ~umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def require_writable(path: Path) -> None:
    """``path`` can be written (its folder exists and takes a file), checked before long work
    whose result would go there; an ``OSError`` naming it otherwise."""
    try:
        descriptor, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
    except OSError as err:
        raise OSError(f"{path}: cannot write there ({err.strerror or err})") from None
    os.close(descriptor)
    os.unlink(probe)


def umask() -> int:
    """The process's umask (read without changing it for longer than the call)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def settle(folder: Path) -> None:
    """Every file under ``folder`` flushed to disk, it and its folders given the modes the umask
    says (``mkdtemp`` makes 0700, ``mkstemp`` and some writers 0600): ready to be renamed into place."""
    mask = umask()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
            os.chmod(path, 0o666 & ~mask)
        elif path.is_dir():
            os.chmod(path, 0o777 & ~mask)
    os.chmod(folder, 0o777 & ~mask)


def replace_folder(final: Path, write: Callable[[Path], object], keep_others: bool = True) -> Path:
    """``final`` replaced as a whole by the folder ``write(temporary)`` fills: a crash leaves the old
    folder or the new one (or, between two renames, the old one beside it as ``.NAME-old-*``), never
    a mix of both. With ``keep_others``, files of the old folder that ``write`` did not make
    are copied into the new one (e.g. attribute vectors saved beside a model)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{final.name}-new-", dir=final.parent))
    try:
        write(temporary)
        settle(temporary)
        old = None
        if final.exists():
            if keep_others:
                for path in final.iterdir():
                    if not (temporary / path.name).exists():
                        copy = shutil.copytree if path.is_dir() else shutil.copy2
                        copy(path, temporary / path.name)
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}-old-", dir=final.parent))
            os.replace(final, old / final.name)
        os.replace(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


def remove_partial_folders(parent: Path, name: str) -> None:
    """What an interrupted ``replace_folder(parent / name, ...)`` left beside it."""
    if parent.is_dir():
        for path in parent.glob(f".{name}-*-*"):
            shutil.rmtree(path, ignore_errors=True)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine is running."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
