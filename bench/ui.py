"""UI benchmark: 1,000 servers x 10 services with a week of history (SQLite file).

Measures the time of a real HTTP request over loopback (database + rendering + transfer) for the overview, a service page with
10,000 history points and perfdata, and the read API's server list, through the real Klein
resources on a listening port (treq client on the same reactor). Usage: ``python bench/ui.py [--servers 1000] [--runs 5]``.
Targets (issue 5): overview < 300 ms, service page < 300 ms.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "ui"))

from twisted.internet import defer, task  # noqa: E402

STATES = ["OK"] * 90 + ["WARN"] * 6 + ["FAIL"] * 3 + ["UNK"]


def _txn_generate(cursor, servers: int, services: int, now: float, history: int) -> int:
    """Servers and services with current states; a light week of history on every service
    (one report an hour) and ``history`` reports + perfdata on one service (the page we time)."""
    rng = random.Random(7)
    cursor.executemany(
        "INSERT INTO servers (name, key_hash, ip, created, last_seen) VALUES (?, 'x', ?, ?, ?)",
        [(f"srv{i:04d}", f"10.0.{i // 250}.{i % 250}", now - 7 * 86400, now - 5)
         for i in range(servers)])
    ids = [r[0] for r in cursor.execute("SELECT id FROM servers ORDER BY id").fetchall()]
    rows = []
    for sid in ids:
        for j in range(services):
            state = rng.choice(STATES)
            rows.append((sid, f"svc{j:02d}", state, f"{state} - check {j} output text | v={j}",
                         60, now - rng.random() * 60, now + 60, int(rng.random() < 0.01),
                         now - 7 * 86400))
    cursor.executemany(
        "INSERT INTO services (server_id, name, state, info, period, last_time, deadline,"
        " stale, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    service_ids = [r[0] for r in cursor.execute("SELECT id FROM services ORDER BY id").fetchall()]
    hourly = []
    for service_id in service_ids:
        for h in range(7 * 24):
            hourly.append((service_id, now - 7 * 86400 + h * 3600,
                           "OK" if rng.random() < 0.95 else "WARN", "hourly"))
        if len(hourly) > 50_000:
            cursor.executemany("INSERT INTO states (service_id, time, state, info)"
                               " VALUES (?, ?, ?, ?)", hourly)
            hourly = []
    cursor.executemany("INSERT INTO states (service_id, time, state, info) VALUES (?, ?, ?, ?)",
                       hourly)
    target = service_ids[0]
    cursor.execute("DELETE FROM states WHERE service_id = ?", (target,))
    step = 86400.0 / history  # 10,000 reports inside the last 24 h: all on the page
    dense, perf = [], []
    for k in range(history):
        t = now - 86400 + k * step
        state = "OK" if (k // 500) % 4 else "WARN"
        dense.append((target, t, state, f"{state} - value {k % 100}"))
        perf.append((target, t, "load", 1 + (k % 300) / 100.0, "", "4", "8", 0.0, None))
        perf.append((target, t, "used", 40 + (k % 1000) / 20.0, "%", "85", "95", 0.0, 100.0))
    cursor.executemany("INSERT INTO states (service_id, time, state, info) VALUES (?, ?, ?, ?)",
                       dense)
    cursor.executemany("INSERT INTO perfdata (service_id, time, label, value, uom, warn, crit,"
                       " min, max) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", perf)
    alerts = [(rng.choice(ids), None, now - rng.random() * 7 * 86400, "state", "WARN",
               "State changed", "WARN", "") for _ in range(20_000)]
    cursor.executemany("INSERT INTO alerts (server_id, service_id, time, kind, severity,"
                       " message, state, info) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", alerts)
    return target


async def main(reactor, args) -> None:
    from overc.storage.db import Database
    from overc.storage.url import parse_database_url
    from ui_fakes import Harness

    folder = Path(args.folder or tempfile.mkdtemp(prefix="overc-bench-ui-"))
    url = args.database or f"sqlite:///{folder / 'bench.db'}"
    db = Database(parse_database_url(url, folder), reactor)
    await db.migrate()
    started = time.perf_counter()
    target = await db.run(_txn_generate, args.servers, args.services, reactor.seconds(),
                          args.history)
    states = await db.run(lambda c: c.execute("SELECT COUNT(*) FROM states").fetchone()[0])
    print(f"generated {args.servers} servers x {args.services} services, {states} state rows,"
          f" in {time.perf_counter() - started:.1f} s ({url})")
    h = Harness(db, users={}, required=False)
    h.clock.advance(reactor.seconds() - h.clock.seconds())
    from twisted.web.server import Site

    port = reactor.listenTCP(0, Site(h.root), interface="127.0.0.1")
    base = f"http://127.0.0.1:{port.getHost().port}"
    cases = [
        ("overview (/ui/)", "/ui/"),
        (f"service page ({args.history} history points, 2 charts)", f"/ui/service/{target}"),
        ("read API /api/servers?limit=100", "/api/servers?limit=100"),
        ("read API /api/servers?limit=1000", "/api/servers?limit=1000"),
        ("alerts page (/ui/alerts)", "/ui/alerts"),
        ("live poll, unchanged (304)", None),
        ("/metrics", "/metrics"),
    ]
    print(f"\n| request | median ms | min ms | max ms | bytes |\n|---|---|---|---|---|")
    for label, url_path in cases:
        times, size = [], 0
        etag = None
        if url_path is None:
            response, _ = await h.request("GET", "/ui/")
            etag = response.headers.getRawHeaders(b"etag")[0].decode()
        for _ in range(args.runs):
            t0 = time.perf_counter()
            if etag:
                response, body = await _get(base + "/ui/", {"If-None-Match": etag})
                assert response.code == 304
            else:
                response, body = await _get(base + url_path)
                assert response.code == 200, (url_path, response.code)
            times.append((time.perf_counter() - t0) * 1000)
            size = len(body)
        print(f"| {label} | {statistics.median(times):.0f} | {min(times):.0f} |"
              f" {max(times):.0f} | {size:,} |")
    db.close()


async def _get(url, headers=None):
    """A real HTTP request over loopback (treq): server time plus a local transfer."""
    import treq

    response = await treq.get(url, headers=headers or {})
    return response, await response.content()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--history", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database", help="a database URL (default: a new SQLite file)")
    parser.add_argument("--folder")
    arguments = parser.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, arguments)))
