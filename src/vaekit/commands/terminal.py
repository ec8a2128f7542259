"""What reaches the terminal: control characters (an escape sequence in a file's name or a run's
path) escaped, in every line a command prints, every warning and every error."""

from __future__ import annotations

import re
import sys

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Text for a terminal: control characters (an escape sequence in a file's name) as ``\\xNN``."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


class Printable:
    """A text stream that writes ``printable`` text: a run path or a cache alias holding an escape
    sequence reaches the terminal as ``\\x1b``, not as a command to it."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(printable(text))
        return len(text)

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as ``vaekit: warning: ...``, control characters escaped, no source line."""
    print(f"vaekit: warning: {printable(str(message))}", file=file or sys.stderr)
