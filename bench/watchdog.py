"""Watchdog and notification costs on the real code, against MariaDB and SQLite.

    python bench/watchdog.py [--sizes 100000,1000000] [--no-mysql] [--no-sqlite]
                             [--skip-notify] [--rate 1000] [--seconds 10] [--mix]

``--mix`` (SPEC 9): a third of the services carry a cron schedule (their deadlines are the
next scheduled time plus grace, as ingest computes them), a tenth have a run open whose
``run_deadline`` lies in the next hour, and half of the measured expiries are run timeouts
(the ``run_deadline`` path) instead of missed deadlines.

``--server-deadlines`` (SPEC 10.3): every server has what the ingest leaves on its row (its
shortest period, a sign of life, a deadline in the ``servers_watch`` index, here past the hour
the services' deadlines span, so no server expires), so each tick also probes the servers'
index and each expiring service is judged against its server (it has been silent since the
service was due: the bounded wait for its verdict, then notified alone).

For each database and size: fill ``services`` with N services whose deadlines are spread over
the next hour (the rows the real ingest would leave), then measure with the real
:class:`overc.storage.watchdog_store.WatchdogStore` / :class:`overc.monitoring.watchdog.Watchdog`:

* a tick with nothing expiring (p50/p99 over 200 ticks, wall time of ``await watchdog_tick``,
  i.e. pool hand-off + transaction + commit);
* the cost per expiring service (ticks that expire 1,000 and 5,000 services at once);
* detection latency at ``--rate`` expiries per second for ``--seconds`` seconds: deadline to
  the moment the committed tick reports the service (``on_expired``), watchdog every 1 s.

Then the notification path once per database: 1,000 alerts (one per server, so nothing is
grouped away) through a real command channel (``cat > /dev/null``) and a real webhook receiver
in a separate process; alerts/s and the peak number of concurrent deliveries (= channel
processes for the command channel; bounded by the dispatcher's ``max_in_flight``).
Prints one markdown table per part.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from twisted.internet import defer, task  # noqa: E402

from overc.config import load_config  # noqa: E402
from overc.core.counters import Counters  # noqa: E402
from overc.core.dburl import parse_database_url  # noqa: E402
from overc.core.durations import Grace  # noqa: E402
from overc.monitoring.watchdog import Watchdog  # noqa: E402
from overc.notify.channel_config import parse_channels  # noqa: E402
from overc.notify.dispatcher import Dispatcher  # noqa: E402
from overc.notify.factory import build_channel  # noqa: E402
from overc.storage.db import Cursor, Database  # noqa: E402
from overc.storage.delivery_store import DeliveryStore  # noqa: E402
from overc.storage.dispatch_store import DispatchStore  # noqa: E402
from overc.storage.watchdog_store import WatchdogStore  # noqa: E402

MYSQL = os.environ.get("OVERC_TEST_MYSQL", "mysql://root@127.0.0.1:3306/overc_test")
GRACE = Grace()
SERVERS = 1000


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# ------------------------------------------------------------------ fixtures (bench only)


def _txn_fill(cursor: Cursor, start: int, count: int, now: float, seed: int,
              mix: bool = False) -> None:
    rng = random.Random(seed)
    if start == 0:
        cursor.executemany(
            "INSERT INTO servers (name, key_hash, created) VALUES (?, ?, ?)",
            [(f"bench{i}", "x", now) for i in range(SERVERS)],
        )
    rows = []
    for i in range(start, start + count):
        deadline = now + rng.uniform(900.0, 4500.0)  # an hour wide, from 15 min on
        row = [1 + i % SERVERS, f"svc{i}", "OK", "fine", 60, deadline - 66, deadline, now,
               None, None, None, None, None]
        if mix:
            _mix(row, i, now, rng)
        rows.append(tuple(row))
    cursor.executemany(
        "INSERT INTO services (server_id, name, state, info, period, last_time, deadline,"
        " stale, created, schedule, tz, run_started, run_timeout, run_deadline)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)",
        rows,
    )


SCHEDULES = ("*/5 * * * *", "0 3 * * *", "30 2 * * *", "0 9 * * mon#1", "0 3 L * *")
ZONES = ("UTC", "Europe/Berlin", "America/New_York")


def _mix(row: list, i: int, now: float, rng: random.Random) -> None:
    """--mix: a third scheduled (deadline from the schedule, as ingest computes it, at least
    15 min ahead), a tenth with a run open whose deadline lies in the next hour."""
    from overc.core.schedule import scheduled_deadline

    if i % 3 == 0:
        schedule, tz = SCHEDULES[i % len(SCHEDULES)], ZONES[(i // 3) % 3]
        row[5] = now - rng.uniform(0, 300)
        row[6] = max(now + rng.uniform(900.0, 1800.0),
                     scheduled_deadline(schedule, tz, row[5], GRACE))
        row[8], row[9] = schedule, tz
    if i % 10 == 1:
        run_deadline = now + rng.uniform(900.0, 4500.0)
        row[10], row[11], row[12] = run_deadline - 3660, 3600, run_deadline


def _txn_server_deadlines(cursor: Cursor, now: float) -> None:
    """--server-deadlines: the servers' rows as the ingest leaves them (period 60 s, last sign
    of life now), their deadlines beyond every service's so that none goes offline."""
    cursor.execute("UPDATE servers SET period = 60, last_seen = ?, deadline = ?",
                   (now, now + 5000.0))


