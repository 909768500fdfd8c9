"""What dependencies (SPEC 10.4) cost the dispatcher, on the real code, MariaDB and SQLite.

    python bench/dependencies.py [--servers 200] [--per-server 100] [--alerts 1000]
                                 [--rounds 15] [--no-mysql] [--no-sqlite]

Fills ``servers`` x ``per-server`` services (service 0 of each server is the parent ``db``),
then per round inserts ``alerts`` pending state alerts (spread over the servers' children) and
times one :meth:`overc.storage.dispatch_store.DispatchStore.dispatch` (wall time of the
await: pool hand-off, transaction, commit). Cases, interleaved round by round in one run:

* ``baseline``: the dependency hooks replaced by no-ops (what dispatch cost before them);
* ``no parents``: the hooks on, no service has ``depends_on``;
* ``parent up``: every child depends on a healthy ``db`` (lookups, nothing held);
* ``parent down``: every ``db`` FAILs: every alert is held (writes to alerts and services),
  and the owed children are re-read each round.

Prints one markdown table: median and p90 per dispatch, and the ratio of medians to the
baseline.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from twisted.internet import defer, task  # noqa: E402

from overc.core.dburl import parse_database_url  # noqa: E402
from overc.core.routing import Route  # noqa: E402
from overc.storage import dispatch_store  # noqa: E402
from overc.storage.db import Cursor, Database  # noqa: E402

MYSQL = os.environ.get("OVERC_TEST_MYSQL", "mysql://root@127.0.0.1:3306/overc_bench")
ROUTES = (Route("ops", "WARN"),)


def _txn_fill(cursor: Cursor, servers: int, per_server: int) -> None:
    cursor.executemany("INSERT INTO servers (name, key_hash, ip, created, last_seen)"
                       " VALUES (?, 'h', '127.0.0.1', 0, 0)",
                       [(f"h{s}",) for s in range(servers)])
    ids = [r[0] for r in cursor.execute("SELECT id FROM servers ORDER BY id").fetchall()]
    cursor.executemany(
        "INSERT INTO services (server_id, name, created, state, period, last_time, deadline)"
        " VALUES (?, ?, 0, 'OK', 60, 0, 1e12)",
        [(sid, "db" if n == 0 else f"s{n}") for sid in ids for n in range(per_server)])


def _txn_parents(cursor: Cursor, depends: bool, state: str) -> None:
    cursor.execute("UPDATE services SET depends_on = ? WHERE name <> 'db'",
                   ("db" if depends else None,))
    cursor.execute("UPDATE services SET state = ? WHERE name = 'db'", (state,))


def _txn_reset(cursor: Cursor) -> None:
    """Nobody owed a catch-up: each case starts from the same state."""
    cursor.execute("UPDATE services SET held_by_parent = 0 WHERE held_by_parent = 1")


def _txn_children(cursor: Cursor) -> list[tuple[int, int]]:
    return cursor.execute("SELECT server_id, id FROM services WHERE name <> 'db' ORDER BY id"
                          ).fetchall()


def _txn_alerts(cursor: Cursor, rows: list[tuple[int, int]]) -> None:
    cursor.executemany(
        "INSERT INTO alerts (server_id, service_id, time, kind, severity, message, state, info)"
        " VALUES (?, ?, 1, 'state', 'FAIL', 'bench', 'FAIL', 'x')", rows)


CASES = (("baseline", True, "OK", True), ("no parents", False, "OK", False),
         ("parent up", True, "OK", False), ("parent down", True, "FAIL", False))


async def _round(db: Database, store, children: list, alerts: int, r: int, case: tuple
                 ) -> float:
    _, depends, state, off = case
    await db.run(_txn_parents, depends, state)
    start = (r * alerts) % len(children)
    await db.run(_txn_alerts, [children[(start + i * 7) % len(children)]
                               for i in range(alerts)])
    hooks = (dispatch_store.catch_up_children, dispatch_store.hold_dependents)
    if off:
        dispatch_store.catch_up_children = lambda cursor, now, limit: 0
        dispatch_store.hold_dependents = lambda cursor, alerts: set()
    try:
        t0 = time.perf_counter()
        result = await store.dispatch(1000.0 + r, ROUTES, limit=alerts)
        elapsed = time.perf_counter() - t0
    finally:
        dispatch_store.catch_up_children, dispatch_store.hold_dependents = hooks
    assert result.alerts + result.held == alerts, result
    return elapsed


async def run(reactor, kind: str, args) -> list[tuple]:
    folder = Path(tempfile.mkdtemp())
    if kind == "sqlite":
        url = f"sqlite:///{folder / 'bench.db'}"
        drop = None
    else:
        parts = urlsplit(MYSQL)
        name = f"overc_bench_{uuid.uuid4().hex[:8]}"
        url = urlunsplit(parts._replace(path="/" + name))
        drop = (parts, name)
    db = Database(parse_database_url(url, folder), reactor)
    try:
        await db.migrate()
        await db.run(_txn_fill, args.servers, args.per_server)
        children = await db.run(_txn_children)
        store = dispatch_store.DispatchStore(db)
        times: dict[str, list[float]] = {case[0]: [] for case in CASES}
        # Cases interleaved round by round, so a growing alerts table or a busy neighbour
        # weighs on each of them alike; the first two rounds warm up.
        for r in range(args.rounds + 2):
            for case in CASES:
                await db.run(_txn_reset)
                elapsed = await _round(db, store, children, args.alerts, r, case)
                if r >= 2:
                    times[case[0]].append(elapsed)
        out = [(kind, name, statistics.median(t), statistics.quantiles(t, n=10)[-1])
               for name, t in times.items()]
        return out
    finally:
        db.close()
        if drop is not None:
            import pymysql

            parts, name = drop
            c = pymysql.connect(host=parts.hostname, port=parts.port or 3306,
                                user=parts.username or "root", password=parts.password or "",
                                autocommit=True)
            with c.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            c.close()


async def main(reactor, args) -> None:
    rows = []
    for kind in ("sqlite", "mysql"):
        if getattr(args, f"no_{kind}"):
            continue
        rows += await run(reactor, kind, args)
    print(f"\n{args.servers} servers x {args.per_server} services, {args.alerts} pending state"
          f" alerts per dispatch, {args.rounds} rounds\n")
    print("| database | case | median | p90 | median vs baseline |")
    print("| --- | --- | --- | --- | --- |")
    base = {kind: median for kind, case, median, _ in rows if case == "baseline"}
    for kind, case, median, p90 in rows:
        print(f"| {kind} | {case} | {median * 1000:.1f} ms | {p90 * 1000:.1f} ms |"
              f" {median / base[kind]:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", type=int, default=200)
    parser.add_argument("--per-server", type=int, default=100)
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-mysql", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    arguments = parser.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, arguments)))
