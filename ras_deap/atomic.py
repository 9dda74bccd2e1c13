"""Atomic file writes: a reader (or a resumed run after a crash) sees the old
file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["read_json_if_valid", "write_atomic", "write_bytes_atomic"]


def write_bytes_atomic(path: Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(fh)`` on a temporary file beside ``path``, fsync it and
    rename it over ``path``; on any error the temporary file is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes_atomic(path, lambda fh: fh.write(text.encode()))


def read_json_if_valid(path: Path) -> Any:
    """The JSON stored at ``path``, or None if there is no file or it is not
    JSON (a result that was never finished is computed again, not trusted)."""
    import json

    if not Path(path).is_file():
        return None
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