def _txn_expire_runs(cursor: Cursor, deadlines: list[tuple[float, int]]) -> None:
    cursor.executemany("UPDATE services SET run_started = ? - 3660, run_timeout = 3600,"
                       " run_deadline = ? WHERE id = ?",
                       [(d, d, sid) for d, sid in deadlines])


def _txn_expire(cursor: Cursor, deadlines: list[tuple[float, int]]) -> None:
    cursor.executemany("UPDATE services SET deadline = ? WHERE id = ?", deadlines)


def _txn_pick(cursor: Cursor, count: int, offset: int) -> list[int]:
    return [r[0] for r in cursor.execute(
        "SELECT id FROM services WHERE stale = 0 ORDER BY id LIMIT ? OFFSET ?", (count, offset)
    ).fetchall()]


def _txn_alerts_for_servers(cursor: Cursor, count: int, now: float) -> None:
    cursor.executemany(
        "INSERT INTO alerts (server_id, service_id, time, kind, severity, message, state, info,"
        " dispatched) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(1 + i % SERVERS, None, now, "api", "FAIL", "bench alert", None, None, 0)
         for i in range(count)],
    )


def _txn_count(cursor: Cursor, sql: str) -> int:
    return cursor.execute(sql).fetchone()[0]


# ------------------------------------------------------------------ databases


class Target:
    def __init__(self, kind: str, size: int, folder: Path) -> None:
        self.kind = kind
        if kind == "sqlite":
            path = folder / f"bench-{size}-{uuid.uuid4().hex[:8]}.db"
            self.url = f"sqlite:///{path}"

            def drop_file() -> None:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)

            self.drop = drop_file
        else:
            parts = urlsplit(MYSQL)
            name = f"overc_bench_{uuid.uuid4().hex[:8]}"
            self.url = urlunsplit(parts._replace(path="/" + name))

            def drop() -> None:
                import pymysql

                c = pymysql.connect(host=parts.hostname, port=parts.port or 3306,
                                    user=parts.username or "root",
                                    password=parts.password or "", autocommit=True)
                with c.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
                c.close()

            self.drop = drop


async def open_db(reactor, target: Target, folder: Path) -> Database:
    db = Database(parse_database_url(target.url, folder), reactor)
    await db.migrate()
    return db


async def sleep(reactor, seconds: float) -> None:
    await task.deferLater(reactor, seconds, lambda: None)


# ------------------------------------------------------------------ watchdog parts


