"""The watchdog, dispatch, delivery and retention stores on real databases (SQLite file and a fresh MariaDB database each test):
stale claims, restart awareness, dispatch with grouping, silences, acks, repeats, leases,
retries, internal alerts, retention. Services and state alerts come from the real ingest."""
from __future__ import annotations


import pytest
import pytest_twisted
from twisted.internet.defer import Deferred, gatherResults

from overc.core.counters import Counters
from overc.core.durations import Grace
from overc.core.payload import AlertRequest, Report
from overc.core.routing import Route
from overc.storage.delivery_store import DeliveryStore
from overc.storage.dispatch_store import DispatchStore
from overc.storage.retention_store import RetentionStore
from overc.storage.ingest_store import IngestItem, Store
from overc.storage.watchdog_store import WatchdogStore

from alerting_tables import AlertingTables

GRACE = Grace()  # 10 %, at least 1 s


class World:
    def __init__(self, db):
        self.db = db
        self.ingest = Store(db, GRACE, Counters())
        self.watchdog = WatchdogStore(db)
        self.dispatch = DispatchStore(db)
        self.delivery = DeliveryStore(db)
        self.retention = RetentionStore(db)
        self.tables = AlertingTables(db)
        self.servers: dict[str, int] = {}

    async def server(self, name: str, now: float = 1000.0) -> int:
        if name not in self.servers:
            record, _ = await self.ingest.register_server(name, "hash", "127.0.0.1", now)
            self.servers[name] = record.id
        return self.servers[name]

    async def report(self, server: str, now: float, *services, period: int = 60,
                     alerts: tuple[AlertRequest, ...] = ()) -> None:
        """``services``: (name, state) pairs reported at ``now``."""
        server_id = await self.server(server, now)
        reports = [Report(name, state, f"{name} is {state}", period) for name, state in services]
        result = await self.ingest.ingest([IngestItem(server_id, "127.0.0.1", now, reports,
                                                      list(alerts))])
        assert result == [None]

    async def tick(self, now: float, interval: float = 1000.0):
        return await self.watchdog.watchdog_tick(now, interval=interval, grace=GRACE)


@pytest_twisted.async_yield_fixture
async def world(database_url, tmp_path):
    from twisted.internet import reactor

    from overc.storage.db import Database
    from overc.core.dburl import parse_database_url

    db = Database(parse_database_url(database_url, tmp_path), reactor)
    await db.migrate()
    yield World(db)
    db.close()


@pytest_twisted.ensureDeferred
async def test_overdue_service_goes_stale_once_with_one_offline_alert(world):
    await world.report("web1", 1000.0, ("app", "OK"), ("disk", "OK"))  # deadline 1066
    assert (await world.tick(1000.0)).expired == []
    assert (await world.tick(1065.9)).expired == []
    result = await world.tick(1066.5)
    assert len(result.expired) == 2
    assert (await world.tick(1067.0)).expired == []  # stale already: no second alert
    offline = await world.tables.alerts(kind="offline")
    assert [(a.service_name, a.severity, a.message, a.state) for a in offline] == [
        ("app", "FAIL", "No report for 66 s (period 60 s)", "OK"),
        ("disk", "FAIL", "No report for 66 s (period 60 s)", "OK"),
    ]
    # reporting again makes it fresh (ingest: online alert), and it can expire again later
    await world.report("web1", 1100.0, ("app", "OK"))
    assert [a.service_name for a in await world.tables.alerts(kind="online")] == ["app"]
    assert (await world.tick(1100.5)).expired == []
    assert len((await world.tick(1167.0)).expired) == 1


@pytest_twisted.ensureDeferred
async def test_restart_awareness_gives_the_fresh_window(world):
    await world.report("web1", 1000.0, ("app", "OK"), period=60)  # deadline 1066
    for now in (1000.0, 1010.0, 1020.0):
        await world.tick(now, interval=10.0)
    # OverC is down from 1020 to 1500: the deadline passed meanwhile
    result = await world.tick(1500.0, interval=10.0)
    assert (result.away_since, result.refreshed, result.expired) == (1020.0, 1, [])
    for now in range(1510, 1571, 10):  # the fresh window: 1500 + max(60, 65) + 6
        assert (await world.tick(float(now), interval=10.0)).expired == []
    assert len((await world.tick(1572.0, interval=10.0)).expired) == 1
    assert len(await world.tables.alerts(kind="offline")) == 1


