"""The one process pool (ras_deap.executor): results in order or as they
finish, the crash policy (an item that kills its process runs once more,
then gets a Crash; its neighbours are not disturbed), errors raised where
the caller waits, fresh or lasting processes, and nothing left running."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pool_jobs import Job, pid, square, starts

from ras_deap.executor import Crash, ProcessPool


def test_map_keeps_input_order_and_workers_last():
    with ProcessPool(2) as pool:
        assert list(pool.map(square, range(7))) == [x * x for x in range(7)]
        pids = set(pool.map(pid, range(6)))
    assert len(pids) <= 2 and os.getpid() not in pids


def test_crash_policy_retries_once_then_gives_a_crash(tmp_path):
    job = Job(str(tmp_path), kill={2}, once={4})
    with ProcessPool(2) as pool:
        results = list(pool.map(job, range(6)))
    assert results == [0, 1, Crash("SIGKILL"), 3, 4, 5]
    assert len(starts(tmp_path, 2)) == 2  # once more, in a fresh process, then its own
    assert len(starts(tmp_path, 4)) == 2 and len(set(starts(tmp_path, 4))) == 2
    for item in (0, 1, 3, 5):  # items beside the crashes ran once
        assert len(starts(tmp_path, item)) == 1


def test_an_error_is_raised_with_the_workers_traceback_and_the_pool_goes_on(tmp_path):
    with ProcessPool(2) as pool:
        with pytest.raises(KeyError, match="no item 1") as caught:
            list(pool.map(Job(str(tmp_path), raise_on={1}), range(3)))
        assert "in the worker process" in str(caught.value.__cause__)
        assert "raise KeyError" in str(caught.value.__cause__)
        assert list(pool.map(square, [3])) == [9]


def test_fresh_gives_each_item_its_own_process_and_as_completed_ticks(tmp_path):
    ticks = []
    with ProcessPool(2, fresh=True) as pool:
        done = dict(pool.as_completed(Job(str(tmp_path), sleep=0.3), range(4), every=0.05,
                                      idle=lambda: ticks.append(1)))
    assert done == {i: i for i in range(4)}
    assert len({starts(tmp_path, i)[0] for i in range(4)}) == 4
    assert ticks


def test_a_stop_while_waiting_ends_the_running_items_at_once(tmp_path):
    """As Ctrl-C in the parent: the pool is aborted, its workers terminated
    instead of waited for; none is left running."""
    def idle() -> None:
        if len(starts(tmp_path, 0) + starts(tmp_path, 1)) == 2:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"), ProcessPool(2) as pool:
        list(pool.as_completed(Job(str(tmp_path), sleep=120), range(2), every=0.05, idle=idle))
    workers = starts(tmp_path, 0) + starts(tmp_path, 1)
    assert len(workers) == 2 and not any(_alive(p) for p in workers)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_bad_worker_counts_are_refused():
    for workers in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="workers"):
            ProcessPool(workers)
