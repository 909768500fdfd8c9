"""SPEC 10.3 store contract on SQLite and MariaDB: the ingest batch moves the server's deadline,
the watchdog declares a silent server offline once (its services' `offline` alerts held), a
hung plugin on a live server is notified alone, a server that comes back raises one
`server-online` and its services still stale are notified one by one; restart awareness."""
from __future__ import annotations

import pytest_twisted

from overc.core.counters import Counters
from overc.core.durations import Grace
from overc.core.payload import Report
from overc.core.routing import Route
from overc.storage.db import Cursor
from overc.storage.dispatch_store import DispatchStore
from overc.storage.ingest_store import IngestItem, Store
from overc.storage.watchdog_store import WatchdogStore

GRACE = Grace()  # 10 % of the period: 6 s on 60 s
ROUTES = (Route("ops"),)  # min-severity WARN: a recovery only where the problem went
NAMES = [f"s{n:02}" for n in range(20)]
ALERT = "SELECT a.kind, v.name, a.severity, a.held, a.message FROM alerts a" \
        " LEFT JOIN services v ON v.id = a.service_id"


class World:
    def __init__(self, db):
        self.db = db
        self.ingest = Store(db, GRACE, Counters())
        self.watchdog = WatchdogStore(db)
        self.dispatch = DispatchStore(db)
        self.server_id = 0
        self.interval = 1000.0

    async def push(self, now: float, names=(), state="OK", period=60) -> None:
        if not self.server_id:
            record, _ = await self.ingest.register_server("web1", "hash", "127.0.0.1", now)
            self.server_id = record.id
        reports = [Report(name, state, f"{name} fine", period) for name in names]
        assert await self.ingest.ingest(
            [IngestItem(self.server_id, "127.0.0.1", now, reports, server_name="web1")]
        ) == [None]

    async def tick(self, now: float):
        # interval 1000 s: ticks in these tests are never "away" unless a test wants a gap.
        return await self.watchdog.watchdog_tick(now, interval=self.interval, grace=GRACE)

    async def ticks(self, start: float, end: float) -> None:
        now = start
        while now <= end:
            await self.tick(now)
            now += 1.0

    async def rows(self, sql: str, *params):
        def txn(cursor: Cursor):
            return cursor.execute(sql, params).fetchall()
        return await self.db.run(txn)

    async def server(self):
        (row,) = await self.rows("SELECT offline, deadline, period, offline_since FROM servers")
        return row

    async def notified(self, now: float) -> list[tuple]:
        """Dispatch, then every (kind, service) that reached a notification, by alert id."""
        await self.dispatch.dispatch(now, ROUTES)
        return await self.rows(
            "SELECT a.kind, v.name FROM notification_alerts na JOIN alerts a"
            " ON a.id = na.alert_id LEFT JOIN services v ON v.id = a.service_id ORDER BY a.id")


@pytest_twisted.async_yield_fixture
async def world(database):
    yield World(database)


async def staggered_host_that_dies(world: World) -> None:
    """20 services of 60 s, each on its own timer 3 s apart (as an agent runs them); the host
    dies after its report at 1057."""
    await world.tick(999.0)  # watched from the start: no gap
    for n, name in enumerate(NAMES):
        await world.push(1000.0 + 3 * n, [name])
    assert await world.server() == (0, 1057.0 + 66.0, 60.0, None)


@pytest_twisted.ensureDeferred
async def test_a_dead_host_is_one_notification_and_its_services_are_held(world):
    await staggered_host_that_dies(world)
    # s00 is due at 1060 (deadline 1066), but its server has been silent since: it waits for
    # its server's deadline (1123) instead of going stale alone.
    await world.ticks(1058.0, 1123.0)
    assert await world.rows("SELECT COUNT(*) FROM alerts") == [(0,)]
    assert await world.rows("SELECT COUNT(*) FROM services WHERE stale = 1") == [(0,)]
    result = await world.tick(1123.5)
    assert result.servers.offline == [world.server_id] and len(result.expired) == 20
    alerts = await world.rows(ALERT + " ORDER BY a.id")
    assert alerts[0] == ("server-offline", None, "FAIL", None,
                         "No contact for 66 s; 20 services affected")
    assert sorted(name for _, name, *_ in alerts[1:]) == NAMES
    assert {(kind, severity, held) for kind, _, severity, held, _ in alerts[1:]} == {
        ("offline", "FAIL", "server offline")}
    assert await world.notified(1124.0) == [("server-offline", None)]
    assert await world.server() == (1, None, 60.0, 1057.0)
    # Nothing more while it stays dead.
    await world.ticks(1124.0, 1200.0)
    assert await world.rows("SELECT COUNT(*) FROM alerts") == [(21,)]


