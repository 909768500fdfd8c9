"""Store contract tests: the same tests on a SQLite file and on a fresh MariaDB database."""
from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import threads
from twisted.internet.defer import Deferred

from overc.core.counters import Counters
from overc.core.durations import Grace
from overc.core.payload import AlertRequest, Report
from overc.core.perfdata import Metric
from overc.storage.db import Cursor, load_migrations, split_statements
from overc.storage.ingest_store import IngestItem, ServerGone, Store

T0 = 1_800_000_000.0


def rows(db, sql, *params):
    def txn(cursor: Cursor):
        return cursor.execute(sql, params).fetchall()
    return db.run(txn)


async def new_server(store: Store, name="web1") -> int:
    record, created = await store.register_server(name, "pbkdf2_sha256$1$x$y", "10.0.0.1", T0)
    assert created
    return record.id


@pytest_twisted.ensureDeferred
async def test_migrations_are_versioned_and_idempotent(database):
    versions = [v for v, _, _ in load_migrations()]
    assert versions == sorted(versions) and versions[0] == 1
    assert await database.migrate() == versions[-1]  # second run: nothing to do
    assert [r[0] for r in await rows(database, "SELECT version FROM schema_version")] == versions


@pytest_twisted.ensureDeferred
async def test_a_newer_schema_is_refused(database):
    await rows(database, "INSERT INTO schema_version (version, name, applied) VALUES (9999, 'x', 0)")
    with pytest.raises(RuntimeError, match="newer than this OverC knows"):
        await database.migrate()


def test_migration_files_split_into_statements():
    for _, name, script in load_migrations():
        statements = split_statements(script)
        assert statements, name
        assert all(not s.endswith(";") for s in statements)


@pytest_twisted.ensureDeferred
async def test_register_is_first_come(database):
    store = Store(database, Grace(), Counters())
    first, created = await store.register_server("web1", "h1", "10.0.0.1", T0)
    again, created_again = await store.register_server("web1", "h2", "10.0.0.2", T0)
    assert created and not created_again and again == first and first.key_hash == "h1"
    assert await store.get_server("web1") == first
    assert await store.get_server("WEB1") is None  # names are exact
    assert await store.get_server("nobody") is None


@pytest_twisted.ensureDeferred
async def test_ingest_writes_state_history_perfdata_and_alerts(database):
    store = Store(database, Grace(), Counters())
    server_id = await new_server(store)
    metric = Metric("/var", 91.0, "%", "90", "95", 0.0, 100.0)
    results = await store.ingest([IngestItem(server_id, "10.0.0.9", T0, reports=[
        Report("app", "OK", "up", 60),
        Report("disk", "WARN", "DISK WARNING - /var 91%", 300, metrics=(metric,)),
    ])])
    assert results == [None]
    services = await rows(database, "SELECT name, state, info, period, last_time, deadline, stale"
                                    " FROM services ORDER BY name")
    assert services == [("app", "OK", "up", 60, T0, T0 + 66, 0),
                        ("disk", "WARN", "DISK WARNING - /var 91%", 300, T0, T0 + 330, 0)]
    assert len(await rows(database, "SELECT id FROM states")) == 2
    assert await rows(database, "SELECT label, value, uom, warn, crit, min, max FROM perfdata") == [
        ("/var", 91.0, "%", "90", "95", 0.0, 100.0)]
    assert await rows(database, "SELECT kind, severity, message, state, info FROM alerts") == [
        ("state", "WARN", 'First report: "WARN"', "WARN", "DISK WARNING - /var 91%")]
    assert await rows(database, "SELECT ip, last_seen FROM servers") == [("10.0.0.9", T0)]


