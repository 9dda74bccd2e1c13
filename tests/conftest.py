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


@pytest.fixture
def global_tracking_uri(monkeypatch):
    """Point MLflow's process-global tracking URI (what ``mlflow.pytorch.load_model``
    and the fluent API use) at a test's store, and restore it afterwards.
    ``mlflow.set_tracking_uri`` also writes ``MLFLOW_TRACKING_URI``, so restoring
    it with ``set_tracking_uri(get_tracking_uri())`` would leak the resolved
    default into every later test."""
    from mlflow.tracking._tracking_service import utils as tracking_utils

    def use(uri: str) -> None:
        monkeypatch.setattr(tracking_utils, "_tracking_uri", uri)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)

    return use
