"""Atomic file writes: a reader (or a resumed run after a crash) sees the old
file or the new one, never half of one.

Every file the package writes goes through here (``tests/test_atomic.py``
scans the package for writes that do not): whole files are written beside
their target and renamed over it; journals grow by :func:`append_line` and are
read back by :func:`read_json_lines`, which drops a torn line."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

__all__ = ["append_line", "copy_atomic", "read_json_if_valid", "read_json_lines",
           "save_figure_atomic",
           "write_atomic", "write_bytes_atomic", "write_csv_atomic", "write_json_atomic"]


def _umask_mode() -> int:
    """The mode ``open()`` gives a new file: 0o666 less the process umask
    (read from /proc where there is one: setting the umask to read it would
    change it for every thread for a moment)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def write_bytes_atomic(path: Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(fh)`` on a temporary file beside ``path``, fsync it and
    rename it over ``path``; on any error the temporary file is removed. The
    file keeps the mode of the one it replaces, or gets the umask's, as a
    plain write would (``mkstemp`` alone makes it 0600, unreadable to the
    group that shares a results folder or serves it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = _umask_mode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
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


def write_json_atomic(path: Path, data: Any, *, indent: int | None = 2,
                      sort_keys: bool = False, default: Callable[[Any], Any] | None = None,
                      newline: bool = False) -> Path:
    """``data`` as JSON at ``path``, atomically."""
    text = json.dumps(data, indent=indent, sort_keys=sort_keys, default=default)
    return write_atomic(path, text + ("\n" if newline else ""))


def write_csv_atomic(path: Path, rows: Iterable[Mapping[str, Any] | Sequence[Any]],
                     fieldnames: Sequence[str] | None = None) -> Path:
    """A CSV at ``path``, atomically: dict rows under a ``fieldnames`` header
    (written when given), or plain sequences as they are."""
    buffer = io.StringIO(newline="")
    if fieldnames is not None:
        writer: Any = csv.DictWriter(buffer, fieldnames=list(fieldnames))
        writer.writeheader()
    else:
        writer = csv.writer(buffer)
    writer.writerows(rows)
    return write_bytes_atomic(path, lambda fh: fh.write(buffer.getvalue().encode()))


def save_figure_atomic(fig: Any, path: Path, **savefig: Any) -> Path:
    """A matplotlib figure at ``path``, atomically; the format is the suffix's
    unless ``savefig`` names one (a file handle carries no name to guess from)."""
    savefig.setdefault("format", Path(path).suffix.lstrip(".") or "png")
    return write_bytes_atomic(path, lambda fh: fig.savefig(fh, **savefig))


def copy_atomic(src: Path, dst: Path) -> Path:
    """A copy of ``src`` at ``dst``, atomically."""
    with open(src, "rb") as source:
        return write_bytes_atomic(dst, lambda fh: shutil.copyfileobj(source, fh))


def append_line(path: Path, line: str) -> Path:
    """Append one line to a journal and fsync it: after a kill the journal
    ends with complete lines and at most one torn line, which its reader
    drops (an append cannot be renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line.rstrip("\n") + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return path


def read_json_lines(path: Path, *, ordered: bool = True) -> list[Any]:
    """The JSON values of a journal written by :func:`append_line` (none if
    there is no file).

    A kill can tear the line being appended. In an ``ordered`` journal (a
    sequence, such as a search's evaluations) everything from the first
    torn line on is dropped: what follows it is no longer the same
    sequence. A keyed journal (``ordered=False``: entries found by their
    key, in any order) skips torn lines and keeps the rest, since a later
    append may follow a torn line without a newline between them.
    """
    path = Path(path)
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            if ordered:
                break
    return entries


def read_json_if_valid(path: Path) -> Any:
    """The JSON stored at ``path``, or None if there is no file or it is not
    JSON (a result that was never finished is computed again, not trusted)."""
    if not Path(path).is_file():
        return None
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
