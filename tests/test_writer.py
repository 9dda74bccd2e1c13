"""The background MLflow writer: order, flush, errors, bounded backlog."""

from __future__ import annotations

import threading
import time

import pytest

from ras_deap.tracking.writer import BackgroundWriter, WriterError


def test_writes_run_in_submission_order_off_the_callers_thread():
    seen, threads = [], set()
    with BackgroundWriter(maxsize=4) as writer:
        for i in range(50):
            writer.submit(lambda i=i: (seen.append(i), threads.add(threading.get_ident())))
        writer.flush()
        assert seen == list(range(50))
    assert threading.get_ident() not in threads


def test_submit_returns_before_a_slow_write_and_flush_waits_for_it():
    done = threading.Event()
    with BackgroundWriter() as writer:
        start = time.perf_counter()
        writer.submit(lambda: (time.sleep(0.3), done.set()))
        assert time.perf_counter() - start < 0.2 and not done.is_set()
        writer.flush()
        assert done.is_set() and writer.busy_seconds >= 0.3


def test_a_failed_write_is_raised_by_the_next_flush_and_later_writes_are_dropped():
    seen = []
    writer = BackgroundWriter()

    def boom():
        raise ConnectionError("store unreachable")

    writer.submit(boom)
    writer.submit(seen.append, 1)
    with pytest.raises(WriterError, match="ConnectionError: store unreachable"):
        writer.flush()
    assert seen == []  # nothing written after the failure, so the order stays intact
    writer.close()
    with pytest.raises(WriterError, match="closed"):
        writer.submit(seen.append, 2)


def test_the_backlog_is_bounded():
    gate, taken = threading.Event(), threading.Event()
    writer = BackgroundWriter(maxsize=2)
    writer.submit(lambda: (taken.set(), gate.wait()))  # taken by the thread, blocks it
    assert taken.wait(5)
    writer.submit(lambda: None)
    writer.submit(lambda: None)  # the queue is full now
    blocked = threading.Thread(target=writer.submit, args=(lambda: None,))
    blocked.start()
    blocked.join(0.2)
    assert blocked.is_alive()  # submit waits instead of growing the queue
    gate.set()
    blocked.join(2)
    assert not blocked.is_alive()
    writer.close()


def test_a_slow_drain_says_so(capsys):
    writer = BackgroundWriter()
    writer.submit(time.sleep, 0.4)
    writer.close(message_after=0.1)
    assert "queued MLflow updates" in capsys.readouterr().err


def test_synchronous_mode_writes_at_once_and_rejects_bad_sizes():
    seen = []
    writer = BackgroundWriter(synchronous=True)
    writer.submit(seen.append, 1)
    assert seen == [1]
    writer.close()
    with pytest.raises(ValueError, match="maxsize"):
        BackgroundWriter(maxsize=0)
