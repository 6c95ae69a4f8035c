"""Atomic writes: a temporary file in the same folder, then ``os.replace``.

A reader, or a run killed at any moment, sees either the previous file or the new
one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)
# The mode a new file gets (0644 under the usual umask 022); mkstemp's files get 0600.
FILE_MODE = 0o666 & ~_UMASK


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it over."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        # mkstemp makes 0600, and a writer may make its file anew (safetensors does): give
        # the finished file the mode any new file gets, 0644 under the usual umask.
        os.chmod(tmp, FILE_MODE)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path, data) -> None:
    write_text(path, json.dumps(data, indent=2, allow_nan=False, default=str) + "\n")