async def bench_watchdog(reactor, kind: str, size: int, folder: Path, rate: int,
                         seconds: int, mix: bool = False, servers: bool = False) -> dict:
    target = Target(kind, size, folder)
    db = await open_db(reactor, target, folder)
    store = WatchdogStore(db)
    try:
        started = time.perf_counter()
        chunk = 20000
        for start in range(0, size, chunk):
            await db.run(_txn_fill, start, min(chunk, size - start), reactor.seconds(), start,
                         mix)
        if servers:
            await db.run(_txn_server_deadlines, reactor.seconds())
        fill = time.perf_counter() - started
        await store.watchdog_tick(reactor.seconds(), interval=1.0, grace=GRACE)  # away path once

        idle = []
        for _ in range(200):
            t0 = time.perf_counter()
            result = await store.watchdog_tick(reactor.seconds(), interval=1.0, grace=GRACE)
            idle.append((time.perf_counter() - t0) * 1000)
            assert not result.expired and not result.timeouts
        beat = []
        for k in range(1, 51):  # idle ticks that must write the heartbeat (commit to disk)
            t0 = time.perf_counter()
            result = await store.watchdog_tick(reactor.seconds() + 2.0 * k, interval=1.0,
                                               grace=GRACE)
            beat.append((time.perf_counter() - t0) * 1000)
            assert not result.expired
        await store.watchdog_tick(reactor.seconds() + 2.0 * 52, interval=1.0, grace=GRACE)
        per_service = {}
        for k in (1000, 5000):
            ids = await db.run(_txn_pick, k, 0)  # stale ones drop out of the pick
            stamp = reactor.seconds() - 1
            await db.run(_txn_expire, [(stamp, i) for i in ids])
            t0 = time.perf_counter()
            result = await store.watchdog_tick(reactor.seconds(), interval=1.0, grace=GRACE)
            took = (time.perf_counter() - t0) * 1000
            assert len(result.expired) == k, (len(result.expired), k)
            per_service[k] = (took, (took - statistics.median(idle)) / k)

        # Detection latency at `rate` expiries per second, the real Watchdog every 1 s.
        total = rate * seconds
        ids = await db.run(_txn_pick, total, 0)
        begin = reactor.seconds() + 2.0
        deadline_of = {sid: begin + n / rate for n, sid in enumerate(ids)}
        # --mix: every other expiry is a run timeout (run_deadline) instead of a deadline
        as_run = {sid for n, sid in enumerate(ids) if mix and n % 2}
        await db.run(_txn_expire, [(d, sid) for sid, d in deadline_of.items()
                                   if sid not in as_run])
        await db.run(_txn_expire_runs, [(d, sid) for sid, d in deadline_of.items()
                                        if sid in as_run])
        seen: dict[int, float] = {}

        def on_expired(result) -> None:
            at = reactor.seconds()
            for service_id in result.expired:
                if service_id not in as_run:
                    seen[service_id] = at
            for service_id in result.timeouts:
                seen[service_id] = at

        watchdog = Watchdog(store, reactor, counters=Counters(), interval=1.0, grace=GRACE,
                            on_expired=on_expired)
        watchdog.startService()
        await sleep(reactor, 2.0 + seconds + 2.5)
        await defer.maybeDeferred(watchdog.stopService)
        print(f"    watchdog: {watchdog.expired_total} expired, seen {len(seen)}, "
              f"last ok {watchdog.last_ok}, failures {watchdog.failures}", file=sys.stderr)
        if watchdog.last_error:
            print(f"    watchdog error: {watchdog.last_error}", file=sys.stderr)
        latencies = [seen[sid] - d for sid, d in deadline_of.items() if sid in seen]
        missing = total - len(latencies)
        return {
            "db": kind + (" (mix)" if mix else "") + (" (server deadlines)" if servers else ""),
            "size": size, "fill_s": fill,
            "idle_p50": statistics.median(idle), "idle_p99": pct(idle, 99),
            "beat_p50": statistics.median(beat), "beat_p99": pct(beat, 99),
            "tick1000_ms": per_service[1000][0], "per1000_ms": per_service[1000][1],
            "tick5000_ms": per_service[5000][0], "per5000_ms": per_service[5000][1],
            "lat_p50": statistics.median(latencies), "lat_p99": pct(latencies, 99),
            "lat_max": max(latencies), "missing": missing,
        }
    finally:
        db.close()
        target.drop()


# ------------------------------------------------------------------ notification path

RECEIVER = r"""
import sys
from twisted.internet import reactor
from twisted.web import resource, server
class R(resource.Resource):
    isLeaf = True
    n = 0
    def render_POST(self, request):
        R.n += 1
        request.content.read()
        return b"ok"
port = reactor.listenTCP(0, server.Site(R()), interface="127.0.0.1")
print(port.getHost().port, flush=True)
reactor.run()
"""


