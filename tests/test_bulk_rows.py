"""The ingest's batch statements (overc.storage.bulk_rows: one multi-row statement of literals
on MariaDB, executemany on SQLite) on both databases: every value comes back exactly as sent."""
from __future__ import annotations

import pytest
import pytest_twisted

from overc.core.counters import Counters
from overc.core.durations import Grace
from overc.core.payload import AlertRequest, Report
from overc.core.perfdata import Metric
from overc.storage.db import Cursor
from overc.storage.ingest_store import IngestItem, Store
from overc.storage.bulk_rows import DOUBLE, ID, INT, TEXT, Writes

T0 = 1_800_000_000.0

#: Strings SQL escaping or literals could get wrong (no NUL: the push API refuses it in names).
AWKWARD = [
    "plain", "app", "app ", " app", "App", "it's", 'say "hi"', "back\\slash", "\\\\x\\n",
    "tab\tnew\nline", "%s %d %% ?", "'; DROP TABLE states; --", "ünïcödé прил 中文 😀🚀",
    "\u2028\u2029", "}]\"'", "$[0]", "\x7f\x01",
]
BIG = ("64 KiB ü " * 8192)[: 64 * 1024]


def insert_rows(cursor: Cursor, head: str, kinds: tuple, rows_: list) -> None:
    """One statement of ``rows_``, sent at once (what the ingest's Writes does per table)."""
    writes = Writes(cursor)
    writes.insert(head, kinds, rows_)
    writes.send()


def rows(db, sql, *params):
    def txn(cursor: Cursor):
        return cursor.execute(sql, params).fetchall()
    return db.run(txn)


@pytest_twisted.ensureDeferred
async def test_insert_rows_round_trips_every_value_exactly(database):
    """Quotes, backslashes, placeholders, unicode, 64 KiB, NULLs and doubles to the last bit."""
    await rows(database, "INSERT INTO servers (name, key_hash, created) VALUES ('s', 'h', 0)")
    (server_id,), = await rows(database, "SELECT id FROM servers")
    await rows(database, "INSERT INTO services (server_id, name, created) VALUES (?, 'x', 0)",
               server_id)
    (service_id,), = await rows(database, "SELECT id FROM services")
    doubles = [0.1 + 0.2, 1e-300, -1.5e300, T0 + 0.123456789, 2.0 ** 52 + 0.5, 0.0]
    values = [*AWKWARD, BIG, None]
    sent = [(service_id, doubles[i % len(doubles)], "OK" if i % 2 else "WARN", info,
             i % 2, None if i % 3 else doubles[i % len(doubles)])
            for i, info in enumerate(values)]

    def txn(cursor: Cursor):
        insert_rows(cursor, "INSERT INTO states (service_id, time, state, info, late, duration)",
                    (ID, DOUBLE, TEXT, TEXT, INT, DOUBLE), sent)
        insert_rows(cursor, "INSERT INTO states (service_id, time, state, info, late, duration)",
                    (ID, DOUBLE, TEXT, TEXT, INT, DOUBLE), [])  # nothing: no statement
    await database.run(txn)
    got = await rows(database, "SELECT service_id, time, state, info, late, duration FROM states"
                               " ORDER BY id")
    assert got == sent
    assert [len(info) for *_, info, _, _ in got if info == BIG] == [64 * 1024]


@pytest_twisted.ensureDeferred
async def test_ingest_stores_awkward_names_infos_and_perfdata_as_sent(database):
    """Through the whole ingest batch: states, perfdata, alerts and the services upsert."""
    store = Store(database, Grace(), Counters())
    record, _ = await store.register_server("сервер 'x' \\ 😀", "h", "10.0.0.1", T0)
    names = [n for n in AWKWARD if n.strip() and "\n" not in n and "\t" not in n] + ["😀" * 16]
    reports = [Report(name, "WARN", f"{name} | '{name[:5]}'=1.5{name[:1]};2;3;0;10", 60,
                      metrics=(Metric(name, 0.1 + 0.2, "ü", "1:2", "@3", None, 1e300),))
               for name in names]
    reports.append(Report("big", "CRITICAL", BIG, 60))
    await store.ingest([IngestItem(record.id, "1", T0, reports=reports,
                                   alerts=[AlertRequest("api 'é' \\", "big")])])
    await store.ingest([IngestItem(record.id, "1", T0 + 1, reports=reports)])  # the upsert path
    stored = dict(await rows(database, "SELECT name, info FROM services"))
    assert stored == {r.service: r.info for r in reports}
    assert len(stored) == len(names) + 1  # "app" and "app " are two services
    history = await rows(database, "SELECT s.name, st.state, st.info, st.time FROM states st"
                                   " JOIN services s ON s.id = st.service_id ORDER BY st.id")
    assert history == [(r.service, r.state, r.info, T0 + t) for t in (0, 1) for r in reports]
    metrics = await rows(database, "SELECT label, value, uom, warn, crit, min, max FROM perfdata"
                                   " WHERE time = ? ORDER BY id", T0)
    assert metrics == [(n, 0.1 + 0.2, "ü", "1:2", "@3", None, 1e300) for n in names]
    alerts = await rows(database, "SELECT message, state, info FROM alerts WHERE kind = 'api'")
    assert alerts == [("api 'é' \\", "CRITICAL", BIG)]