@pytest_twisted.ensureDeferred
async def test_after_a_gap_a_nightly_job_stays_due_at_its_own_time(world):
    # A job at 06:00 UTC with 10 min grace reported at 06:00 on day 1 (due 06:10 on day 2).
    # OverC is away from 06:01 to 20:00: the restart may not push the deadline out by a day.
    day = 86400.0 * 20000
    server_id = await world.server("db1", day)
    nightly = [Report("backup", "OK", "done", 86400, time=day + 6 * 3600,
                      schedule="0 6 * * *", tz="UTC", grace=600.0)]
    assert await world.ingest.ingest(
        [IngestItem(server_id, "127.0.0.1", day + 6 * 3600, nightly, [])]) == [None]
    await world.tick(day + 6 * 3600 + 60, interval=10.0)
    result = await world.tick(day + 20 * 3600, interval=10.0)
    assert (result.refreshed, result.expired) == (0, [])
    due = day + 86400 + 6 * 3600 + 600
    # (from here the ticks are a day apart: a long interval keeps them from counting as gaps)
    assert (await world.tick(due - 1, interval=86400.0)).expired == []
    assert len((await world.tick(due + 1, interval=86400.0)).expired) == 1


@pytest_twisted.ensureDeferred
async def test_after_a_short_gap_no_deadline_ends_before_agents_can_be_back(world):
    # OverC away for 5.5 s (over the 5 s threshold): fast's deadline passed, edge's did not but
    # ends before its agent may be back; slow's moves to 300 s + 30 s from the recovery.
    await world.report("web1", 1000.0, ("fast", "OK"), period=2)  # deadline 1003
    await world.report("web1", 1000.0, ("slow", "OK"), period=300)  # deadline 1330
    await world.report("web2", 1004.0, ("edge", "OK"), period=5)  # deadline 1010: not passed
    await world.tick(1004.0, interval=1.0)
    result = await world.tick(1010.0 - 0.5, interval=1.0)
    assert (result.refreshed, result.expired) == (3, [])
    # An agent backing off (up to 60 s, or Retry-After 5 s) is back before 1009.5 + 65 + 1
    for now in (1020.0, 1050.0, 1075.0):
        assert (await world.tick(now, interval=30.0)).expired == []
    assert len((await world.tick(1076.0, interval=30.0)).expired) == 2


@pytest_twisted.ensureDeferred
async def test_pushes_turned_away_for_a_moment_are_a_gap_too(world):
    # The database went away for ~2 s (under the 5 s away threshold): this process answered
    # pushes 503, so their agents back off; fast (period 2 s) would be due before they are back.
    await world.report("web1", 1000.0, ("fast", "OK"), period=2)  # deadline 1003
    await world.tick(1000.5, interval=1.0)
    await world.tick(1001.5, interval=1.0)
    result = await world.watchdog.watchdog_tick(1003.5, interval=1.0, grace=Grace(),
                                                turned_away=True)
    # (away since the last tick that wrote its heartbeat; the one at 1001.5 only read)
    assert (result.away_since, result.refreshed, result.expired) == (1000.5, 1, [])
    for now in (1010.0, 1040.0, 1069.0):  # 1003.5 + 65 + 1
        assert (await world.tick(now, interval=30.0)).expired == []
    assert len((await world.tick(1070.0, interval=30.0)).expired) == 1
    # Without the flag the same short pause is ordinary jitter: fast is due at once.
    await world.report("web1", 1071.0, ("fast", "OK"), period=2)  # deadline 1074
    await world.tick(1072.0, interval=1.0)
    assert len((await world.tick(1075.0, interval=1.0)).expired) == 1


