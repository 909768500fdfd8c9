"""SPEC 9 on real databases (SQLite file and a fresh MariaDB database each test): scheduled
deadlines through ingest and the watchdog, start signals, durations, one `timeout` alert."""
from __future__ import annotations

from datetime import datetime

import pytest_twisted

from overc.core.counters import Counters
from overc.core.durations import Grace
from overc.core.payload import Report
from overc.core.runs import RunStart
from overc.core.schedule import zone
from overc.storage.db import Cursor
from overc.storage.ingest_store import IngestItem, Store
from overc.storage.queries import Queries
from overc.storage.watchdog_store import WatchdogStore

GRACE = Grace(seconds=5)
BERLIN = zone("Europe/Berlin")
T0 = datetime(2024, 3, 30, 3, 10, tzinfo=BERLIN).timestamp()  # Saturday before the DST change


class World:
    def __init__(self, db):
        self.db = db
        self.ingest = Store(db, GRACE, Counters())
        self.watchdog = WatchdogStore(db)
        self.queries = Queries(db)
        self.server_id = 0

    async def push(self, now: float, reports=(), starts=()) -> None:
        if not self.server_id:
            record, _ = await self.ingest.register_server("db1", "hash", "127.0.0.1", now)
            self.server_id = record.id
        item = IngestItem(self.server_id, "127.0.0.1", now, list(reports), [], list(starts))
        assert await self.ingest.ingest([item]) == [None]

    async def tick(self, now: float, interval: float = 1e9):
        return await self.watchdog.watchdog_tick(now, interval=interval, grace=GRACE)

    async def rows(self, sql: str, *params):
        def txn(cursor: Cursor):
            return cursor.execute(sql, params).fetchall()
        return await self.db.run(txn)

    async def service(self):
        [server] = await self.queries.servers(0, None)
        [service] = server.services
        return service


@pytest_twisted.async_yield_fixture
async def world(database_url, tmp_path):
    from twisted.internet import reactor

    from overc.core.dburl import parse_database_url
    from overc.storage.db import Database

    db = Database(parse_database_url(database_url, tmp_path), reactor)
    await db.migrate()
    yield World(db)
    db.close()


def backup(state="OK", **fields) -> Report:
    return Report("backup", state, "done", 86400, **fields)


@pytest_twisted.ensureDeferred
async def test_scheduled_deadline_is_stored_read_and_watched(world):
    await world.push(T0, [backup(schedule="30 2 * * *", tz="Europe/Berlin")])
    service = await world.service()
    # next run: Sunday 02:30 does not exist, Debian cron runs it at 03:00 (+02:00) = T0 + 22.8 h
    nxt = datetime(2024, 3, 31, 3, 0, tzinfo=BERLIN).timestamp()
    assert service.deadline == nxt + 5
    assert (service.schedule, service.tz, service.grace) == ("30 2 * * *", "Europe/Berlin", None)
    assert (await world.tick(nxt + 4.9)).expired == []
    assert (await world.tick(nxt + 5.1)).expired == [service.id]
    # the latest report decides: without schedule, period-based with its own grace
    await world.push(nxt + 10, [backup(grace=60.0)])
    service = await world.service()
    assert service.deadline == nxt + 10 + 86400 + 60
    assert (service.schedule, service.tz, service.grace, service.stale) == \
        (None, None, 60.0, False)


@pytest_twisted.ensureDeferred
async def test_start_then_report_stores_the_duration(world):
    await world.push(T0, [backup()])
    await world.push(T0 + 100, starts=[RunStart("backup", 3600)])
    service = await world.service()
    assert (service.run_started, service.run_timeout, service.run_late) == (T0 + 100, 3600, False)
    assert service.state == "OK" and service.deadline == T0 + 86400 + 5  # untouched
    await world.push(T0 + 1300, [backup()])
    await world.push(T0 + 1400, [backup(duration=42.0)])
    history = await world.queries.states(service.id, 0, T0 + 10_000, 10, 0)
    assert [r.duration for r in history] == [None, 1200.0, 42.0]
    service = await world.service()
    assert (service.run_started, service.duration) == (None, 42.0)
    assert (await world.tick(T0 + 100 + 3606)).timeouts == []  # ended: nothing to time out


@pytest_twisted.ensureDeferred
async def test_start_timeout_raises_one_alert_and_a_late_report_ends_the_run(world):
    # a start signal for a service never seen before creates it (no state yet)
    await world.push(T0, starts=[RunStart("backup", 3600, T0 - 10)])
    assert (await world.tick(T0 + 3594.9)).timeouts == []
    service = await world.service()
    result = await world.tick(T0 + 3595.2)
    assert result.timeouts == [service.id] and result.expired == []
    assert (await world.tick(T0 + 3600)).timeouts == []  # claimed once
    alerts = await world.rows("SELECT kind, severity, message, dispatched FROM alerts")
    assert alerts == [("timeout", "FAIL", "Started 3605 s ago and not finished (timeout 3600 s)",
                       0)]
    service = await world.service()
    assert service.run_late and service.run_started == T0 - 10
    await world.push(T0 + 4000, [backup()])
    service = await world.service()
    assert not service.run_late and service.run_started is None and service.duration == 4010.0


@pytest_twisted.ensureDeferred
async def test_a_new_start_replaces_the_run_and_restart_awareness_extends_it(world):
    await world.push(T0, starts=[RunStart("backup", 60)])
    await world.push(T0 + 30, starts=[RunStart("backup", 60)])  # deadline T0 + 95 now
    assert (await world.tick(T0 + 70, interval=10)).timeouts == []
    await world.tick(T0 + 80, interval=10)
    # OverC away from T0 + 80 to T0 + 500: the run gets timeout + grace again from now
    result = await world.tick(T0 + 500, interval=10)
    assert result.away_since is not None and result.timeouts == []
    assert (await world.tick(T0 + 564, interval=10)).timeouts == []
    assert len((await world.tick(T0 + 566, interval=10)).timeouts) == 1


@pytest_twisted.ensureDeferred
async def test_an_idle_tick_with_runs_open_writes_nothing(world):
    await world.push(T0, [backup()], [RunStart("backup", 600)])
    await world.tick(T0, interval=1.0)
    before = await world.rows("SELECT ticks FROM coordination WHERE id = 1")
    assert (await world.tick(T0 + 1, interval=1.0)).timeouts == []
    assert await world.rows("SELECT ticks FROM coordination WHERE id = 1") == before