@pytest_twisted.ensureDeferred
async def test_a_too_long_value_fails_the_statement_as_a_literal_did(database):
    """A literal is converted to the column at INSERT: the table's own limits still apply."""
    if database.dialect.name != "mysql":
        pytest.skip("SQLite has no column lengths")
    await rows(database, "INSERT INTO servers (name, key_hash, created) VALUES ('s', 'h', 0)")
    (server_id,), = await rows(database, "SELECT id FROM servers")

    def txn(cursor: Cursor):
        insert_rows(cursor, "INSERT INTO services (server_id, name, created)", (ID, TEXT, DOUBLE),
                    [(server_id, "n" * 256, 0.0)])
    with pytest.raises(Exception, match="1406|too long"):
        await database.run(txn, attempts=1)
    assert await rows(database, "SELECT COUNT(*) FROM services") == [(0,)]


@pytest_twisted.ensureDeferred
async def test_the_locked_read_brings_doubles_and_names_back_exactly(database):
    """The batch's locked read (one JSON document on MariaDB): a run's start time read back
    from the row gives the run's duration to the last bit, for near-equal names alike."""
    from overc.core.runs import RunStart

    store = Store(database, Grace(), Counters())
    record, _ = await store.register_server("s", "h", "10.0.0.1", T0)
    names = ["app", "app ", "ü😀'\"\\"]
    started, ended = T0 + 0.123456789, T0 + 5.987654321012
    await store.ingest([IngestItem(record.id, "1", T0, starts=[
        RunStart(name, 60, started + i) for i, name in enumerate(names)])])
    await store.ingest([IngestItem(record.id, "1", ended + 10, reports=[
        Report(name, "OK", name, 60, time=ended) for name in names])])
    got = await rows(database, "SELECT s.name, st.duration FROM states st JOIN services s"
                               " ON s.id = st.service_id ORDER BY st.id")
    assert got == [(name, ended - (started + i)) for i, name in enumerate(names)]
    assert await rows(database, "SELECT COUNT(*) FROM services") == [(3,)]


@pytest_twisted.ensureDeferred
async def test_a_batch_larger_than_one_statement_is_split_and_stored_whole(database, monkeypatch):
    """A batch of large infos must not exceed MariaDB's max_allowed_packet in one statement."""
    import overc.storage.bulk_rows as bulk_rows

    monkeypatch.setattr(bulk_rows, "MAX_STATEMENT", 400 * 1024)
    await rows(database, "INSERT INTO servers (name, key_hash, created) VALUES ('s', 'h', 0)")
    (server_id,), = await rows(database, "SELECT id FROM servers")
    await rows(database, "INSERT INTO services (server_id, name, created) VALUES (?, 'x', 0)",
               server_id)
    (service_id,), = await rows(database, "SELECT id FROM services")
    sent = [(service_id, T0 + i, "OK", f"{i} {BIG}") for i in range(13)]
    statements = []
    if database.dialect.name == "mysql":
        import pymysql

        original = pymysql.cursors.Cursor.execute

        def counting(self, query, args=None):
            statements.append(len(query))
            return original(self, query, args)

        monkeypatch.setattr(pymysql.cursors.Cursor, "execute", counting)

    def txn(cursor: Cursor):
        insert_rows(cursor, "INSERT INTO states (service_id, time, state, info)",
                    (ID, DOUBLE, TEXT, TEXT), sent)
    await database.run(txn)
    monkeypatch.undo()
    assert await rows(database, "SELECT service_id, time, state, info FROM states"
                                " ORDER BY id") == sent
    if database.dialect.name == "mysql":
        inserts = [n for n in statements if n > 1000]
        assert len(inserts) > 1 and max(inserts) < 400 * 1024 + 1000, inserts


@pytest_twisted.ensureDeferred
async def test_a_non_finite_double_is_refused_before_any_statement(database):
    """SQL has no literal for inf or nan: refused in Python, nothing written."""
    await rows(database, "INSERT INTO servers (name, key_hash, created) VALUES ('s', 'h', 0)")
    (server_id,), = await rows(database, "SELECT id FROM servers")
    if database.dialect.name != "mysql":
        pytest.skip("SQLite binds doubles itself")

    def txn(cursor: Cursor):
        insert_rows(cursor, "INSERT INTO services (server_id, name, created)", (ID, TEXT, DOUBLE),
                    [(server_id, "a", 0.0), (server_id, "b", float("inf"))])
    with pytest.raises(ValueError, match="float"):
        await database.run(txn, attempts=1)
    assert await rows(database, "SELECT COUNT(*) FROM services") == [(0,)]


def test_a_string_where_no_text_belongs_is_refused_not_written_raw():
    """The JSON-to-SQL step drops quotes: a string in a number column must never reach SQL
    unquoted (it would be SQL text of its own)."""
    from overc.storage.bulk_rows import _values

    assert _values((ID, TEXT, DOUBLE), [(1, "it's \"x\"", 0.5), (2, None, None)]) == (
        "(1,_utf8mb4 X'6974277320227822',0.5),(2,null,null)")
    # Brackets and quotes inside text are inside its hex literal.
    assert _values((ID, TEXT), [(1, '["]')]) == "(1,_utf8mb4 X'5b225d')"
    for row in [(1, "a", "0); DROP TABLE states; --"), ("1", "a", 0.5), (1, "a", '"')]:
        with pytest.raises(TypeError, match="not TEXT"):
            _values((ID, TEXT, DOUBLE), [row])
