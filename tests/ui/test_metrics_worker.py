"""/metrics built in a process of its own: the frames between the two, and a real child process
on SQLite and MariaDB that answers byte for byte what the full renderer makes of the same rows,
comes back after it was killed, and reports an unreachable database as such."""
from __future__ import annotations

import gzip
import random

import pytest
import pytest_twisted

from overc.core.dburl import MySQLTarget
from overc.core.errors import DatabaseUnavailable
from overc.storage.read_metrics import _txn_metrics
from overc.web.frames import FrameReader, frame
from overc.web.metrics_text import render_metrics
from overc.web.metrics_worker import MetricsWorker
from test_metrics import _txn_fill

from helpers import reactor
from realserver import free_port

COUNTERS = {"reports": {(): 7.0},
            "notifications": {(("channel", 'q"uote'), ("result", "ok")): 2.0}}


@pytest.mark.parametrize("seed", range(20))
def test_frames_come_out_whole_however_the_stream_is_cut(seed):
    rng = random.Random(seed)
    payloads = [rng.randbytes(rng.choice([0, 1, 3, 4, 5, 100, 70_000])) for _ in range(6)]
    stream = b"".join(frame(p) for p in payloads)
    reader, out, at = FrameReader(), [], 0
    while at < len(stream):
        step = rng.choice([1, 2, 3, 7, 4096, 65_536])
        out.extend(reader.feed(stream[at:at + step]))
        at += step
    assert out == payloads


def test_a_frame_over_the_limit_is_refused():
    with pytest.raises(ValueError, match="over the limit"):
        FrameReader(limit=10).feed(frame(b"x" * 11))


def _txn_change(cursor, now: float) -> None:
    cursor.execute("UPDATE services SET state = 'FAIL', last_time = ? WHERE id = 1", (now,))
    cursor.execute("INSERT INTO perfdata (service_id, time, label, value, uom)"
                   " VALUES (1, ?, 'new', 0.125, 's')", (now,))


@pytest_twisted.async_yield_fixture
async def workers():
    """Makes :class:`MetricsWorker`\\ s on the real reactor; stops their children afterwards."""
    made: list[MetricsWorker] = []

    def make(target) -> MetricsWorker:
        made.append(MetricsWorker(reactor(), target))
        return made[-1]

    yield make
    for worker in made:
        ended = worker.stop()
        if ended is not None:
            await ended


@pytest_twisted.ensureDeferred
async def test_the_child_builds_what_the_full_renderer_makes_of_the_same_rows(database, workers):
    now = 1_800_000_000.25
    await database.run(_txn_fill, now, random.Random(3))
    worker = workers(database.target)
    for step in range(3):
        text = await worker.build(now + step, COUNTERS)
        snapshot = await database.run(_txn_metrics)
        assert text == render_metrics(snapshot, now + step, COUNTERS).encode("utf-8")
        assert b'overc_notifications_total{channel="q\\"uote",result="ok"} 2' in text
        if step == 1:
            await database.run(_txn_change, now + 5)
    assert b'service="plain",label="new"' in text and worker.started == 1
    zipped = await worker.build(now + 2, COUNTERS, compressed=True)
    assert gzip.decompress(zipped) == text and len(zipped) < len(text)
    child = worker._child
    ended = worker.stop()  # closes its stdin: it ends by itself
    assert ended is not None
    await ended
    assert child is not None and not child.alive and child.exit_code == 0  # not killed


@pytest_twisted.ensureDeferred
async def test_a_killed_child_is_started_again_by_the_next_build(database, workers):
    now = 1_800_000_000.0
    await database.run(_txn_fill, now, random.Random(4))
    worker = workers(database.target)
    first = await worker.build(now, {})
    child = worker._child
    child.process.signalProcess("KILL")
    await child.ended
    assert await worker.build(now, {}) == first and worker.started == 2


@pytest_twisted.ensureDeferred
async def test_an_unreachable_database_is_reported_as_unavailable(workers):
    worker = workers(MySQLTarget("127.0.0.1", free_port(), "root", "", "overc_nowhere"))
    with pytest.raises(DatabaseUnavailable):
        await worker.build(0.0, {})
