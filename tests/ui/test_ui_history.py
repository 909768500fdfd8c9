"""The service page's history on both databases: on MariaDB it travels as one GROUP_CONCAT
string with ``info``/``late`` read only for the listed rows; the runs, the timeline and every
timestamp must equal those built from plain rows, ties and cut-offs included."""
from __future__ import annotations

import inspect
import random

import pytest_twisted

from overc.storage import queries as q
from overc.storage.queries import Queries
from overc.storage.read_service import StateRow
from overc.ui import views


def _txn_fill(cursor, states: list[tuple[float, str, str | None, int]]) -> int:
    cursor.execute("INSERT INTO servers (name, key_hash, ip, created) VALUES ('a', 'k', NULL, 1)")
    server_id = cursor.execute("SELECT id FROM servers").fetchone()[0]
    cursor.execute("INSERT INTO services (server_id, name, state, info, period, created)"
                   " VALUES (?, 'svc', 'OK', 'x', 60, 1)", (server_id,))
    service_id = cursor.execute("SELECT id FROM services").fetchone()[0]
    cursor.executemany(
        "INSERT INTO states (service_id, time, state, info, late) VALUES (?, ?, ?, ?, ?)",
        [(service_id, *row) for row in states])
    return service_id


def _txn_plain(cursor, service_id: int, since: float, limit: int):
    """The history exactly as before: every column of the newest ``limit`` rows."""
    rows = cursor.execute(
        "SELECT id, time, state, info, late FROM states WHERE service_id = ? AND time >= ?"
        " ORDER BY time DESC, id DESC LIMIT ?", (service_id, since, limit)).fetchall()
    return [StateRow(r[0], r[1], r[2], r[3], bool(r[4])) for r in reversed(rows)]


def _runs(states) -> list[tuple]:
    return [(r.state, r.first, r.last, r.count, r.info,
             [(i.id, i.time, i.state, i.info, i.late) for i in r.items])
            for r in views.collapse_runs(states)]


def _history(seed: int = 5) -> list[tuple[float, str, str | None, int]]:
    """Runs of every length around 50, equal timestamps (ties broken by id), full-precision
    times, awkward and NULL outputs, late marks."""
    rng = random.Random(seed)
    rows, t = [], 1_700_000_000.0
    for run in range(60):
        state = ("OK", "WARN", "FAIL", "UNK")[run % 4] if run % 7 else "OK"
        for _ in range(rng.choice([1, 2, 49, 50, 51, 120])):
            if rng.random() > 0.2:  # else the same time again: a tie
                t += rng.choice([0.1, 1.0, 1 / 3, rng.random() * 60, 1e-6])
            info = rng.choice([None, "", f"{state} out, \"q\" \\ ' {t!r}", "é😀 <b>\n,x y"])
            rows.append((t, state, info, int(rng.random() < 0.1)))
    return rows


@pytest_twisted.ensureDeferred
async def test_history_runs_equal_the_plain_rows(database):
    history = _history()
    service_id = await database.run(_txn_fill, history)
    queries = Queries(database)
    times = sorted(t for t, *_ in history)
    for since, limit in ((0.0, 10_000), (times[len(times) // 3], 10_000), (0.0, 777),
                         (0.0, 1), (times[-1], 10), (times[-1] + 1, 10)):
        plain = await database.run(_txn_plain, service_id, since, limit)
        states, prior = await queries.recent_states(service_id, since, limit)
        assert [(s.id, s.time, s.state) for s in states] == \
            [(s.id, s.time, s.state) for s in plain]
        assert all(type(s.time) is float for s in states)
        assert _runs(states) == _runs(plain)
        if plain:
            start, end = plain[0].time, plain[-1].time + 10
            assert views.timeline(states, prior, start, end, 1000.0) == \
                views.timeline(plain, prior, start, end, 1000.0)
    assert {t for t, *_ in history} >= {s.time for s in states}  # exact doubles, no rounding
    if database.dialect.name != "sqlite":  # the GROUP_CONCAT path really ran
        states, _ = await queries.recent_states(service_id, 0.0, 10_000)
        assert any(s.info is None for s in states) and len(states) == len(history)


@pytest_twisted.ensureDeferred
async def test_history_state_with_separator_falls_back(database):
    history = [(1.5, "OK", "a", 0), (2.5, "O,K x", "b", 1), (2.5, "WARN", "c", 0)]
    service_id = await database.run(_txn_fill, history)
    states, prior = await Queries(database).recent_states(service_id, 0.0, 10)
    assert [(s.time, s.state, s.info, s.late) for s in states] == \
        [(t, st, i, bool(late)) for t, st, i, late in history]
    assert prior is None


def test_run_detail_is_what_the_history_lists():
    keep = inspect.signature(views.collapse_runs).parameters["keep_items"].default
    assert q.RUN_DETAIL == keep
