"""SPEC 10.4 store contract, on SQLite and MariaDB: a child's alerts are held at dispatch while
its parent is down (a hard problem or stale), and the catch-up when the parent is back is
queued once, also with two processes dispatching at the same moment."""
from __future__ import annotations

import pytest_twisted
from twisted.internet.defer import Deferred, gatherResults

from overc.core.counters import Counters
from overc.core.durations import Grace
from overc.core.payload import Report
from overc.core.policy import Overrides, Policy
from overc.core.routing import Route
from overc.storage.db import Cursor
from overc.storage.dispatch_store import DispatchStore
from overc.storage.ingest_store import IngestItem, Store
from overc.storage.watchdog_store import WatchdogStore

ROUTES = (Route("ops", "OK"),)
#: ``queue`` gets its parent from a policy section, ``app`` from its report.
POLICIES = (Policy("queues", services=("queue",), values=Overrides(depends_on="mysql")),)


def rows(db, sql, *params):
    def txn(cursor: Cursor):
        return cursor.execute(sql, params).fetchall()
    return db.run(txn)


class World:
    def __init__(self, db):
        self.db = db
        self.store = Store(db, Grace(), Counters(), POLICIES)
        self.dispatch = DispatchStore(db)
        self.server_id = 0

    async def start(self):
        record, _ = await self.store.register_server("db1", "hash", "127.0.0.1", 1000.0)
        self.server_id = record.id
        return self

    async def push(self, when, *services):
        """``(name, state)`` or ``(name, state, depends_on)`` reports in one batch."""
        reports = [Report(s[0], s[1], f"{s[0]} {s[1]}", 60, when, (),
                          settings=Overrides(depends_on=s[2]) if len(s) > 2 else Overrides())
                   for s in services]
        assert await self.store.ingest([IngestItem(self.server_id, "ip", when, reports,
                                                   server_name="db1")]) == [None]

    async def notified(self):
        """(service, kind, severity, message) of every alert in a notification, in order."""
        return await rows(self.db,
                          "SELECT v.name, a.kind, a.severity, a.message FROM notification_alerts na"
                          " JOIN alerts a ON a.id = na.alert_id JOIN services v"
                          " ON v.id = a.service_id ORDER BY na.notification_id, a.id")

    async def held(self):
        return await rows(self.db, "SELECT v.name, a.kind, a.severity, a.held FROM alerts a"
                                   " JOIN services v ON v.id = a.service_id"
                                   " WHERE a.held IS NOT NULL ORDER BY a.id")


@pytest_twisted.ensureDeferred
async def test_child_held_while_parent_fails_then_caught_up_once(database):
    world = await World(database).start()
    await world.push(1000.0, ("mysql", "OK"), ("app", "OK", "mysql"), ("queue", "OK"))
    # Parent and children fail in one batch: the parent's new state counts at dispatch.
    await world.push(1060.0, ("mysql", "FAIL"), ("app", "FAIL", "mysql"), ("queue", "WARN"))
    result = await world.dispatch.dispatch(1061.0, ROUTES)
    assert result.held == 2 and result.alerts == 1
    assert await world.notified() == [("mysql", "state", "FAIL", 'State changed: "OK" -> "FAIL"')]
    assert await world.held() == [("app", "state", "FAIL", "depends on mysql"),
                                  ("queue", "state", "WARN", "depends on mysql")]
    # Still down: a later child change is held too, and nothing is caught up.
    await world.push(1120.0, ("mysql", "WARN"), ("app", "UNK", "mysql"), ("queue", "WARN"))
    result = await world.dispatch.dispatch(1121.0, ROUTES)
    assert result.caught_up == 0 and result.held == 1
    assert [n[:3] for n in await world.notified()] == [("mysql", "state", "FAIL"),
                                                       ("mysql", "state", "WARN")]
    # The parent is back: each child still in a problem is notified once, with its truth,
    # in the same notification as the parent's recovery.
    await world.push(1180.0, ("mysql", "OK"), ("app", "UNK", "mysql"), ("queue", "WARN"))
    result = await world.dispatch.dispatch(1181.0, ROUTES)
    assert result.caught_up == 2 and result.notifications == 1
    assert (await world.notified())[2:] == [
        ("mysql", "state", "OK", 'State changed: "WARN" -> "OK"'),
        ("app", "state", "UNK", "Still UNK now that mysql is back: app UNK"),
        ("queue", "state", "WARN", "Still WARN now that mysql is back: queue WARN"),
    ]
    assert await rows(database, "SELECT COUNT(*) FROM services WHERE held_by_parent = 1") == [
        (0,)]
    await world.push(1240.0, ("mysql", "OK"), ("app", "UNK", "mysql"), ("queue", "WARN"))
    assert (await world.dispatch.dispatch(1241.0, ROUTES)).notifications == 0
    # The read model shows why.
    from overc.storage.read_alerts import AlertFilter, _txn_alerts
    shown = await database.run(_txn_alerts, AlertFilter())
    assert {a.held for a in shown} == {None, "depends on mysql"}