async def bench_notify(reactor, kind: str, folder: Path, count: int) -> list[dict]:
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE,
                                text=True)
    port = int(receiver.stdout.readline())
    out = []
    try:
        for channel_kind, section in (
            ("command", "command = cat\n"),
            ("webhook", f"url = http://127.0.0.1:{port}/hook\n"),
        ):
            target = Target(kind, 0, folder / channel_kind)
            (folder / channel_kind).mkdir(exist_ok=True)
            db = await open_db(reactor, target, folder / channel_kind)
            try:
                config = load_config(f"[alert:bench]\n{section}", source="bench.ini",
                                     base_dir=folder)
                channels = [build_channel(s, reactor=reactor, public_url="")
                            for s in parse_channels(config)]
                await db.run(_txn_fill, 0, 0, reactor.seconds(), 0)
                await db.run(_txn_alerts_for_servers, count, reactor.seconds())
                dispatcher = Dispatcher(DispatchStore(db), DeliveryStore(db), reactor, channels,
                                        counters=Counters(), interval=0.2)
                t0 = time.perf_counter()
                dispatcher.startService()
                while dispatcher.counts["sent"] + dispatcher.counts["retry"] < count:
                    await sleep(reactor, 0.05)
                took = time.perf_counter() - t0
                await defer.maybeDeferred(dispatcher.stopService)
                sent = await db.run(_txn_count,
                                    "SELECT COUNT(*) FROM notifications WHERE status = 'sent'")
                out.append({"db": kind, "channel": channel_kind, "alerts": count,
                            "seconds": took, "rate": count / took, "sent": sent,
                            "peak": dispatcher.peak_in_flight,
                            "bound": dispatcher.max_in_flight})
            finally:
                db.close()
                target.drop()
    finally:
        receiver.terminate()
        receiver.wait()
    return out


async def main(reactor, args) -> None:
    folder = Path(tempfile.mkdtemp(prefix="overc-bench-"))
    from twisted.logger import globalLogBeginner, textFileLogObserver

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)])
    kinds = [k for k in ("mysql", "sqlite") if not getattr(args, f"no_{k}")]
    rows = []
    for kind in kinds:
        for size in [int(s) for s in args.sizes.split(",")]:
            print(f"... {kind} {size:,} services", file=sys.stderr, flush=True)
            variants = [(False, False)] + [(True, False)] * args.mix
            variants += [(False, True)] * args.server_deadlines
            for _ in range(args.rounds):  # interleaved: compare within a run
                for mix, servers in variants:
                    rows.append(await bench_watchdog(reactor, kind, size, folder, args.rate,
                                                     args.seconds, mix, servers))
                    print(f"    {rows[-1]}", file=sys.stderr, flush=True)
    print("\n| db | services | fill | idle tick p50 / p99 | idle tick writing the heartbeat p50 / p99 "
          "| tick expiring 1,000 (per service) "
          f"| tick expiring 5,000 (per service) | latency at {args.rate}/s p50 / p99 / max "
          "| missed |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['db']} | {r['size']:,} | {r['fill_s']:.0f} s | {r['idle_p50']:.2f} / "
              f"{r['idle_p99']:.2f} ms | {r['beat_p50']:.2f} / {r['beat_p99']:.2f} ms | "
              f"{r['tick1000_ms']:.0f} ms ({r['per1000_ms'] * 1000:.0f}"
              f" µs) | {r['tick5000_ms']:.0f} ms ({r['per5000_ms'] * 1000:.0f} µs) | "
              f"{r['lat_p50']:.2f} / {r['lat_p99']:.2f} / {r['lat_max']:.2f} s | "
              f"{r['missing']} |")
    if not args.skip_notify:
        notes = []
        for kind in kinds:
            print(f"... notifications on {kind}", file=sys.stderr, flush=True)
            notes += await bench_notify(reactor, kind, folder, 1000)
        print("\n| db | channel | alerts | time | alerts/s | sent | peak concurrent (bound) |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for n in notes:
            print(f"| {n['db']} | {n['channel']} | {n['alerts']} | {n['seconds']:.1f} s | "
                  f"{n['rate']:.0f} | {n['sent']} | {n['peak']} ({n['bound']}) |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--no-mysql", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--skip-notify", action="store_true")
    parser.add_argument("--mix", action="store_true",
                        help="also run each size with scheduled services and run timeouts")
    parser.add_argument("--server-deadlines", action="store_true",
                        help="also run each size with server deadlines (SPEC 10.3)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the variants of each size this many times, interleaved")
    arguments = parser.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, arguments)))