@pytest_twisted.ensureDeferred
async def test_a_late_report_after_the_window_keeps_the_service_watched(world):
    # The agent resends its spool after the fresh window: reports carry their old times.
    await world.report("web1", 1000.0, ("app", "OK"), period=5)
    await world.tick(1000.0)
    assert len((await world.tick(1007.0)).expired) == 1  # offline, for real
    server_id = await world.server("web1")
    late = [Report("app", "OK", "from the spool", 5, time=1001.0)]
    assert await world.ingest.ingest([IngestItem(server_id, "127.0.0.1", 1100.0, late, [])]) \
        == [None]
    [online] = await world.tables.alerts(kind="online")
    assert online.message == "Reporting again after 100 s without a report"
    # the next resent POST may take a while: no tick before the fresh window declares it gone
    for now in (1100.5, 1110.0, 1160.0, 1165.9):  # 1100 + 65 + 1
        assert (await world.tick(now)).expired == []
    assert len((await world.tick(1166.5)).expired) == 1


@pytest_twisted.ensureDeferred
async def test_services_without_period_never_expire(world):
    await world.report("web1", 1000.0, alerts=(AlertRequest("Cannot check", "queue"),))
    await world.tick(1000.0)
    assert (await world.tick(99999.0)).expired == []


ROUTES = (Route("ops", "WARN"), Route("pager", "FAIL"), Route("all", "OK"))


@pytest_twisted.ensureDeferred
async def test_alerts_of_one_server_pending_together_make_one_notification_per_channel(world):
    await world.report("web1", 1000.0, *[(f"s{i}", "OK") for i in range(5)])
    await world.report("web2", 1000.0, ("app", "OK"))
    await world.tick(1000.0)
    for server in ("web1", "web2"):  # pings: the servers live, their services are late
        await world.report(server, 1065.0)
    await world.tick(1067.0)
    result = await world.dispatch.dispatch(1067.0, ROUTES)
    assert (result.alerts, result.notifications) == (6, 6)  # 2 servers x 3 channels
    notes = await world.tables.notifications()
    web1 = world.servers["web1"]
    assert sorted((n.channel, len(n.alert_ids)) for n in notes if n.server_id == web1) == [
        ("all", 5), ("ops", 5), ("pager", 5)]
    # nothing new: dispatch is idempotent
    assert (await world.dispatch.dispatch(1068.0, ROUTES)).alerts == 0
    claimed = await world.delivery.claim(1068.0, "p1", {"ops": 30.0}, limit=10)
    assert sorted(len(c.alerts) for c in claimed) == [1, 5]
    assert {c.alerts[0].kind for c in claimed} == {"offline"}


@pytest_twisted.ensureDeferred
async def test_recovery_goes_only_to_channels_told_of_the_problem(world):
    await world.report("web1", 1000.0, ("app", "OK"))
    await world.report("web1", 1001.0, ("app", "WARN"))
    await world.dispatch.dispatch(1001.0, ROUTES)  # WARN: ops and all, not pager
    await world.report("web1", 1002.0, ("app", "OK"))
    await world.dispatch.dispatch(1002.0, ROUTES)
    notes = await world.tables.notifications()
    assert sorted(n.channel for n in notes) == ["all", "all", "ops", "ops"]


@pytest_twisted.ensureDeferred
async def test_silence_holds_then_notifies_active_problems_once(world):
    await world.report("web1", 1000.0, ("app", "OK"), ("db", "OK"))
    app, db = await _service_ids(world)
    await world.tables.set_silence(service_id=app, until=2000.0, reason="maintenance")
    await world.tables.set_silence(server_id=world.servers["web1"], until=1500.0)
    await world.report("web1", 1001.0, ("app", "WARN"), ("db", "FAIL"))
    await world.report("web1", 1002.0, ("app", "FAIL"), ("db", "OK"))
    result = await world.dispatch.dispatch(1003.0, ROUTES)
    assert (result.held, result.notifications) == (4, 0)
    # the server silence ends at 1500: db recovered meanwhile and nobody was told -> nothing
    result = await world.dispatch.dispatch(1600.0, ROUTES)
    assert (result.released, result.notifications) == (0, 0)
    # app's own silence ends at 2000: it still fails -> its newest alert, once
    result = await world.dispatch.dispatch(2001.0, ROUTES)
    assert result.released == 1
    notes = await world.tables.notifications()
    assert sorted(n.channel for n in notes) == ["all", "ops", "pager"]
    assert {len(n.alert_ids) for n in notes} == {1}
    sent = [a for a in await world.tables.alerts() if a.id == notes[0].alert_ids[0]]
    assert sent[0].message == 'State changed: "WARN" -> "FAIL"'
    assert (await world.dispatch.dispatch(2002.0, ROUTES)).notifications == 0