@pytest_twisted.ensureDeferred
async def test_child_held_while_parent_is_stale(database):
    world = await World(database).start()
    await world.push(1000.0, ("mysql", "OK"), ("app", "OK", "mysql"))
    await world.push(1050.0, ("app", "OK", "mysql"))
    watchdog = WatchdogStore(database)
    await watchdog.watchdog_tick(1050.0, interval=1000.0, grace=Grace())
    # mysql is due at 1066, but db1 has said nothing since 1050: it waits for its server's
    # verdict (SPEC 10.3), at most until db1's deadline (1116).
    await watchdog.watchdog_tick(1067.0, interval=1000.0, grace=Grace())
    await world.push(1068.0, ("app", "OK", "mysql"))
    # db1 spoke after mysql was due: mysql alone is stale (a hung plugin, not a dead host).
    await watchdog.watchdog_tick(1117.0, interval=1000.0, grace=Grace())
    await world.push(1118.0, ("app", "FAIL", "mysql"))
    await world.dispatch.dispatch(1119.0, ROUTES)
    assert [n[:2] for n in await world.notified()] == [("mysql", "offline")]
    assert await world.held() == [("app", "state", "FAIL", "depends on mysql")]
    # mysql reports again (OK): it is back, and app's problem is notified with its online alert.
    await world.push(1150.0, ("mysql", "OK"))
    result = await world.dispatch.dispatch(1151.0, ROUTES)
    assert result.caught_up == 1
    assert [n[:3] for n in await world.notified()][1:] == [
        ("mysql", "online", "OK"), ("app", "state", "FAIL")]


@pytest_twisted.ensureDeferred
async def test_child_recovered_meanwhile_sends_nothing(database):
    world = await World(database).start()
    await world.push(1000.0, ("mysql", "OK"), ("app", "OK", "mysql"))
    await world.push(1060.0, ("mysql", "FAIL"), ("app", "FAIL", "mysql"))
    await world.dispatch.dispatch(1061.0, ROUTES)
    await world.push(1120.0, ("app", "OK", "mysql"))
    await world.dispatch.dispatch(1121.0, ROUTES)
    assert [h[2] for h in await world.held()] == ["FAIL", "OK"]
    await world.push(1180.0, ("mysql", "OK"))
    result = await world.dispatch.dispatch(1181.0, ROUTES)
    assert result.caught_up == 0
    assert [n[:3] for n in await world.notified()] == [("mysql", "state", "FAIL"),
                                                       ("mysql", "state", "OK")]
    assert await rows(database, "SELECT COUNT(*) FROM services WHERE held_by_parent = 1") == [
        (0,)]


