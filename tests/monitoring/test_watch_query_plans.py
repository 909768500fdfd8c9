"""The watchdog's and the dispatcher's every-second statements read indexes, never the whole
``services`` table: SQLite's planner, with no statistics, picks an index by its own rules, and
a plain ``stale = 0`` next to an indexed range once made it walk every live service (2-4 s a
heartbeat tick at 1,000,000 services). Checked with ``EXPLAIN QUERY PLAN`` of each statement
the ticks run; the plan does not depend on how many rows there are."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest_twisted
from twisted.internet import reactor

from overc.core.dburl import parse_database_url
from overc.core.durations import Grace
from overc.core.routing import Route
from overc.storage import db as dbmod
from overc.storage.dispatch_store import DispatchStore
from overc.storage.watchdog_store import WatchdogStore


@pytest_twisted.ensureDeferred
async def test_every_second_statements_use_indexes(tmp_path: Path, monkeypatch):
    path = tmp_path / "plans.db"
    db = dbmod.Database(parse_database_url(f"sqlite:///{path}", tmp_path), reactor)
    await db.migrate()
    seen: list[tuple[str, tuple]] = []
    execute = dbmod.Cursor.execute

    def recording(self, sql, params=()):
        seen.append((sql, tuple(params)))
        return execute(self, sql, params)

    monkeypatch.setattr(dbmod.Cursor, "execute", recording)
    watchdog, dispatch = WatchdogStore(db), DispatchStore(db)
    now = 1_000_000.0
    for i in range(4):  # the first is a gap (a new database): then ticks with heartbeats
        await watchdog.watchdog_tick(now + 3 * i, interval=1.0, grace=Grace())
        await dispatch.dispatch(now + 3 * i, (Route("ops"),))
    monkeypatch.undo()
    db.close()
    gap_only = "SET deadline ="  # restart awareness: runs only after a gap, by design
    plans = {}
    with sqlite3.connect(path) as connection:
        for sql, params in seen:
            if "services" not in sql or gap_only in sql:
                continue
            plan = connection.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
            plans[sql] = [row[-1] for row in plan]
    assert plans, "no statement on services was run"
    scans = {sql: plan for sql, plan in plans.items()
             if any(step.startswith("SCAN services") or step.startswith("SCAN s ")
                    or step == "SCAN s" or "services_watch" in step and "recheck" in sql
                    for step in plan)}
    assert scans == {}