@pytest_twisted.ensureDeferred
async def test_back_online_then_still_stale_services_are_notified_one_by_one(world):
    await staggered_host_that_dies(world)
    await world.ticks(1058.0, 1124.0)
    await world.notified(1124.0)
    # The host is back at 1300 (a ping first), its agent reports half of its services soon.
    await world.push(1300.0)
    await world.push(1302.0, NAMES[:10])
    result = await world.tick(1303.0)
    assert result.servers.online == [world.server_id]
    assert (await world.rows(ALERT + " WHERE a.kind = 'server-online'")) == [
        ("server-online", None, "OK", None, "Back after 243 s without contact")]
    assert await world.server() == (0, 1302.0 + 66.0, 60.0, None)
    # The still-stale ten get the fresh window (65 s + 6 s grace) from the return...
    for now in (1330.0, 1360.0):
        await world.ticks(now - 26, now - 1)
        await world.push(now, NAMES[:10])
    await world.ticks(1360.0, 1374.0)
    assert await world.rows("SELECT COUNT(*) FROM alerts WHERE held IS NULL AND kind ="
                            " 'offline'") == [(0,)]
    await world.tick(1374.5)
    again = await world.rows(ALERT + " WHERE a.kind = 'offline' AND a.held IS NULL")
    assert sorted(name for _, name, *_ in again) == NAMES[10:]
    # ...then are notified one by one; the online alerts of the ten that came back were never
    # a problem anybody was told of, and server-online goes where server-offline went.
    notified = await world.notified(1375.0)
    assert notified == [("server-offline", None), ("server-online", None),
                        *[("offline", name) for name in NAMES[10:]]]
    assert await world.rows("SELECT COUNT(*) FROM services WHERE recheck IS NOT NULL") == [(0,)]
    await world.ticks(1375.0, 1380.0)
    assert len(await world.notified(1381.0)) == 12


@pytest_twisted.ensureDeferred
async def test_offline_and_online_dispatched_together_both_reach_the_channel(world):
    """The dispatcher did not run between the two (it was busy, or its process died and
    another took over): server-online still goes where server-offline goes, in the same run."""
    await staggered_host_that_dies(world)
    await world.ticks(1058.0, 1124.0)  # offline at 1123.5, not dispatched yet
    await world.push(1300.0, NAMES)
    result = await world.tick(1301.0)
    assert result.servers.online == [world.server_id]
    notified = await world.notified(1302.0)
    assert [n for n in notified if n[0].startswith("server")] == [
        ("server-offline", None), ("server-online", None)]


@pytest_twisted.ensureDeferred
async def test_a_hung_plugin_on_a_live_server_is_notified_alone(world):
    await world.tick(999.0)
    await world.push(1000.0, NAMES)
    await world.push(1050.0, NAMES[1:])  # s00 hangs; the others keep pushing
    await world.push(1065.0, NAMES[1:])
    await world.ticks(1060.0, 1067.0)
    assert await world.rows(ALERT) == [
        ("offline", "s00", "FAIL", None, "No report for 67 s (period 60 s)")]
    assert await world.notified(1068.0) == [("offline", "s00")]
    for now in (1120.0, 1180.0, 1240.0):
        await world.ticks(now - 50, now - 1)
        await world.push(now, NAMES[1:])
    assert await world.server() == (0, 1240.0 + 66.0, 60.0, None)
    assert len(await world.rows("SELECT id FROM alerts")) == 1


@pytest_twisted.ensureDeferred
async def test_a_plugin_that_hangs_while_its_server_is_quiet_is_notified_once_it_speaks(world):
    """s00 is due while web1 is silent, so it waits for web1's verdict (web1's deadline, 1116);
    web1 pushed meanwhile, so s00 goes stale then, alone: a live server's later pushes do not
    make it wait again (they did: a hung plugin was never notified)."""
    await world.tick(999.0)
    await world.push(1000.0, NAMES)
    await world.push(1050.0, NAMES[1:])  # s00 hangs
    await world.ticks(1060.0, 1070.0)  # s00 due at 1066: web1 silent since 1050, so it waits
    assert await world.rows(ALERT) == []
    for now in (1100.0, 1150.0, 1200.0):  # web1 keeps pushing every 50 s
        await world.push(now, NAMES[1:])
        await world.ticks(now + 1, now + 49)
    assert await world.rows(ALERT) == [
        ("offline", "s00", "FAIL", None, "No report for 117 s (period 60 s)")]
    assert await world.notified(1250.0) == [("offline", "s00")]


