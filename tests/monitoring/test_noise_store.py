"""SPEC 10.1/10.2 store contract, on SQLite and MariaDB: settings, soft state and flapping
bookkeeping written by the ingest batch itself; held alerts dispatched without notifications."""
from __future__ import annotations

import pytest_twisted

from overc.core.counters import Counters
from overc.core.durations import Grace
from overc.core.payload import Report
from overc.core.policy import Overrides, Policy, flapping_value
from overc.core.routing import Route
from overc.storage.db import Cursor
from overc.storage.dispatch_store import DispatchStore
from overc.storage.ingest_store import IngestItem, Store

POLICIES = (Policy("db", servers=("db*",), values=Overrides(attempts=3)),
            Policy("all", values=Overrides(flapping="40/20", depends_on="net")))
ROUTES = (Route("ops", "OK"),)


def rows(db, sql, *params):
    def txn(cursor: Cursor):
        return cursor.execute(sql, params).fetchall()
    return db.run(txn)


async def setup(database, name="db1"):
    store = Store(database, Grace(), Counters(), POLICIES)
    record, _ = await store.register_server(name, "hash", "127.0.0.1", 1000.0)
    return store, record.id


def report(service, state, when, **settings):
    return Report(service, state, f"{service} {state}", 60, when, (), settings=Overrides(**settings))


@pytest_twisted.ensureDeferred
async def test_soft_state_and_settings_in_one_batch_and_across_batches(database):
    store, server_id = await setup(database)
    # One batch with two reports of the same service: the fold counts both.
    assert await store.ingest([
        IngestItem(server_id, "ip", 1000.0, [report("mysql", "OK", 1000.0)], server_name="db1"),
        IngestItem(server_id, "ip", 1001.0, [report("mysql", "FAIL", 1001.0)],
                   server_name="db1"),
    ]) == [None, None]
    state = "SELECT state, soft_state, soft_count, attempts, flap_thresholds, depends_on," \
            " settings_source FROM services WHERE name = 'mysql'"
    assert await rows(database, state) == [
        ("OK", "FAIL", 1, 3, "40/20", "net", "policy:db\npolicy:all\npolicy:all")]
    await store.ingest([IngestItem(server_id, "ip", 1002.0, [report("mysql", "FAIL", 1002.0)],
                                   server_name="db1")])
    assert (await rows(database, state))[0][:3] == ("OK", "FAIL", 2)
    assert await rows(database, "SELECT COUNT(*) FROM alerts") == [(0,)]
    await store.ingest([IngestItem(server_id, "ip", 1003.0, [report("mysql", "WARN", 1003.0)],
                                   server_name="db1")])
    assert (await rows(database, state))[0][:3] == ("WARN", None, 0)
    assert await rows(database, "SELECT kind, severity, held FROM alerts") == [
        ("state", "WARN", None)]
    # The report's own value wins over the policy.
    await store.ingest([IngestItem(server_id, "ip", 1004.0,
                                   [report("mysql", "OK", 1004.0, attempts=5, flapping="off")],
                                   server_name="db1")])
    assert (await rows(database, state))[0][3:] == (5, "off", "net",
                                                     "report\nreport\npolicy:all")


@pytest_twisted.ensureDeferred
async def test_flapping_bookkeeping_and_held_alerts_are_not_notified(database):
    store, server_id = await setup(database, "web1")
    states = ["OK", "FAIL"] * 5
    for n, state in enumerate(states):
        when = 1000.0 + n
        await store.ingest([IngestItem(server_id, "ip", when,
                                       [report("app", state, when, flapping="30/25")],
                                       server_name="web1")])
    ((bits, flapping),) = await rows(database, "SELECT flap_bits, flapping FROM services")
    assert flapping == 1 and flapping_value(bits) > 30 and bits == (1 << 9) - 1
    alerts = await rows(database, "SELECT id, kind, held FROM alerts ORDER BY id")
    held = [a for a in alerts if a[2] is not None]
    assert held and {(kind, why) for _, kind, why in held} == {("state", "flapping")}
    assert [kind for _, kind, _ in alerts].count("flapping") == 1

    dispatch = DispatchStore(database)
    result = await dispatch.dispatch(2000.0, ROUTES)
    assert result.held == len(held) and result.alerts == len(alerts) - len(held)
    linked = {a for (a,) in await rows(database, "SELECT alert_id FROM notification_alerts")}
    assert linked == {a for a, _, why in alerts if why is None}
    # Held alerts are done with: dispatched, never pending again.
    assert await rows(database, "SELECT COUNT(*) FROM alerts WHERE dispatched <> 1") == [(0,)]
    assert (await dispatch.dispatch(2001.0, ROUTES)).notifications == 0


@pytest_twisted.ensureDeferred
async def test_a_missed_period_is_never_soft(database):
    from overc.storage.watchdog_store import WatchdogStore

    store, server_id = await setup(database)  # db1: attempts = 3 by policy
    await store.ingest([IngestItem(server_id, "ip", 1000.0, [report("mysql", "OK", 1000.0)],
                                   server_name="db1")])
    await store.ingest([IngestItem(server_id, "ip", 1001.0, [report("mysql", "FAIL", 1001.0)],
                                   server_name="db1")])
    watchdog = WatchdogStore(database)
    await watchdog.watchdog_tick(1001.0, interval=1000.0, grace=Grace())
    await store.ingest([IngestItem(server_id, "ip", 1065.0, [])])  # a ping: db1 lives
    await watchdog.watchdog_tick(1068.0, interval=1000.0, grace=Grace())
    # Soft 1/3 when it stopped reporting: the offline alert comes at the deadline all the same.
    assert await rows(database, "SELECT kind, severity FROM alerts") == [("offline", "FAIL")]