@pytest_twisted.ensureDeferred
async def test_repeat_until_acknowledged_and_again_after_a_state_change(world):
    routes = (Route("ops", "WARN", repeat=60.0),)
    await world.report("web1", 1000.0, ("app", "OK"))
    (app,) = await _service_ids(world)
    await world.report("web1", 1001.0, ("app", "FAIL"))
    await world.dispatch.dispatch(1001.0, routes)
    assert (await world.dispatch.dispatch(1050.0, routes)).repeats == 0
    assert (await world.dispatch.dispatch(1062.0, routes)).repeats == 1
    assert (await world.dispatch.dispatch(1100.0, routes)).repeats == 0
    await world.tables.set_acknowledged(app, True, "on it")
    assert (await world.dispatch.dispatch(1130.0, routes)).repeats == 0
    assert (await world.dispatch.dispatch(1500.0, routes)).repeats == 0
    await world.report("web1", 1501.0, ("app", "WARN"))  # a state change ends the ack
    assert (await world.dispatch.dispatch(1501.0, routes)).notifications == 1
    assert (await world.dispatch.dispatch(1562.0, routes)).repeats == 1
    await world.report("web1", 1563.0, ("app", "OK"))
    await world.dispatch.dispatch(1563.0, routes)  # the recovery
    assert (await world.dispatch.dispatch(2000.0, routes)).repeats == 0
    kinds = [n.kind for n in await world.tables.notifications()]
    assert kinds == ["alert", "repeat", "alert", "repeat", "alert"]


@pytest_twisted.ensureDeferred
async def test_leases_expire_so_a_dead_process_leaves_nothing_claimed(world):
    await world.report("web1", 1000.0, ("app", "OK"))
    await world.report("web1", 1001.0, ("app", "FAIL"))
    await world.dispatch.dispatch(1001.0, (Route("ops"),))
    (first,) = await world.delivery.claim(1001.0, "A", {"ops": 10.0}, limit=5)
    assert await world.delivery.claim(1005.0, "B", {"ops": 10.0}, limit=5) == []
    (taken,) = await world.delivery.claim(1012.0, "B", {"ops": 10.0}, limit=5)
    assert (taken.id, taken.attempts) == (first.id, 2)
    # A comes back late: its outcome is not recorded over B's lease
    assert not await world.delivery.finish(first, "A", 1013.0, error=None, retry_at=None)
    assert await world.delivery.finish(taken, "B", 1013.0, error=None, retry_at=None)
    attempts = await world.tables.attempts(first.id)
    assert [(a.owner, a.ok) for a in attempts] == [("A", False), ("B", True)]
    assert "lease expired" in attempts[0].error
    (note,) = await world.tables.notifications()
    assert note.status == "sent"