@pytest_twisted.ensureDeferred
async def test_a_stale_short_period_service_does_not_keep_a_pushing_server_offline(world):
    await world.tick(999.0)
    await world.push(1000.0, ["fast"], period=10)
    await world.push(1000.0, NAMES[:3], period=300)
    assert (await world.server())[2] == 10.0
    await world.ticks(1001.0, 1012.0)  # fast was the server's only sign of life: it is offline
    assert [row[:2] for row in await world.rows(ALERT + " ORDER BY a.id")] == [
        ("server-offline", None), ("offline", "fast")]
    await world.push(1300.0, NAMES[:3], period=300)
    await world.tick(1301.0)
    # Back; its period is checked against its live services when its deadline passes: 300 s.
    await world.tick(1312.0)
    assert (await world.server())[:3] == (0, 1300.0 + 330.0, 300.0)
    await world.ticks(1380.0, 1390.0)  # fast, still stale after the fresh window: notified
    assert (await world.rows(ALERT + " ORDER BY a.id DESC LIMIT 1"))[0][:4] == (
        "offline", "fast", "FAIL", None)


@pytest_twisted.ensureDeferred
async def test_restart_awareness_gives_server_deadlines_the_fresh_window(world):
    await world.tick(999.0)
    await world.push(1000.0, NAMES[:5], period=30)
    assert (await world.server())[1] == 1033.0
    # OverC away from 1001 to 1500: its agents could not push. No offline at 1500, but the
    # fresh window: max(30 s, 65 s) + 3 s grace.
    world.interval = 1.0
    result = await world.tick(1500.0)
    assert result.away_since is not None and result.servers.offline == []
    assert (await world.server())[:2] == (0, 1568.0)
    assert await world.rows("SELECT COUNT(*) FROM alerts") == [(0,)]
    await world.ticks(1501.0, 1568.0)
    assert await world.rows("SELECT COUNT(*) FROM alerts") == [(0,)]
    result = await world.tick(1568.5)
    assert result.servers.offline == [world.server_id]
    assert [row[:4] for row in await world.rows(ALERT + " ORDER BY a.id")] == [
        ("server-offline", None, "FAIL", None),
        *[("offline", name, "FAIL", "server offline") for name in NAMES[:5]]]


@pytest_twisted.ensureDeferred
async def test_a_ping_only_server_is_never_offline_and_every_push_call_is_a_sign_of_life(world):
    await world.tick(999.0)
    await world.push(1000.0)  # registered by a ping: no period known
    await world.ticks(1000.0, 1100.0)
    assert await world.server() == (0, None, None, None)
    await world.push(1100.0, ["app"])
    await world.push(1150.0)  # a ping moves the deadline as a report does
    assert (await world.server())[1] == 1150.0 + 66.0


@pytest_twisted.ensureDeferred
async def test_a_server_dead_through_a_maintenance_window_is_notified_once_at_its_end(world):
    from overc.core.maintenance import WindowRequest
    from overc.storage.maintenance_store import MaintenanceStore

    await world.tick(999.0)
    await world.push(1000.0, NAMES[:3])
    await MaintenanceStore(world.db).create(WindowRequest(
        source="push", start=1000.0, end=1500.0, server_id=world.server_id,
        reason="reboot"), 1000.0)
    await world.ticks(1060.0, 1067.0)
    assert (await world.server())[0] == 1
    assert await world.notified(1070.0) == []  # server-offline held by the window
    assert await world.notified(1400.0) == []
    # Still dead when the window ends: its one server-offline goes out then, once.
    assert await world.notified(1500.0) == [("server-offline", None)]
    assert await world.notified(1501.0) == [("server-offline", None)]


@pytest_twisted.ensureDeferred
async def test_a_server_back_inside_its_window_is_not_notified_at_all(world):
    from overc.core.maintenance import WindowRequest
    from overc.storage.maintenance_store import MaintenanceStore

    await world.tick(999.0)
    await world.push(1000.0, NAMES[:3])
    await MaintenanceStore(world.db).create(WindowRequest(
        source="push", start=1000.0, end=1500.0, server_id=world.server_id,
        reason="reboot"), 1000.0)
    await world.ticks(1060.0, 1067.0)
    await world.notified(1070.0)
    await world.push(1200.0, NAMES[:3])  # rebooted, reporting again inside the window
    await world.tick(1201.0)
    assert [kind for kind, *_ in await world.rows(ALERT + " ORDER BY a.id")].count(
        "server-online") == 1
    assert await world.notified(1300.0) == []
    assert await world.notified(1500.0) == []
