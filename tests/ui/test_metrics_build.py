"""Incremental ``/metrics`` builds (issue 13): after any sequence of changes, on SQLite and
MariaDB, the text of an incremental build is byte for byte the full renderer's text of a
one-transaction snapshot taken at the same moment (``render_metrics``, itself pinned to the
reference format in test_metrics.py).

The changes are what the writers do to the rows /metrics reads: reports (new services, new
``last_time``, perfdata), a second report with the same time (values without a new
``last_time``), a late report dated in the past (perfdata only), acks, silences of services
and servers (the real :class:`~overc.storage.actions.Actions`), the watchdog's stale flag,
deletions of services and servers (real), renames, and retention purging perfdata (the real
purge transaction); and ``now`` moving, across silences' ends.
"""
from __future__ import annotations

import random

import pytest
import pytest_twisted

from overc.storage import read_metrics
from overc.storage.actions import Actions
from overc.storage.read_metrics import _txn_metrics, read_metrics_changes
from overc.storage.retention_store import _txn_purge
from overc.web import metrics_build
from overc.web.metrics_build import IncrementalMetrics
from overc.web.metrics_text import render_metrics

NAMES = ["a", "b", 'q"uote', "back\\slash", "é", "z"]
LABELS = ["load", "mem", 'l"x', "t\\"]


def _txn_report(cursor, server: str, service: str, when: float, state: str,
                values: list[tuple[str, float]], duration: float | None, flap: int) -> None:
    """What ingest writes for one report: the service row (created on first report) and the
    perfdata at the report's time; a report older than ``last_time`` writes perfdata only."""
    row = cursor.execute("SELECT id FROM servers WHERE name = ?", (server,)).fetchone()
    if row is None:
        cursor.execute("INSERT INTO servers (name, key_hash, created) VALUES (?, 'x', ?)",
                       (server, when))
        row = cursor.execute("SELECT id FROM servers WHERE name = ?", (server,)).fetchone()
    found = cursor.execute("SELECT id, last_time FROM services WHERE server_id = ? AND name = ?",
                           (row[0], service)).fetchone()
    if found is None:
        cursor.execute("INSERT INTO services (server_id, name, created) VALUES (?, ?, ?)",
                       (row[0], service, when))
        found = cursor.execute("SELECT id, last_time FROM services WHERE server_id = ?"
                               " AND name = ?", (row[0], service)).fetchone()
    service_id, last = found
    if last is None or when >= last:
        cursor.execute("UPDATE services SET state = ?, last_time = ?, period = 60, stale = 0,"
                       " duration = ?, flap_bits = ? WHERE id = ?",
                       (state, when, duration, flap, service_id))
    cursor.executemany("INSERT INTO perfdata (service_id, time, label, value, uom)"
                       " VALUES (?, ?, ?, ?, ?)",
                       [(service_id, when, label, value, "s") for label, value in values])


def _ids(cursor, table: str) -> list[int]:
    return [r[0] for r in cursor.execute(f"SELECT id FROM {table} ORDER BY id").fetchall()]


async def _change(db, actions: Actions, rng: random.Random, now: float) -> str:
    """One random change; returns its name (for the failure message)."""
    services = await db.run(_ids, "services")
    servers = await db.run(_ids, "servers")
    kind = rng.choice(["report"] * 6 + ["same time", "late", "ack", "unack", "silence",
                                        "silence server", "unsilence", "stale", "delete",
                                        "delete server", "rename", "purge"])
    if kind in ("report", "same time", "late") or not services:
        last = await db.run(lambda c: c.execute("SELECT MAX(last_time) FROM services")
                            .fetchone()[0])
        when = {"report": now, "same time": last or now,
                "late": (last or now) - rng.uniform(1, 5000)}.get(kind, now)
        values = [(label, rng.choice([0.5, 1.0, -2.0, rng.random() * 1e6]))
                  for label in rng.sample(LABELS, rng.randint(0, 3))]
        await db.run(_txn_report, rng.choice(NAMES[:4]), rng.choice(NAMES), when,
                     rng.choice(["OK", "WARN", "FAIL", "UNK"]), values,
                     rng.choice([None, 1.5, 2.0]), rng.choice([0, 0b1011]))
        return kind
    service_id, server_id = rng.choice(services), rng.choice(servers)
    if kind == "ack":
        await actions.acknowledge(service_id, "seen")
    elif kind == "unack":
        await actions.unacknowledge(service_id, now)
    elif kind == "silence":
        await actions.silence("service", service_id, now + rng.choice([0.5, 3, 100]), "x", now)
    elif kind == "silence server":
        await actions.silence("server", server_id, now + rng.choice([0.5, 3, 100]), "x", now)
    elif kind == "unsilence":
        await actions.unsilence("service", service_id, now)
    elif kind == "stale":
        await db.run(lambda c: c.execute("UPDATE services SET stale = 1 WHERE id = ?",
                                         (service_id,)))
    elif kind == "delete":
        await actions.delete("service", service_id)
    elif kind == "delete server":
        await actions.delete("server", server_id)
    elif kind == "rename":
        await db.run(lambda c: c.execute("UPDATE servers SET name = ? WHERE id = ?",
                                         (f"renamed{rng.randint(0, 10**6)}", server_id)))
    elif kind == "purge":
        cutoff = await db.run(lambda c: c.execute("SELECT MAX(time) FROM perfdata")
                              .fetchone()[0])
        if cutoff is not None:
            await db.run(_txn_purge, cutoff - rng.uniform(0, 20), "perfdata", rng.randint(1, 9))
    return kind