@pytest_twisted.ensureDeferred
async def test_failed_for_good_raises_internal_alert_for_the_other_channels(world):
    routes = (Route("ops"), Route("mail"))
    await world.report("web1", 1000.0, ("app", "OK"))
    await world.report("web1", 1001.0, ("app", "FAIL"))
    await world.dispatch.dispatch(1001.0, routes)
    claimed = await world.delivery.claim(1001.0, "A", {"ops": 10.0}, limit=5)
    (item,) = claimed
    assert await world.delivery.finish(item, "A", 1002.0, error="exit code 1", retry_at=1012.0)
    assert await world.delivery.claim(1005.0, "A", {"ops": 10.0}, limit=5) == []
    (item,) = await world.delivery.claim(1012.0, "A", {"ops": 10.0}, limit=5)
    assert await world.delivery.finish(item, "A", 1013.0, error="exit code 1", retry_at=None,
                                    internal_message='Channel "ops" failed for good')
    result = await world.dispatch.dispatch(1014.0, routes)
    assert result.alerts == 1
    notes = await world.tables.notifications()
    assert [(n.channel, n.status) for n in notes if n.channel == "ops"] == [("ops", "failed")]
    internal = [n for n in notes if n.kind == "alert" and len(notes) and n.id == notes[-1].id]
    assert internal[0].channel == "mail"
    (alert,) = await world.tables.alerts(kind="internal")
    assert (alert.severity, alert.skip_channel) == ("FAIL", "ops")


@pytest_twisted.ensureDeferred
async def test_retention_purges_old_rows_in_batches(world):
    for t in range(10):
        await world.report("web1", 1000.0 + t, ("app", "OK" if t % 2 else "FAIL"))
    await world.dispatch.dispatch(1010.0, (Route("ops"),))
    counts = [await world.retention.purge(1005.0, "states", 2) for _ in range(4)]
    assert counts == [2, 2, 1, 0]
    assert await world.retention.purge(1005.0, "alerts", 100) == 5
    assert await world.retention.purge(1005.0, "notifications", 100) == 0  # not finished yet
    with pytest.raises(ValueError):
        await world.retention.purge(1005.0, "servers", 1)


@pytest_twisted.ensureDeferred
async def test_two_pools_racing_claim_everything_exactly_once(world, database_url, tmp_path):
    """Two processes' worth of connections on one database: ticks, dispatches and claims
    race; every service goes stale once, every alert is notified once per channel."""
    from twisted.internet import reactor

    from overc.storage.db import Database
    from overc.core.dburl import parse_database_url

    other_db = Database(parse_database_url(database_url, tmp_path), reactor)
    other = World(other_db)
    try:
        for server in range(4):
            await world.report(f"h{server}", 1000.0, *[(f"s{i}", "OK") for i in range(50)])
        await world.tick(1000.0)
        for server in range(2):  # h0 and h1 keep pushing: their services are late alone;
            await world.report(f"h{server}", 1065.0)  # h2 and h3 are dead hosts (SPEC 10.3)
        for now in (1067.0, 1068.0):
            await gatherResults([Deferred.fromCoroutine(s.watchdog.watchdog_tick(
                now, interval=1000.0, grace=GRACE)) for s in (world, other)])
        offline = await world.tables.alerts(kind="offline")
        assert len(offline) == 200
        assert sorted((a.server_name, a.held) for a in offline) == sorted(
            [("h0", None)] * 50 + [("h1", None)] * 50 + [("h2", "server offline")] * 50
            + [("h3", "server offline")] * 50)
        down = await world.tables.alerts(kind="server-offline")
        assert sorted(a.server_name for a in down) == ["h2", "h3"]
        routes = (Route("ops"),)
        await gatherResults([Deferred.fromCoroutine(s.dispatch.dispatch(1069.0, routes, limit=30))
                             for s in (world, other, world, other)])
        while (await world.dispatch.dispatch(1069.0, routes, limit=30)).alerts:
            pass
        notes = await world.tables.notifications()
        covered = sorted(a for n in notes for a in n.alert_ids)
        assert covered == sorted(a.id for a in [*offline, *down] if a.held is None)
        claims = await gatherResults([Deferred.fromCoroutine(s.delivery.claim(
            1070.0, name, {"ops": 30.0}, limit=100)) for s, name in ((world, "A"), (other, "B"))])
        ids = [c.id for batch in claims for c in batch]
        assert sorted(ids) == sorted(n.id for n in notes)  # each claimed once, none twice
    finally:
        other_db.close()


async def _service_ids(world) -> list[int]:
    from overc.storage.db import Cursor

    def _txn_ids(cursor: Cursor):
        return [r[0] for r in cursor.execute("SELECT id FROM services ORDER BY name").fetchall()]

    return await world.db.run(_txn_ids)
