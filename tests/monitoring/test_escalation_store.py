"""SPEC 10.5 on SQLite and MariaDB: channels with `after` (escalation), repeats that stop on
acknowledgement, recovery and maintenance, sticky and expiring acknowledgements. Reports go
through the real ingest, acknowledgements through the UI/API's actions, notifications are read
from the tables."""
from __future__ import annotations

import pytest_twisted

from overc.core.counters import Counters
from overc.core.durations import Grace
from overc.core.payload import Report
from overc.core.routing import Route
from overc.storage.actions import Actions
from overc.storage.db import Cursor
from overc.storage.dispatch_store import DispatchStore
from overc.storage.ingest_store import IngestItem, Store
from overc.storage.maintenance_store import MaintenanceStore
from overc.core.maintenance import WindowRequest

CHAT = Route("chat", "WARN")
PAGER = Route("pager", "WARN", after=600.0)
CHAIN = (CHAT, PAGER)


class World:
    def __init__(self, db):
        self.db = db
        self.ingest = Store(db, Grace(), Counters())
        self.dispatch = DispatchStore(db)
        self.actions = Actions(db)
        self.server_id = 0
        self.service_id = 0

    async def report(self, now: float, state: str) -> None:
        if not self.server_id:
            record, _ = await self.ingest.register_server("web1", "hash", "127.0.0.1", now)
            self.server_id = record.id
        assert await self.ingest.ingest([IngestItem(
            self.server_id, "127.0.0.1", now, [Report("app", state, f"app is {state}", 3600)],
            server_name="web1")]) == [None]
        if not self.service_id:
            (self.service_id,) = (await self.rows("SELECT id FROM services"))[0]

    async def rows(self, sql, *params):
        def txn(cursor: Cursor):
            return cursor.execute(sql, params).fetchall()
        return await self.db.run(txn)

    async def sent(self) -> list[tuple[str, str, str]]:
        """(channel, notification kind, alert severity) of every notification, in order."""
        return [tuple(r) for r in await self.rows(
            "SELECT n.channel, n.kind, a.severity FROM notifications n"
            " JOIN notification_alerts x ON x.notification_id = n.id"
            " JOIN alerts a ON a.id = x.alert_id ORDER BY n.id, a.id")]

    async def ack(self, sticky: bool = False, expires: float | None = None) -> None:
        assert await self.actions.acknowledge(self.service_id, "on it", sticky, expires)

    async def ack_row(self):
        return (await self.rows("SELECT acked, ack_sticky, ack_expires FROM services"))[0]


@pytest_twisted.async_yield_fixture
async def world(database_url, tmp_path):
    from twisted.internet import reactor

    from overc.core.dburl import parse_database_url
    from overc.storage.db import Database

    db = Database(parse_database_url(database_url, tmp_path), reactor)
    await db.migrate()
    yield World(db)
    db.close()


@pytest_twisted.ensureDeferred
async def test_escalation_fires_after_after_when_unacked_and_gets_the_recovery(world):
    await world.report(1000.0, "OK")
    await world.report(1100.0, "FAIL")  # hard at 1100: the pager's turn at 1700
    await world.dispatch.dispatch(1100.0, CHAIN)
    assert await world.sent() == [("chat", "alert", "FAIL")]
    assert (await world.dispatch.dispatch(1699.0, CHAIN)).notifications == 0
    result = await world.dispatch.dispatch(1700.0, CHAIN)
    assert (result.escalated, result.notifications) == (1, 1)
    assert (await world.sent())[1:] == [("pager", "alert", "FAIL")]
    assert (await world.dispatch.dispatch(1800.0, CHAIN)).notifications == 0  # once
    await world.report(1900.0, "OK")
    await world.dispatch.dispatch(1900.0, CHAIN)
    assert sorted((await world.sent())[2:]) == [("chat", "alert", "OK"), ("pager", "alert", "OK")]
    assert await world.rows("SELECT COUNT(*) FROM escalations") == [(0,)]