@pytest_twisted.ensureDeferred
async def test_catch_up_exactly_once_with_two_processes(database, database_url, tmp_path):
    from twisted.internet import reactor

    from overc.core.dburl import parse_database_url
    from overc.storage.db import Database

    world = await World(database).start()
    other_db = Database(parse_database_url(database_url, tmp_path), reactor)
    other = DispatchStore(other_db)
    try:
        children = [(f"c{i}", "OK", "mysql") for i in range(20)]
        await world.push(1000.0, ("mysql", "OK"), *children)
        await world.push(1060.0, ("mysql", "FAIL"), *[(c, "FAIL", p) for c, _, p in children])
        await gatherResults([Deferred.fromCoroutine(d.dispatch(1061.0, ROUTES, limit=7))
                             for d in (world.dispatch, other, world.dispatch, other)])
        while (await world.dispatch.dispatch(1061.0, ROUTES, limit=7)).alerts:
            pass
        assert len(await world.held()) == 20
        await world.push(1120.0, ("mysql", "OK"))
        results = await gatherResults([
            Deferred.fromCoroutine(d.dispatch(1121.0, ROUTES, limit=7))
            for d in (world.dispatch, other, world.dispatch, other)])
        while (await world.dispatch.dispatch(1122.0, ROUTES, limit=7)).alerts:
            pass
        assert sum(r.caught_up for r in results) + (
            await world.dispatch.dispatch(1123.0, ROUTES)).caught_up == 20
        caught = [n for n in await world.notified() if n[3].startswith("Still FAIL")]
        assert sorted(n[0] for n in caught) == sorted(c for c, _, _ in children)
    finally:
        other_db.close()


@pytest_twisted.ensureDeferred
async def test_missing_parent_and_cycles_hold_nothing(database):
    world = await World(database).start()
    await world.push(1000.0, ("a", "OK", "b"), ("b", "OK", "a"), ("c", "OK", "a"),
                     ("x", "OK", "nothere"))
    await world.push(1060.0, ("a", "FAIL", "b"), ("b", "FAIL", "a"), ("c", "FAIL", "a"),
                     ("x", "FAIL", "nothere"))
    await world.dispatch.dispatch(1061.0, ROUTES)
    assert sorted(n[0] for n in await world.notified()) == ["a", "b", "x"]
    assert await world.held() == [("c", "state", "FAIL", "depends on a")]


@pytest_twisted.ensureDeferred
async def test_a_chain_is_released_link_by_link(database):
    world = await World(database).start()
    await world.push(1000.0, ("db", "OK"), ("app", "OK", "db"), ("web", "OK", "app"))
    await world.push(1060.0, ("db", "FAIL"), ("app", "FAIL", "db"), ("web", "FAIL", "app"))
    await world.dispatch.dispatch(1061.0, ROUTES)
    assert [h[0] for h in await world.held()] == ["app", "web"]
    await world.push(1120.0, ("db", "OK"))
    assert (await world.dispatch.dispatch(1121.0, ROUTES)).caught_up == 1  # app, not web
    assert [n[:3] for n in await world.notified()][1:] == [("db", "state", "OK"),
                                                           ("app", "state", "FAIL")]
    await world.push(1180.0, ("app", "OK", "db"))
    assert (await world.dispatch.dispatch(1181.0, ROUTES)).caught_up == 1  # web, still FAIL
    assert [n[:3] for n in await world.notified()][3:] == [("app", "state", "OK"),
                                                           ("web", "state", "FAIL")]


@pytest_twisted.ensureDeferred
async def test_a_long_parent_name_fits_the_held_column(database):
    world = await World(database).start()
    parent = "p" * 64
    await world.push(1000.0, (parent, "OK"), ("app", "OK", parent))
    await world.push(1060.0, (parent, "FAIL"), ("app", "FAIL", parent))
    await world.dispatch.dispatch(1061.0, ROUTES)
    ((_, _, _, reason),) = await world.held()
    assert len(reason) == 63 and reason.startswith("depends on ppp") and reason.endswith("…")