@pytest_twisted.ensureDeferred
async def test_many_requests_in_one_batch_fold_in_order(database):
    store = Store(database, Grace(), Counters())
    a, b = await new_server(store, "a"), await new_server(store, "b")
    items = [
        IngestItem(a, "1", T0, reports=[Report("svc", "OK", "1", 60)]),
        IngestItem(b, "2", T0, reports=[Report("svc", "FAIL", "x", 60)]),
        IngestItem(a, "1", T0 + 1, reports=[Report("svc", "WARN", "2", 60),
                                            Report("svc", "FAIL", "3", 30)]),
    ]
    assert await store.ingest(items) == [None, None, None]
    current = await rows(database, "SELECT s.name, v.name, s.state, s.info, s.period FROM services s"
                                   " JOIN servers v ON v.id = s.server_id ORDER BY v.name")
    assert current == [("svc", "a", "FAIL", "3", 30), ("svc", "b", "FAIL", "x", 60)]
    messages = await rows(database, "SELECT message FROM alerts ORDER BY id")
    assert [m[0] for m in messages] == ['First report: "FAIL"', 'State changed: "OK" -> "WARN"',
                                        'State changed: "WARN" -> "FAIL"']
    assert len(await rows(database, "SELECT id FROM states")) == 4


@pytest_twisted.ensureDeferred
async def test_late_report_goes_to_history_only(database):
    store = Store(database, Grace(), Counters())
    server_id = await new_server(store)
    await store.ingest([IngestItem(server_id, "1", T0, reports=[Report("app", "OK", "now", 60)])])
    await store.ingest([IngestItem(server_id, "1", T0 + 5, reports=[
        Report("app", "FAIL", "earlier", 60, time=T0 - 100)])])
    assert await rows(database, "SELECT state, info, last_time FROM services") == [
        ("OK", "now", T0)]
    history = await rows(database, "SELECT time, state, late FROM states ORDER BY time")
    assert history == [(T0 - 100, "FAIL", 1), (T0, "OK", 0)]
    assert await rows(database, "SELECT id FROM alerts") == []


@pytest_twisted.ensureDeferred
async def test_stale_service_reports_online_and_ack_ends_on_change(database):
    store = Store(database, Grace(), Counters())
    server_id = await new_server(store)
    await store.ingest([IngestItem(server_id, "1", T0, reports=[Report("app", "FAIL", "", 60)])])
    await rows(database, "UPDATE services SET stale = 1, acked = 1")
    await store.ingest([IngestItem(server_id, "1", T0 + 100, reports=[
        Report("app", "FAIL", "", 60)])])
    assert await rows(database, "SELECT stale, acked FROM services") == [(0, 1)]
    await store.ingest([IngestItem(server_id, "1", T0 + 101, reports=[
        Report("app", "OK", "", 60)])])
    assert await rows(database, "SELECT stale, acked FROM services") == [(0, 0)]
    kinds = await rows(database, "SELECT kind, severity FROM alerts ORDER BY id")
    assert kinds == [("state", "FAIL"), ("online", "OK"), ("state", "OK")]


@pytest_twisted.ensureDeferred
async def test_api_alerts_create_their_service_without_period(database):
    store = Store(database, Grace(), Counters())
    server_id = await new_server(store)
    await store.ingest([IngestItem(server_id, "1", T0, alerts=[
        AlertRequest("System down"), AlertRequest("Cannot check", "queue")])])
    assert await rows(database, "SELECT name, state, period, deadline FROM services") == [
        ("queue", None, None, None)]
    alerts = await rows(database, "SELECT kind, severity, message, service_id IS NULL FROM alerts"
                                  " ORDER BY id")
    assert alerts == [("api", "FAIL", "System down", 1), ("api", "FAIL", "Cannot check", 0)]


@pytest_twisted.ensureDeferred
async def test_unicode_and_near_equal_names_stay_distinct(database):
    store = Store(database, Grace(), Counters())
    server_id = await new_server(store, "сервер-1 🚀")
    names = ["app", "app ", "App", "прил", "😀" * 16]
    await store.ingest([IngestItem(server_id, "1", T0, reports=[
        Report(n, "OK", "Ünïcödé ✓ 😀", 60) for n in names])])
    stored = await rows(database, "SELECT name, info FROM services")
    assert sorted(stored) == sorted((n, "Ünïcödé ✓ 😀") for n in names)
    assert (await store.get_server("сервер-1 🚀")).id == server_id