@pytest_twisted.ensureDeferred
async def test_a_problem_over_before_after_never_reaches_the_channel(world):
    await world.report(1000.0, "OK")
    await world.report(1100.0, "WARN")
    await world.dispatch.dispatch(1100.0, CHAIN)
    await world.report(1200.0, "FAIL")  # the clock keeps running from 1100
    await world.dispatch.dispatch(1200.0, CHAIN)
    await world.report(1300.0, "OK")
    await world.dispatch.dispatch(1300.0, CHAIN)
    await world.dispatch.dispatch(5000.0, CHAIN)
    assert {c for c, _, _ in await world.sent()} == {"chat"}
    assert await world.rows("SELECT COUNT(*) FROM escalations") == [(0,)]


@pytest_twisted.ensureDeferred
async def test_the_escalation_sends_the_newest_problem_counted_from_the_first(world):
    await world.report(1000.0, "OK")
    await world.report(1100.0, "WARN")
    await world.dispatch.dispatch(1100.0, CHAIN)
    await world.report(1500.0, "FAIL")
    await world.dispatch.dispatch(1500.0, CHAIN)
    assert (await world.dispatch.dispatch(1700.0, CHAIN)).escalated == 1
    assert (await world.sent())[-1] == ("pager", "alert", "FAIL")


@pytest_twisted.ensureDeferred
async def test_no_escalation_when_acknowledged_and_no_recovery_then(world):
    await world.report(1000.0, "OK")
    await world.report(1100.0, "FAIL")
    await world.dispatch.dispatch(1100.0, CHAIN)
    await world.ack()
    assert (await world.dispatch.dispatch(1700.0, CHAIN)).notifications == 0
    assert await world.rows("SELECT due FROM escalations") == [(None,)]  # parked, no timer
    assert (await world.dispatch.dispatch(9000.0, CHAIN)).notifications == 0
    await world.report(9100.0, "OK")
    await world.dispatch.dispatch(9100.0, CHAIN)
    assert await world.sent() == [("chat", "alert", "FAIL"), ("chat", "alert", "OK")]


@pytest_twisted.ensureDeferred
async def test_removing_the_ack_resumes_a_passed_escalation(world):
    await world.report(1000.0, "OK")
    await world.report(1100.0, "FAIL")
    await world.dispatch.dispatch(1100.0, CHAIN)
    await world.ack()
    await world.dispatch.dispatch(1700.0, CHAIN)
    assert await world.actions.unacknowledge(world.service_id, 2000.0)
    assert (await world.dispatch.dispatch(2000.0, CHAIN)).escalated == 1
    assert (await world.sent())[-1] == ("pager", "alert", "FAIL")


@pytest_twisted.ensureDeferred
async def test_a_plain_ack_ends_at_a_state_change_and_the_escalation_resumes(world):
    await world.report(1000.0, "OK")
    await world.report(1100.0, "WARN")
    await world.dispatch.dispatch(1100.0, CHAIN)
    await world.ack()
    await world.dispatch.dispatch(1700.0, CHAIN)  # parked
    await world.report(1800.0, "FAIL")
    assert await world.ack_row() == (0, 0, None)
    await world.dispatch.dispatch(1800.0, CHAIN)  # `after` passed long ago: told at once
    assert sorted((await world.sent())[1:]) == [("chat", "alert", "FAIL"),
                                                ("pager", "alert", "FAIL")]


@pytest_twisted.ensureDeferred
async def test_sticky_ack_survives_warn_to_fail_and_ends_on_ok(world):
    await world.report(1000.0, "OK")
    await world.report(1100.0, "WARN")
    await world.dispatch.dispatch(1100.0, CHAIN)
    await world.ack(sticky=True)
    await world.report(1200.0, "FAIL")
    assert await world.ack_row() == (1, 1, None)
    assert await world.rows("SELECT severity, held FROM alerts ORDER BY id") == [
        ("WARN", None), ("FAIL", "acknowledged")]
    result = await world.dispatch.dispatch(1200.0, CHAIN)
    assert (result.held, result.notifications) == (1, 0)
    assert (await world.dispatch.dispatch(2000.0, CHAIN)).notifications == 0
    await world.report(2100.0, "OK")
    assert await world.ack_row() == (0, 0, None)
    await world.dispatch.dispatch(2100.0, CHAIN)
    assert await world.sent() == [("chat", "alert", "WARN"), ("chat", "alert", "OK")]


