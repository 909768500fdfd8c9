"""UI benchmark: 1,000 servers x 10 services with a week of history.

Times real HTTP requests over loopback (database + rendering + transfer) for the overview, a
service page with 10,000 history points and perfdata, the read API's server list and /metrics,
through the real Klein resources on a listening port (treq client on the same reactor).

Usage: ``python bench/ui.py [--servers 1000] [--runs 5] [--database mysql://root@host/db]``
(default: a new SQLite file); ``--reuse`` times an already generated database again,
``--only overview,metrics`` times only the requests whose label has one of those words.
Targets (issue 5): overview < 300 ms, service page < 300 ms. Results: bench/RESULTS-ui.md.

``--scrape-under-load 10`` then starts a real ``twistd -n overc server`` on the same database,
loads its push API with wrk (c=50, bench/ingest.py's 3-service reports) for that many seconds
without and then with a ``/metrics`` scrape every ``--scrape-every`` seconds, twice each,
interleaved, and prints the push p99 of both and the scrape times under load (issue 13:
the scrapes may raise the push p99 by 20 % at most).
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

from twisted.internet import defer, task, threads  # noqa: E402

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
    services = cursor.execute("SELECT id, last_time FROM services ORDER BY id").fetchall()
    service_ids = [r[0] for r in services]
    hourly, perf = [], []
    # In time order, as ingest writes them (row placement matters to InnoDB's buffer pool).
    for h in range(7 * 24):
        for service_id, _ in services:
            hourly.append((service_id, now - 7 * 86400 + h * 3600,
                           "OK" if rng.random() < 0.95 else "WARN", "hourly"))
            perf.append((service_id, now - 7 * 86400 + h * 3600, "v", float(h % 10), "",
                         None, None, None, None))
        if len(hourly) > 50_000:
            _flush(cursor, hourly, perf)
    for service_id, last_time in sorted(services, key=lambda r: r[1]):
        # the latest report's perfdata, written with the report's time as ingest does
        perf.append((service_id, last_time, "v", rng.random() * 10, "", None, None, None, None))
        perf.append((service_id, last_time, "rt", rng.random(), "s", "0.5", "1", 0.0, None))
    _flush(cursor, hourly, perf)
    _flush(cursor, hourly, perf)
    target = service_ids[0]
    cursor.execute("DELETE FROM states WHERE service_id = ?", (target,))
    cursor.execute("DELETE FROM perfdata WHERE service_id = ?", (target,))
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
    cursor.execute("UPDATE services SET last_time = ? WHERE id = ?", (dense[-1][1], target))
    alerts = [(rng.choice(ids), None, now - rng.random() * 7 * 86400, "state", "WARN",
               "State changed", "WARN", "") for _ in range(20_000)]
    cursor.executemany("INSERT INTO alerts (server_id, service_id, time, kind, severity,"
                       " message, state, info) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", alerts)
    return target


def _flush(cursor, states: list, perf: list) -> None:
    cursor.executemany("INSERT INTO states (service_id, time, state, info) VALUES (?, ?, ?, ?)",
                       states)
    cursor.executemany("INSERT INTO perfdata (service_id, time, label, value, uom, warn, crit,"
                       " min, max) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", perf)
    states.clear()
    perf.clear()


def _txn_existing(cursor) -> int | None:
    """The timed service of an earlier run on the same database (``--reuse``)."""
    row = cursor.execute("SELECT MIN(service_id) FROM perfdata").fetchone()
    return row[0] if row else None


async def main(reactor, args) -> None:
    from overc.storage.db import Database
    from overc.core.dburl import parse_database_url
    from ui_fakes import Harness

    folder = Path(args.folder or tempfile.mkdtemp(prefix="overc-bench-ui-"))
    folder.mkdir(parents=True, exist_ok=True)
    url = args.database or f"sqlite:///{folder / 'bench.db'}"
    db = Database(parse_database_url(url, folder), reactor)
    await db.migrate()
    started = time.perf_counter()
    target = await db.run(_txn_existing) if args.reuse else None
    if target is None:
        target = await db.run(_txn_generate, args.servers, args.services, reactor.seconds(),
                              args.history)
    states, perf = await db.run(lambda c: c.execute(
        "SELECT (SELECT COUNT(*) FROM states), (SELECT COUNT(*) FROM perfdata)").fetchone())
    print(f"{'reused' if args.reuse else 'generated'} {args.servers} servers x"
          f" {args.services} services, {states} state rows, {perf} perfdata rows,"
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
    print("\n| request | median ms | min ms | max ms | bytes |\n|---|---|---|---|---|")
    for label, url_path in cases:
        if args.only and not any(word in label for word in args.only.split(",")):
            continue
        times, size = [], 0
        etag = None
        if url_path is None:
            response, _ = await h.request("GET", "/ui/")
            etag = response.headers.getRawHeaders(b"etag")[0].decode()
        for _ in range(args.runs):
            # /metrics keeps a build for a second (MetricsResource.CACHE_SECONDS): time builds
            h.clock.advance(2)
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
    if args.scrape_under_load:
        await threads.deferToThread(_scrape_under_load, url, folder, args)


def _scrape_under_load(url: str, folder: Path, args) -> None:
    """Push p99 at c=50 with and without /metrics scrapes, on a real server process."""
    import threading
    import urllib.request

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import ingest
    from realserver import RealServer

    server = RealServer(folder / "scrape-under-load", database=url)
    server.start()
    try:
        ingest.warm_up(server.url, 100)
        ingest.load(server.port, 50, 3, 100)
        rows: dict[bool, list[dict]] = {False: [], True: []}
        scrapes: list[float] = []
        for _ in range(args.pairs):
            for scraping in (False, True):
                stop = threading.Event()

                def scrape() -> None:
                    while not stop.wait(args.scrape_every):
                        t0 = time.perf_counter()
                        scrape_request = urllib.request.Request(
                            server.url + "metrics",
                            headers={"Accept-Encoding": "gzip"} if args.scrape_gzip else {})
                        with urllib.request.urlopen(scrape_request, timeout=30) as r:
                            r.read()
                        scrapes.append((time.perf_counter() - t0) * 1000)

                scraper = threading.Thread(target=scrape)
                if scraping:
                    scraper.start()
                try:
                    rows[scraping].append(ingest.load(server.port, 50, args.scrape_under_load,
                                                      100))
                finally:
                    stop.set()
                    if scraping:
                        scraper.join(60)
    finally:
        server.stop()
    print(f"\nPush load (wrk c=50, {args.scrape_under_load} s x {args.pairs} each, alternating)"
          f" with and without a"
          f" /metrics scrape every {args.scrape_every} s"
          f" ({'gzip, as Prometheus asks' if args.scrape_gzip else 'plain'})\n")
    print("| pushes | req/s | p50 ms | p99 ms (each run) |\n|---|---|---|---|")
    for scraping in (False, True):
        runs = rows[scraping]
        each = ", ".join(f"{r['p99_ms']:.1f}" for r in runs)
        print(f"| {'with scrapes' if scraping else 'no scrapes'} |"
              f" {statistics.mean(r['rps'] for r in runs):.0f} |"
              f" {statistics.mean(r['p50_ms'] for r in runs):.1f} |"
              f" {statistics.mean(r['p99_ms'] for r in runs):.1f}"
              f" ({each}) |")
    if scrapes:
        print(f"\n/metrics under load: {len(scrapes)} scrapes, median"
              f" {statistics.median(scrapes):.0f} ms, max {max(scrapes):.0f} ms")


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
    parser.add_argument("--only", help="comma-separated words: time only the matching requests")
    parser.add_argument("--reuse", action="store_true",
                        help="time an already generated database (same --folder/--database)")
    parser.add_argument("--scrape-under-load", type=int, default=0, metavar="SECONDS",
                        help="then push p99 with and without /metrics scrapes (real server)")
    parser.add_argument("--scrape-every", type=float, default=2.0)
    parser.add_argument("--scrape-plain", dest="scrape_gzip", action="store_false",
                        help="scrape without Accept-Encoding: gzip (Prometheus sends it)")
    parser.add_argument("--pairs", type=int, default=2,
                        help="load runs without and with scrapes, alternating (default 2 each)")
    arguments = parser.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, arguments)))
