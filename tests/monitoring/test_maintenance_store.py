"""Maintenance windows in storage (SPEC 11) on SQLite and MariaDB: what dispatch holds, what a
window's end sends (the catch-up rule), silences as windows, config windows, and the write side
(create, end, list). Services and alerts come from the real ingest and watchdog stores."""
from __future__ import annotations

import pytest
import pytest_twisted

from overc.core.maintenance import WindowRequest
from overc.storage.dispatch_store import DispatchStore
from overc.storage.maintenance_store import (
    ConfigWindow, MaintenanceStore, ScopeNotFound, WindowNotFound,
)
from overc.storage.read_alerts import AlertFilter

from test_alerting_store import ROUTES, World, _service_ids


@pytest_twisted.async_yield_fixture
async def world(database_url, tmp_path):
    from twisted.internet import reactor

    from overc.core.dburl import parse_database_url
    from overc.storage.db import Database

    db = Database(parse_database_url(database_url, tmp_path), reactor)
    await db.migrate()
    w = World(db)
    w.maintenance = MaintenanceStore(db)
    yield w
    db.close()


async def window(world, start, end, *, services=(), server="web1", service_id=None):
    return await world.maintenance.create(WindowRequest(
        source="push", start=start, end=end, server_id=world.servers[server],
        service_id=service_id, services=tuple(services), reason="deploy"), start)


async def sent(world):
    """(channel, alert message) of every notification so far."""
    alerts = {a.id: a for a in await world.tables.alerts()}
    out = []
    for note in await world.tables.notifications():
        for alert_id in note.alert_ids:
            out.append((note.channel, alerts[alert_id].service_name, alerts[alert_id].message))
    return sorted(out)


@pytest_twisted.ensureDeferred
async def test_problem_inside_a_window_is_held_then_sent_once_at_its_end(world):
    await world.report("web1", 1000.0, ("app", "OK"), ("db", "OK"))
    await window(world, 1000.0, 1300.0, services=["app"])
    await world.report("web1", 1100.0, ("app", "FAIL"), ("db", "FAIL"))
    result = await world.dispatch.dispatch(1100.0, ROUTES)
    assert (result.held, result.alerts) == (1, 1)  # db is outside the window's scope
    assert {n for _, n, _ in await sent(world)} == {"db"}
    assert (await world.dispatch.dispatch(1299.0, ROUTES)).released == 0
    result = await world.dispatch.dispatch(1300.0, ROUTES)
    assert result.released == 1
    assert [s for s in await sent(world) if s[1] == "app"] == [
        ("all", "app", 'State changed: "OK" -> "FAIL"'),
        ("ops", "app", 'State changed: "OK" -> "FAIL"'),
        ("pager", "app", 'State changed: "OK" -> "FAIL"'),
    ]
    assert (await world.dispatch.dispatch(1301.0, ROUTES)).notifications == 0
    # Marked: the read model says which window held it, after the release too.
    from overc.storage.queries import Queries

    alerts = await Queries(world.db).alerts(AlertFilter(service_name="app"))
    assert [a.held for a in alerts] == ["maintenance"]


@pytest_twisted.ensureDeferred
async def test_catch_up_problem_before_recovery_inside_and_flapping(world):
    await world.report("web1", 1000.0, ("a", "OK"), ("b", "OK"), ("c", "OK"), ("d", "OK"))
    await world.report("web1", 1001.0, ("a", "FAIL"), ("b", "FAIL"))  # told before
    await world.dispatch.dispatch(1001.0, ROUTES)
    before = len(await sent(world))
    await window(world, 1010.0, 2000.0)
    # a: FAIL -> OK -> FAIL inside (where the channels left it); b: recovers inside;
    # c: a problem begins and ends inside; d: a problem begins inside and stays.
    await world.report("web1", 1100.0, ("a", "OK"), ("b", "OK"), ("c", "FAIL"), ("d", "WARN"))
    await world.report("web1", 1200.0, ("a", "FAIL"), ("c", "OK"), ("d", "FAIL"))
    assert (await world.dispatch.dispatch(1200.0, ROUTES)).held == 7
    assert len(await sent(world)) == before
    assert (await world.dispatch.dispatch(2000.0, ROUTES)).released == 2
    told_before = {("a", 'State changed: "OK" -> "FAIL"'), ("b", 'State changed: "OK" -> "FAIL"')}
    new = [s for s in await sent(world) if (s[1], s[2]) not in told_before]
    assert new == [
        ("all", "b", 'State changed: "FAIL" -> "OK"'),
        ("all", "d", 'State changed: "WARN" -> "FAIL"'),
        ("ops", "b", 'State changed: "FAIL" -> "OK"'),
        ("ops", "d", 'State changed: "WARN" -> "FAIL"'),
        ("pager", "b", 'State changed: "FAIL" -> "OK"'),
        ("pager", "d", 'State changed: "WARN" -> "FAIL"'),
    ]
    assert (await world.dispatch.dispatch(2001.0, ROUTES)).notifications == 0