@pytest_twisted.ensureDeferred
async def test_a_released_child_is_caught_up_with_nothing_else_to_dispatch(database):
    # The child no longer depends on mysql (its report drops the field) while mysql is still
    # down: no alert comes with that, yet the catch-up is due at the next round.
    world = await World(database).start()
    await world.push(1000.0, ("mysql", "OK"), ("app", "OK", "mysql"))
    await world.push(1060.0, ("mysql", "FAIL"), ("app", "FAIL", "mysql"))
    await world.dispatch.dispatch(1061.0, ROUTES)
    assert (await world.dispatch.dispatch(1062.0, ROUTES)).caught_up == 0  # still held
    await world.push(1120.0, ("mysql", "FAIL"), ("app", "FAIL"))
    assert (await world.dispatch.dispatch(1121.0, ROUTES)).caught_up == 1
    assert [n[:3] for n in await world.notified()] == [("mysql", "state", "FAIL"),
                                                       ("app", "state", "FAIL")]
    # Claimed: the next round is the usual read-only answer.
    assert await world.dispatch.dispatch(1122.0, ROUTES) == type(
        await world.dispatch.dispatch(1123.0, ROUTES))()


@pytest_twisted.ensureDeferred
async def test_a_deleted_parent_releases_its_child_at_the_next_round(database):
    world = await World(database).start()
    await world.push(1000.0, ("mysql", "OK"), ("app", "OK", "mysql"))
    await world.push(1060.0, ("mysql", "FAIL"), ("app", "FAIL", "mysql"))
    await world.dispatch.dispatch(1061.0, ROUTES)

    def delete(cursor: Cursor) -> None:
        cursor.execute("DELETE FROM services WHERE name = 'mysql'")
    await database.run(delete)
    assert (await world.dispatch.dispatch(1062.0, ROUTES)).caught_up == 1


async def sent(db) -> list[tuple[str, str, str]]:
    """(channel, notification kind, service) of every notified alert, in order."""
    return [tuple(r) for r in await rows(
        db, "SELECT n.channel, n.kind, v.name FROM notifications n"
            " JOIN notification_alerts x ON x.notification_id = n.id"
            " JOIN alerts a ON a.id = x.alert_id"
            " JOIN services v ON v.id = a.service_id ORDER BY n.id, a.id")]


@pytest_twisted.ensureDeferred
async def test_a_childs_repeats_and_escalations_wait_while_its_parent_is_down(database):
    # SPEC 10.4: the child's alerts are not notified while its parent is down; its reminders
    # and escalations are notifications of those alerts, so they wait too. The parent's own
    # repeats and escalation tell the channels what is wrong.
    chain = (Route("chat", "WARN", repeat=300.0), Route("pager", "WARN", after=600.0))
    world = await World(database).start()
    await world.push(1000.0, ("mysql", "OK"), ("app", "OK", "mysql"))
    await world.push(1060.0, ("app", "FAIL", "mysql"))  # told to chat; pager due at 1660
    await world.dispatch.dispatch(1060.0, chain)
    await world.push(1100.0, ("mysql", "FAIL"), ("app", "FAIL", "mysql"))
    await world.dispatch.dispatch(1100.0, chain)
    assert await sent(database) == [("chat", "alert", "app"), ("chat", "alert", "mysql")]
    for now in (1360.0, 1400.0, 1660.0, 1700.0):
        await world.dispatch.dispatch(now, chain)
    assert sorted((await sent(database))[2:]) == [
        ("chat", "repeat", "mysql"), ("chat", "repeat", "mysql"), ("pager", "alert", "mysql")]
    # mysql is back, app still FAIL: chat was told of that FAIL (no catch-up); the pager's
    # escalation (at its next check) and chat's repeats (one period on) resume for app.
    await world.push(1720.0, ("mysql", "OK"), ("app", "FAIL", "mysql"))
    for now in (1720.0, 1780.0, 1990.0):
        await world.dispatch.dispatch(now, chain)
    assert (await sent(database))[5:] == [
        ("chat", "alert", "mysql"), ("pager", "alert", "mysql"),  # the recovery
        ("pager", "alert", "app"), ("chat", "repeat", "app")]