@pytest_twisted.ensureDeferred
async def test_deleted_server_fails_only_its_own_item(database):
    store = Store(database, Grace(), Counters())
    a, b = await new_server(store, "a"), await new_server(store, "b")
    await rows(database, "DELETE FROM servers WHERE id = ?", b)
    results = await store.ingest([
        IngestItem(a, "1", T0, reports=[Report("x", "OK", "", 60)]),
        IngestItem(b, "1", T0, reports=[Report("x", "OK", "", 60)]),
    ])
    assert results[0] is None and isinstance(results[1], ServerGone)
    assert await rows(database, "SELECT server_id FROM services") == [(a,)]


@pytest_twisted.ensureDeferred
async def test_deleting_a_server_removes_its_data(database):
    store = Store(database, Grace(), Counters())
    server_id = await new_server(store)
    await store.ingest([IngestItem(server_id, "1", T0, reports=[
        Report("d", "WARN", "x", 60, metrics=(Metric("a", 1.0),))])])
    await rows(database, "DELETE FROM servers WHERE id = ?", server_id)
    for table in ("services", "states", "perfdata", "alerts"):
        assert await rows(database, f"SELECT COUNT(*) FROM {table}") == [(0,)], table


@pytest_twisted.ensureDeferred
async def test_batch_cost_is_a_fixed_number_of_statements(database, monkeypatch):
    """Group commit only pays if a batch of N requests is not N round trips to MariaDB."""
    if database.dialect.name != "mysql":
        pytest.skip("SQLite runs in-process: no round trips to count")
    store = Store(database, Grace(), Counters())
    ids = [await new_server(store, f"s{n}") for n in range(60)]
    report = [Report("app", "OK", "", 60), Report("disk", "WARN", "d", 60,
                                                  metrics=(Metric("a", 1.0),))]
    await store.ingest([IngestItem(i, "1", T0, reports=report) for i in ids])  # creates services
    import pymysql

    calls = []
    original = pymysql.connections.Connection.query

    def counting(self, sql, unbuffered=False):
        calls.append(sql)
        return original(self, sql, unbuffered)

    monkeypatch.setattr(pymysql.connections.Connection, "query", counting)
    await store.ingest([IngestItem(i, "1", T0 + 1, reports=report) for i in ids])
    statements = [s for s in calls if not str(s).strip().upper().startswith(("BEGIN", "COMMIT"))]
    # The servers' UPDATE, the locked read, and every write in one multi-statement.
    assert len(statements) == 3, [str(s)[:80] for s in statements]


@pytest_twisted.ensureDeferred
async def test_api_alert_snapshots_the_services_current_state(database):
    store = Store(database, Grace(), Counters())
    server_id = await new_server(store)
    await store.ingest([IngestItem(server_id, "1", T0, reports=[
        Report("queue", "WARN", "3000 items", 60)])])
    await store.ingest([
        IngestItem(server_id, "1", T0 + 1, alerts=[AlertRequest("stuck", "queue")]),
        IngestItem(server_id, "1", T0 + 1, reports=[Report("disk", "OK", "fine", 60)],
                   alerts=[AlertRequest("full", "disk")]),
    ])
    rows_ = await rows(database, "SELECT message, state, info FROM alerts WHERE kind = 'api'"
                                 " ORDER BY id")
    assert rows_ == [("stuck", "WARN", "3000 items"), ("full", "OK", "fine")]


