"""Exclusive ownership of run folders and one-time store set-up.

A run folder belongs to one live process: :class:`RunLock` holds an
exclusive ``flock`` on ``<run folder>/.lock`` for the whole life of a search
(the kernel drops it when the process dies, even by ``kill -9``, so a crashed
run never leaves a stale lock). A second process gets :class:`RunLockedError`
naming the owner's pid. :func:`file_lock` serialises short critical
sections between processes, such as creating a fresh MLflow database.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import InfrastructureError, RunLockedError

__all__ = ["LOCK_NAME", "RunLock", "file_lock", "lock_owner"]

LOCK_NAME = ".lock"


def lock_owner(path: Path) -> str:
    """What the lock file says about its holder ("pid 123 on host, since ...")."""
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return "another process"
    return text or "another process"


class RunLock:
    """An exclusive, non-blocking lock on a run folder, held until
    :meth:`release` (or the process dies). ``what`` names the folder and
    ``advice`` the fix in the refusal (a search's run folder by default);
    ``name``, the lock file's, lets two kinds of work own one folder apart."""

    def __init__(self, folder: Path, *, what: str = "run folder",
                 advice: str = "one process owns a run at a time. Wait for it to end (or stop "
                               "it), then --resume; or start another run with another "
                               "--run-name", name: str = LOCK_NAME) -> None:
        self.folder = Path(folder)
        self.path = self.folder / name
        self.what, self.advice = what, advice
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunLockedError(
                f"{self.what} {self.folder} is in use by {lock_owner(self.path)}: "
                f"{self.advice}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, since "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def file_lock(path: Path, timeout: float = 120.0, what: str = "a lock") -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the
    ``with`` block, waiting up to ``timeout`` seconds for other holders."""
    path = Path(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise InfrastructureError(
                        f"waited {timeout:.0f} s for {what} ({path}), which another "
                        "process holds; try again when it is done"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