@pytest_twisted.ensureDeferred
async def test_expiring_ack_resumes_repeats_and_a_passed_escalation(world):
    chain = (Route("chat", "WARN", repeat=300.0), PAGER)
    await world.report(1000.0, "OK")
    await world.report(1100.0, "WARN")
    await world.dispatch.dispatch(1100.0, chain)
    await world.ack(sticky=True, expires=3000.0)
    await world.report(1150.0, "FAIL")  # held by the sticky ack: it is carried, not sent
    for now in (1150.0, 1400.0, 1700.0, 2500.0, 2999.0):
        assert (await world.dispatch.dispatch(now, chain)).notifications == 0, now
    assert await world.rows("SELECT repeat_due FROM channel_problems") == [(None,)]
    result = await world.dispatch.dispatch(3000.0, chain)
    assert (result.repeats, result.escalated) == (1, 1)
    assert await world.ack_row() == (0, 0, None)
    assert sorted((await world.sent())[1:]) == [("chat", "repeat", "FAIL"),
                                                ("pager", "alert", "FAIL")]
    assert (await world.dispatch.dispatch(3300.0, chain)).repeats == 1  # repeating again


@pytest_twisted.ensureDeferred
async def test_repeats_stop_on_recovery_and_on_ack_and_resume_when_it_is_removed(world):
    chain = (Route("chat", "WARN", repeat=300.0),)
    await world.report(1000.0, "OK")
    await world.report(1100.0, "FAIL")
    await world.dispatch.dispatch(1100.0, chain)
    assert (await world.dispatch.dispatch(1400.0, chain)).repeats == 1
    await world.ack()
    assert (await world.dispatch.dispatch(1700.0, chain)).repeats == 0
    assert (await world.dispatch.dispatch(5000.0, chain)).repeats == 0
    await world.actions.unacknowledge(world.service_id, 5000.0)
    assert (await world.dispatch.dispatch(5000.0, chain)).repeats == 1
    await world.report(5100.0, "OK")
    await world.dispatch.dispatch(5100.0, chain)
    assert (await world.dispatch.dispatch(9000.0, chain)).repeats == 0
    assert await world.rows("SELECT COUNT(*) FROM channel_problems") == [(0,)]


@pytest_twisted.ensureDeferred
async def test_escalations_pause_in_maintenance_and_resume_after_it(world):
    await world.report(1000.0, "OK")
    await world.report(1100.0, "FAIL")
    await world.dispatch.dispatch(1100.0, CHAIN)
    await MaintenanceStore(world.db).create(WindowRequest(
        source="api", start=1200.0, end=2000.0, server_id=world.server_id), 1200.0)
    for now in (1700.0, 1800.0, 1900.0):
        assert (await world.dispatch.dispatch(now, CHAIN)).escalated == 0
    assert (await world.dispatch.dispatch(2000.0, CHAIN)).escalated == 1
    assert (await world.sent())[-1] == ("pager", "alert", "FAIL")


@pytest_twisted.ensureDeferred
async def test_a_problem_below_the_channels_min_severity_stops_its_escalation(world):
    chain = (CHAT, Route("pager", "FAIL", after=600.0))
    await world.report(1000.0, "OK")
    await world.report(1100.0, "FAIL")
    await world.dispatch.dispatch(1100.0, chain)
    await world.report(1200.0, "WARN")
    await world.dispatch.dispatch(1200.0, chain)
    assert (await world.dispatch.dispatch(1700.0, chain)).escalated == 0
    assert await world.rows("SELECT COUNT(*) FROM escalations") == [(0,)]


@pytest_twisted.ensureDeferred
async def test_an_expired_ack_resumes_even_when_a_report_comes_before_the_dispatcher(world):
    # The report after the expiry (same state, no new alert) is ingested before the dispatcher
    # looks: the acknowledgement must still end in a way that resumes what it parked.
    chain = (Route("chat", "WARN", repeat=300.0), PAGER)
    await world.report(1000.0, "OK")
    await world.report(1100.0, "FAIL")
    await world.dispatch.dispatch(1100.0, chain)
    await world.ack(expires=3000.0)
    for now in (1400.0, 1700.0, 2999.0):
        assert (await world.dispatch.dispatch(now, chain)).notifications == 0, now
    await world.report(3000.5, "FAIL")
    result = await world.dispatch.dispatch(3001.0, chain)
    assert (result.repeats, result.escalated) == (1, 1)
    assert await world.ack_row() == (0, 0, None)
    assert (await world.dispatch.dispatch(3301.0, chain)).repeats == 1  # repeating again
