"""The on-disk spool: order, bounds, persistence across restarts, torn lines, compaction."""
import os

import pytest

from overc.agent.results import Report
import pytest_twisted

from overc.agent.spool import FileSpool, InThread, MemorySpool, SpoolError


def reports(n, start=0, name="svc"):
    return [Report(f"{name}{i}", "OK", f"info {i}", 60, 1000.0 + i) for i in range(start, start + n)]


def test_order_is_kept(tmp_path):
    spool = FileSpool(str(tmp_path / "s"))
    spool.extend(reports(3))
    spool.extend(reports(2, 3))
    assert [r.name for r in spool.peek(10)] == ["svc0", "svc1", "svc2", "svc3", "svc4"]
    assert [r.name for r in spool.peek(2)] == ["svc0", "svc1"]
    spool.remove(2)
    assert [r.name for r in spool.peek(10)] == ["svc2", "svc3", "svc4"]


def test_survives_restart_with_original_times(tmp_path):
    path = str(tmp_path / "s")
    spool = FileSpool(path)
    spool.extend(reports(5))
    spool.remove(2)
    spool.close()
    again = FileSpool(path)
    assert again.peek(10) == reports(5)[2:]
    assert again.peek(1)[0].time == 1002.0


def test_bounded_drops_oldest_and_logs_count(tmp_path, caplog_events):
    path = str(tmp_path / "s")
    spool = FileSpool(path, max_reports=3)
    spool.extend(reports(2))
    spool.extend(reports(3, 2))
    assert [r.name for r in spool.peek(10)] == ["svc2", "svc3", "svc4"]
    assert spool.dropped_total == 2
    assert any("dropped the 2 oldest" in e for e in caplog_events)
    spool.close()
    assert [r.name for r in FileSpool(path, max_reports=3).peek(10)] == ["svc2", "svc3", "svc4"]


def test_smaller_bound_on_restart_drops_oldest(tmp_path):
    path = str(tmp_path / "s")
    FileSpool(path).extend(reports(5))
    assert [r.name for r in FileSpool(path, max_reports=2).peek(10)] == ["svc3", "svc4"]


def test_file_truncated_when_everything_delivered(tmp_path):
    path = str(tmp_path / "s")
    spool = FileSpool(path)
    spool.extend(reports(4))
    spool.remove(4)
    assert os.path.getsize(path) == 0
    spool.extend(reports(1, 9))
    spool.close()
    assert [r.name for r in FileSpool(path).peek(5)] == ["svc9"]


def test_torn_last_line_is_ignored(tmp_path):
    path = str(tmp_path / "s")
    spool = FileSpool(path)
    spool.extend(reports(2))
    spool.close()
    with open(path, "ab") as f:
        f.write(b'{"r": {"name": "half')  # a crash in the middle of a write
    again = FileSpool(path)
    assert [r.name for r in again.peek(5)] == ["svc0", "svc1"]
    again.extend(reports(1, 2))
    again.close()
    assert [r.name for r in FileSpool(path).peek(5)] == ["svc0", "svc1", "svc2"]


def test_compaction_keeps_pending(tmp_path, monkeypatch):
    monkeypatch.setattr(FileSpool, "COMPACT_SLACK", 5)
    path = str(tmp_path / "s")
    spool = FileSpool(path)
    spool.extend(reports(10))
    for _ in range(8):
        spool.remove(1)
    with open(path) as f:
        lines = f.read().splitlines()
    assert len(lines) < 10  # rewritten
    spool.extend(reports(1, 10))
    spool.close()
    assert [r.name for r in FileSpool(path).peek(10)] == ["svc8", "svc9", "svc10"]


def test_unwritable_path_is_an_error(tmp_path):
    with pytest.raises(SpoolError, match="cannot"):
        FileSpool(str(tmp_path / "missing-dir" / "s"))


def test_memory_spool_same_rules():
    spool = MemorySpool(max_reports=2)
    spool.extend(reports(3))
    assert [r.name for r in spool.peek(5)] == ["svc1", "svc2"]
    spool.remove(5)
    assert len(spool) == 0


class HeldJobs:
    """A ``run_blocking`` that keeps the jobs until the test runs them: the disk is 'slow'."""

    def __init__(self):
        self.jobs = []

    def __call__(self, job):
        from twisted.internet.defer import Deferred

        d = Deferred()
        self.jobs.append((job, d))
        return d

    def run_all(self):
        while self.jobs:
            job, d = self.jobs.pop(0)
            job()
            d.callback(None)


def test_file_changes_are_jobs_run_in_order_and_spooled_only_once_run(tmp_path):
    path = str(tmp_path / "s")
    held = HeldJobs()
    spool = FileSpool(path, run_blocking=held)
    spool.extend(reports(3))
    spool.remove(1)
    spool.extend(reports(1, 3))
    assert [r.name for r in spool.peek(10)] == ["svc1", "svc2", "svc3"]  # the queue changes at once
    closed = spool.close()
    assert os.path.getsize(path) == 0 and not closed.called  # nothing is spooled yet
    held.run_all()
    assert closed.called
    assert [r.name for r in FileSpool(path).peek(10)] == ["svc1", "svc2", "svc3"]


def test_close_fires_after_the_pending_writes(tmp_path):
    path = str(tmp_path / "s")
    held = HeldJobs()
    spool = FileSpool(path, run_blocking=held)
    spool.extend(reports(2))
    closed = spool.close()
    assert not closed.called
    held.run_all()
    assert closed.called
    assert [r.name for r in FileSpool(path).peek(10)] == ["svc0", "svc1"]


def test_truncation_and_compaction_are_jobs_in_order_too(tmp_path, monkeypatch):
    monkeypatch.setattr(FileSpool, "COMPACT_SLACK", 3)
    path = str(tmp_path / "s")
    held = HeldJobs()
    spool = FileSpool(path, run_blocking=held)
    spool.extend(reports(2))
    spool.remove(2)  # truncate
    spool.extend(reports(6, 2))
    for _ in range(4):
        spool.remove(1)  # compacts along the way
    held.run_all()
    spool.close()
    held.run_all()
    assert [r.name for r in FileSpool(path).peek(10)] == ["svc6", "svc7"]


def test_a_failed_write_is_logged_and_the_reports_stay_queued(tmp_path, caplog_events):
    from twisted.internet.defer import fail

    spool = FileSpool(str(tmp_path / "s"), run_blocking=lambda job: fail(OSError(28, "No space left on device")))
    spool.extend(reports(2))
    assert [r.name for r in spool.peek(10)] == ["svc0", "svc1"]
    assert any("Cannot write the spool" in e and "No space left" in e for e in caplog_events)


@pytest_twisted.ensureDeferred
async def test_in_thread_fsyncs_off_the_reactor_thread_in_order(tmp_path, monkeypatch):
    import threading

    from twisted.internet import reactor

    threads_seen = []
    real_fsync = os.fsync

    def fsync(fd):
        threads_seen.append(threading.get_ident())
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    path = str(tmp_path / "s")
    spool = FileSpool(path, run_blocking=InThread(reactor))
    for i in range(20):
        spool.extend(reports(1, i))
        if i % 3 == 0:
            spool.remove(1)
    await spool.close()
    assert threads_seen and threading.get_ident() not in threads_seen
    assert [r.name for r in FileSpool(path).peek(50)] == [r.name for r in list(spool.pending)]