@pytest_twisted.ensureDeferred
async def test_a_registration_race_returns_the_winner(database, monkeypatch):
    """Two requests (or processes) read "no such server", then both insert it."""
    import overc.storage.ingest_store as store_module

    store = Store(database, Grace(), Counters())
    winner, _ = await store.register_server("web1", "h1", "10.0.0.1", T0)
    real = store_module._txn_get_server
    calls = []

    def stale_read(cursor, name):  # what the loser saw before the winner committed
        calls.append(name)
        return None if len(calls) == 1 else real(cursor, name)

    monkeypatch.setattr(store_module, "_txn_get_server", stale_read)
    record, created = await store.register_server("web1", "h2", "10.0.0.2", T0)
    assert (record, created) == (winner, False)


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("address", [
    "2001:db8:85a3:1234:5678:8a2e:370:7334",
    "0000:0000:0000:0000:0000:ffff:192.168.100.228",  # 45 characters, the longest IPv6 text
    "fe80::1ff:fe23:4567:890a%enp0s31f6-with-a-long-interface-name",  # with a zone
])
async def test_any_client_address_is_stored(database, address):
    # MariaDB in strict mode refused more than 32 characters: the push failed for IPv6 hosts.
    store = Store(database, Grace(), Counters())
    record, _ = await store.register_server("v6", "h", address, T0)
    result = await store.ingest([IngestItem(record.id, address, T0 + 1,
                                            [Report("app", "OK", "", 60)], [])])
    assert result == [None]
    assert await rows(database, "SELECT ip FROM servers WHERE id = ?", record.id) == [(address,)]


def _txn_clock_and_changed(cursor: Cursor) -> tuple[float, list[float]]:
    changed = ("UNIX_TIMESTAMP(changed_at)" if cursor.dialect.name == "mysql"
               else "changed_at")
    clock = cursor.execute(f"SELECT {cursor.dialect.clock}").fetchone()[0]
    found = cursor.execute(f"SELECT {changed} FROM services ORDER BY id").fetchall()
    return float(clock), [float(r[0]) for r in found]


@pytest_twisted.ensureDeferred
async def test_the_ingest_keeps_changed_at_for_metrics(database):
    """/metrics reads only rows whose ``changed_at`` moved (migration 0014): the ingest's
    upsert must move it (on SQLite it sets it itself; MariaDB's ON UPDATE does)."""
    store = Store(database, Grace(), Counters())
    server_id = await new_server(store)
    for n in range(3):
        before, _ = await database.run(_txn_clock_and_changed)
        await store.ingest([IngestItem(server_id, "1", T0 + n, reports=[
            Report("app", "OK", f"report {n}", 60), Report("db", "OK", "same", 60)])])
        after, changed = await database.run(_txn_clock_and_changed)
        assert len(changed) == 2 and all(before <= c <= after for c in changed), (n, changed)


@pytest_twisted.ensureDeferred
async def test_a_reader_process_on_sqlite_does_not_hold_the_writer(tmp_path):
    """The /metrics process opens the database as a reader: its transactions take no write
    lock (``BEGIN IMMEDIATE`` did: every read held the server's commits in busy_timeout)."""
    import threading

    from overc.core.dburl import parse_database_url
    from overc.storage.db import Database
    from helpers import reactor

    target = parse_database_url(f"sqlite:///{tmp_path / 'r.db'}", tmp_path)
    writer = Database(target, reactor())
    await writer.migrate()
    reader = Database(target, reactor(), reader=True)
    inside, release = threading.Event(), threading.Event()

    def _txn_hold(cursor: Cursor) -> int:
        count = cursor.execute("SELECT COUNT(*) FROM servers").fetchone()[0]
        inside.set()
        assert release.wait(10)
        return count

    try:
        holding = Deferred.fromCoroutine(reader.run(_txn_hold))
        assert await threads.deferToThread(inside.wait, 10)
        await writer.run(lambda c: c.execute(
            "INSERT INTO servers (name, key_hash, created) VALUES ('w', 'x', 0)"))
        release.set()
        assert await holding == 0  # its snapshot began before the write
    finally:
        release.set()
        reader.close()
        writer.close()