@pytest.mark.parametrize("seed,chunk,block,changed", [
    (1, 2000, 256, False), (2, 3, 2, False), (3, 7, 5, False),
    (4, 2000, 256, True), (5, 3, 2, True), (6, 7, 5, True)])
@pytest_twisted.ensureDeferred
async def test_incremental_builds_equal_full_builds_after_random_changes(
        database, monkeypatch, seed, chunk, block, changed):
    """``chunk``: services per read transaction; ``block``: services per block of kept text;
    ``changed``: reads after the first take only the rows changed since the last read began
    (``services.changed_at``), with no look-back and no periodic full read, so that every
    writer of the rows must keep ``changed_at``."""
    monkeypatch.setattr(read_metrics, "CHUNK", chunk)
    monkeypatch.setattr(metrics_build, "BLOCK", block)
    monkeypatch.setattr(metrics_build, "LOOKBACK", 0.0)
    monkeypatch.setattr(metrics_build, "FULL_EVERY", 1e9)
    rng = random.Random(seed)
    actions = Actions(database)
    builder = IncrementalMetrics()
    now = 1_800_000_000.0
    history = []
    for step in range(120):
        for _ in range(rng.choice([0, 1, 1, 2, 5])):
            history.append(await _change(database, actions, rng, now))
        now += rng.choice([0.0, 0.5, 1.0, 2.5, 30.0])
        changes = await read_metrics_changes(database, builder.known, builder.perf_ids,
                                             builder.since,
                                             builder.rows_since if changed else None)
        assert changes.full is (not changed or step == 0)
        builder.apply(changes)
        full = render_metrics(await database.run(_txn_metrics), now, {"reports": {(): step}})
        assert builder.exposition(now, {"reports": {(): step}}).decode() == full, (step, history[-6:])
    assert {"report", "same time", "late", "purge", "delete", "rename"} <= set(history)


@pytest_twisted.ensureDeferred
async def test_a_scrape_with_nothing_changed_reads_no_perfdata(database):
    """The point of it: the second read of an unchanged database re-reads no service's values,
    and a report re-reads only that service's (its older history sits below the latest values,
    as in any database that has been running: retention's rule re-reads nothing)."""
    now = 1_800_000_000.0
    for when in (now - 1000, now - 100):  # history below the latest values (as retention sees)
        for i, name in enumerate(NAMES):
            await database.run(_txn_report, "srv", name, when - i, "OK", [("load", 1.0)],
                               None, 0)
    builder = IncrementalMetrics()
    first = await read_metrics_changes(database, builder.known, builder.perf_ids,
                                         builder.since)
    builder.apply(first)
    assert len(first.perfdata) == len(NAMES)
    unchanged = await read_metrics_changes(database, builder.known, builder.perf_ids,
                                         builder.since)
    builder.apply(unchanged)
    assert unchanged.perfdata == {} and len(unchanged.rows) == len(NAMES)
    assert unchanged.names == {}  # a name is read once
    await database.run(_txn_report, "srv", "b", now, "FAIL", [("load", 9.0)], None, 0)
    one = await read_metrics_changes(database, builder.known, builder.perf_ids,
                                         builder.since)
    builder.apply(one)
    b_id = next(service_id for service_id, name in first.names.items() if name == "b")
    assert list(one.perfdata) == [b_id]
    text = builder.exposition(now, {}).decode()
    assert text == render_metrics(await database.run(_txn_metrics), now, {})
    assert 'overc_perfdata{server="srv",service="b",label="load",uom="s"} 9' in text


def test_the_next_read_takes_rows_changed_since_shortly_before_the_last_and_all_each_minute():
    def read(clock: float, full: bool) -> read_metrics.MetricsChanges:
        return read_metrics.MetricsChanges({}, {}, {}, {}, {}, 0, clock, full)

    builder = IncrementalMetrics()
    assert builder.rows_since is None  # the first read takes every row
    builder.apply(read(1000.0, True))
    assert builder.rows_since == 1000.0 - metrics_build.LOOKBACK
    builder.apply(read(1030.0, False))
    assert builder.rows_since == 1030.0 - metrics_build.LOOKBACK
    builder.apply(read(1000.0 + metrics_build.FULL_EVERY, False))
    assert builder.rows_since is None  # a minute since every row was read
    builder.apply(read(1065.0, True))
    assert builder.rows_since == 1065.0 - metrics_build.LOOKBACK
