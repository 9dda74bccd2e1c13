"""Fixtures shared by several test files."""

from __future__ import annotations

import pytest


@pytest.fixture
def one_torch_thread():
    """Pin torch to one thread: on 2 cores its own threads slow small networks
    down badly and make timings of parallel tests erratic."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
