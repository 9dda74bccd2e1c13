"""Work for the executor's tests (imported by spawned workers by module
name, so it lives in its own file)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def square(x: int) -> int:
    return x * x


def pid(_: object) -> int:
    return os.getpid()


class Job:
    """``item`` -> ``item``, after appending a line to ``<folder>/<item>``
    (one per start); ``kill`` items SIGKILL their process every time,
    ``once`` items only at their first start; ``raise_on`` raises."""

    def __init__(self, folder: str, kill=(), once=(), raise_on=(), sleep: float = 0.0) -> None:
        self.folder, self.sleep = Path(folder), sleep
        self.kill, self.once, self.raise_on = set(kill), set(once), set(raise_on)

    def __call__(self, item: int) -> int:
        marker = self.folder / str(item)
        first = not marker.exists()
        with marker.open("a") as fh:
            fh.write(f"{os.getpid()}\n")
        if item in self.kill or (item in self.once and first):
            os.kill(os.getpid(), signal.SIGKILL)
        if item in self.raise_on:
            raise KeyError(f"no item {item}")
        time.sleep(self.sleep)
        return item


def starts(folder: str | Path, item: int) -> list[int]:
    """The pids that started ``item``."""
    path = Path(folder) / str(item)
    return [int(line) for line in path.read_text().split()] if path.exists() else []