@pytest_twisted.ensureDeferred
async def test_deadline_in_a_window_makes_stale_but_holds_offline(world):
    await world.report("web1", 1000.0, ("app", "OK"))  # deadline 1066
    await window(world, 1000.0, 1500.0)
    await world.report("web1", 1065.0)  # a ping: the server lives (SPEC 10.3), app is late
    assert len((await world.tick(1070.0)).expired) == 1
    assert (await world.dispatch.dispatch(1070.0, ROUTES)).held == 1
    assert await sent(world) == []
    await world.dispatch.dispatch(1500.0, ROUTES)
    assert {(c, m) for c, _, m in await sent(world)} == {
        ("ops", "No report for 70 s (period 60 s)"), ("pager", "No report for 70 s (period 60 s)"),
        ("all", "No report for 70 s (period 60 s)")}


@pytest_twisted.ensureDeferred
async def test_repeats_pause_in_a_window(world):
    from overc.core.routing import Route

    routes = (Route("ops", "WARN", repeat=60.0),)
    await world.report("web1", 1000.0, ("app", "OK"))
    await world.report("web1", 1001.0, ("app", "FAIL"))
    await world.dispatch.dispatch(1001.0, routes)
    await window(world, 1010.0, 1200.0)
    assert (await world.dispatch.dispatch(1062.0, routes)).repeats == 0
    assert (await world.dispatch.dispatch(1123.0, routes)).repeats == 0
    assert (await world.dispatch.dispatch(1300.0, routes)).repeats == 1


@pytest_twisted.ensureDeferred
async def test_recurring_glob_window_from_config(world):
    windows = (WindowRequest(source="config", name="nightly", schedule="0 2 * * *", tz="UTC",
                             duration=3600.0, servers=("db*",), reason="backups"),)
    world.dispatch = DispatchStore(world.db, windows)
    night = 86400.0 * 10 + 2 * 3600  # 02:00 UTC on day 10
    await world.report("db1", night - 100, ("backup", "OK"))
    await world.report("web1", night - 100, ("app", "OK"))
    await world.dispatch.dispatch(night - 100, ROUTES)
    await world.report("db1", night + 60, ("backup", "FAIL"))
    await world.report("web1", night + 60, ("app", "FAIL"))
    result = await world.dispatch.dispatch(night + 60, ROUTES)
    assert (result.held, result.alerts) == (1, 1)
    assert (await world.dispatch.dispatch(night + 3599, ROUTES)).released == 0
    assert (await world.dispatch.dispatch(night + 3600, ROUTES)).released == 1
    listed = await world.maintenance.list(night)
    assert [(w.source, w.name, w.servers) for w in listed] == [("config", "nightly", ("db*",))]
    with pytest.raises(ConfigWindow):
        await world.maintenance.end(listed[0].id, night)
    # A second process with the same config: still one window, the same one.
    await DispatchStore(world.db, windows).dispatch(night + 4000, ROUTES)
    assert [w.id for w in await world.maintenance.list(night)] == [listed[0].id]
    # The section is gone from the config: so is the window.
    await DispatchStore(world.db, ()).dispatch(night + 5000, ROUTES)
    assert await world.maintenance.list(night) == []


@pytest_twisted.ensureDeferred
async def test_write_side_create_end_list(world):
    await world.report("web1", 1000.0, ("app", "OK"))
    (app,) = await _service_ids(world)
    first = await window(world, 1000.0, 2000.0)
    coming = await window(world, 3000.0, 4000.0, service_id=app)
    listed = await world.maintenance.list(1500.0)
    assert [(w.id, w.server_name, w.service_name) for w in listed] == [
        (first, "web1", None), (coming, "web1", "app")]
    await world.maintenance.end(coming, 1500.0)  # not begun: gone
    await world.maintenance.end(first, 1500.0)  # running: ends now, kept in the list's past
    assert await world.maintenance.list(1500.0) == []
    assert [w.end for w in await world.maintenance.list(1500.0, recent=3600)] == [1500.0]
    with pytest.raises(WindowNotFound):
        await world.maintenance.end(coming, 1500.0)
    with pytest.raises(ScopeNotFound):
        await world.maintenance.create(WindowRequest(source="api", start=1, end=2,
                                                     server_id=999), 1.0)
    # Retention forgets windows over for long; recurring ones (no end) stay.
    assert await world.retention.purge(1600.0, "maintenance", 100) == 1
    assert await world.maintenance.list(0.0, recent=1e9) == []
    # Push windows end together, and only the server's own.
    await window(world, 1500.0, 9000.0)
    assert await world.maintenance.end_push(world.servers["web1"], 1600.0) == 1
    assert await world.maintenance.list(1600.0) == []


@pytest_twisted.ensureDeferred
async def test_silence_is_a_window_and_unsilence_ends_it(world):
    from overc.storage.actions import Actions

    await world.report("web1", 1000.0, ("app", "OK"))
    (app,) = await _service_ids(world)
    actions = Actions(world.db)
    assert await actions.silence("service", app, 5000.0, "noisy", 1000.0)
    listed = await world.maintenance.list(1000.0)
    assert [(w.source, w.service_id, w.end, w.reason) for w in listed] == [
        ("silence", app, 5000.0, "noisy")]
    await world.report("web1", 1100.0, ("app", "FAIL"))
    assert (await world.dispatch.dispatch(1100.0, ROUTES)).held == 1
    assert await actions.unsilence("service", app, 1200.0)
    assert await world.maintenance.list(1200.0) == []
    assert (await world.dispatch.dispatch(1200.0, ROUTES)).released == 1


@pytest_twisted.ensureDeferred
async def test_migration_turns_running_silences_into_windows(database_url, tmp_path):
    """A database of the schema before 0008 with a silenced server and a silenced service:
    after the upgrade both are one-off windows that hold their alerts."""
    from twisted.internet import reactor

    from overc.core.dburl import parse_database_url
    from overc.storage import db as dbmodule
    from overc.storage import migrate as migrations

    db = dbmodule.Database(parse_database_url(database_url, tmp_path), reactor)
    everything = migrations.load_migrations
    try:
        migrations.load_migrations = lambda: [m for m in everything() if m[0] < 8]
        assert await db.migrate() < 8
        world = World(db)

        def silence(cursor):
            # Rows as the old schema holds them (today's ingest writes columns it lacks).
            for server, service in (("web1", "app"), ("web2", "db")):
                cursor.execute("INSERT INTO servers (name, key_hash, ip, created, last_seen)"
                               " VALUES (?, 'hash', '127.0.0.1', 1000, 1000)", (server,))
                cursor.execute("INSERT INTO services (server_id, name, created, state, period,"
                               " last_time, deadline) VALUES (?, ?, 1000, 'OK', 60, 1000, 1066)",
                               (cursor.lastrowid, service))
            cursor.execute("UPDATE servers SET silenced_until = 5000, silence_reason = 'move'"
                           " WHERE name = 'web1'")
            cursor.execute("UPDATE services SET silenced_until = 6000, silence_reason = 'disk'"
                           " WHERE name = 'db'")

        await db.run(silence)
        migrations.load_migrations = everything
        assert await db.migrate() >= 8
        windows = await MaintenanceStore(db).list(2000.0)
        assert sorted((w.source, w.server_name, w.service_name, w.end, w.reason)
                      for w in windows) == [("silence", "web1", None, 5000.0, "move"),
                                            ("silence", "web2", "db", 6000.0, "disk")]
        await world.report("web1", 2000.0, ("app", "FAIL"))
        await world.report("web2", 2000.0, ("db", "FAIL"))
        assert (await world.dispatch.dispatch(2000.0, ROUTES)).held == 2
    finally:
        migrations.load_migrations = everything
        db.close()


@pytest_twisted.ensureDeferred
async def test_overlapping_windows_hold_until_the_last_ends_and_a_long_one_starves_nothing(
        world):
    await world.report("web1", 1000.0, ("app", "OK"))
    await world.report("web2", 1000.0, ("db", "OK"))
    await window(world, 1000.0, 9000.0)  # web1, long
    await window(world, 1000.0, 1500.0, server="web1")  # web1 again, short (overlap)
    await window(world, 1000.0, 1200.0, server="web2")
    await world.report("web1", 1100.0, ("app", "FAIL"))
    await world.report("web2", 1100.0, ("db", "FAIL"))
    # web1's many held alerts come first by id and stay held by the long window ...
    assert (await world.dispatch.dispatch(1100.0, ROUTES, limit=1)).held == 1
    await world.dispatch.dispatch(1101.0, ROUTES, limit=1)
    # ... and web2's window end is not kept waiting behind them, even with a batch of 1.
    assert (await world.dispatch.dispatch(1200.0, ROUTES, limit=1)).released == 1
    assert {n for _, n, _ in await sent(world)} == {"db"}
    assert (await world.dispatch.dispatch(1600.0, ROUTES, limit=1)).released == 0
    assert (await world.dispatch.dispatch(9000.0, ROUTES, limit=1)).released == 1
    assert {n for _, n, _ in await sent(world)} == {"db", "app"}
