"""CPU per report of the ingest's batch transaction alone, this tree against another checkout.

    python bench/ingest_batch.py --before <checkout> [--rounds 3] [--batches 300] [--no-mysql]

``bench/ingest.py`` measures the whole server through HTTP; on a shared machine its req/s
swing by more than any change to the ingest. This one calls :meth:`Store.ingest` directly (the
rows a push batch writes: 20 requests of 3 service reports each, over 1,000 servers, states
changing now and then so that soft states, flapping bits and alerts are written too) in a
fresh process per measurement, and reports the process's CPU time per report (the SQL
client's and SQLite's work included) and, on MariaDB, mariadbd's CPU time per report over the
same stretch (from /proc), before and after interleaved.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVERS = 1000
STATES = ("OK", "OK", "OK", "WARN", "OK", "FAIL", "OK", "OK")

CHILD = r"""
import asyncio, json, os, sys, time
from pathlib import Path
from twisted.internet import defer, task
from overc.core.counters import Counters
from overc.core.dburl import parse_database_url
from overc.core.durations import Grace
from overc.core.payload import Report
from overc.storage.db import Database
from overc.storage.ingest_store import IngestItem, Store

url, folder, batches, servers = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
STATES = %(states)r


async def main(reactor):
    db = Database(parse_database_url(url, folder), reactor)
    await db.migrate()
    store = Store(db, Grace(), Counters())
    ids = []
    for n in range(servers):
        record, _ = await store.register_server(f"bench{n}", "x", "127.0.0.1", 1000.0)
        ids.append(record.id)

    def batch(k, now):
        items = []
        for j in range(20):
            n = (k * 20 + j) %% servers
            state = STATES[(k + j) %% len(STATES)]
            items.append(IngestItem(ids[n], "127.0.0.1", now, [
                Report("app", "OK", "up 32h", 60, now),
                Report("disk", state, "DISK - /var 91%% | /var=91%%;90;95;0;100", 60, now),
                Report("queue", "OK", "12 items", 60, now)], server_name=f"bench{n}"))
        return items

    for k in range(servers // 20):  # every service exists before the measurement
        await store.ingest(batch(k, 2000.0))
    server = database_cpu()
    cpu, wall = time.process_time(), time.perf_counter()
    for k in range(batches):
        assert await store.ingest(batch(k, 3000.0 + k)) == [None] * 20
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    server = database_cpu() - server
    db.close()
    reports = batches * 60
    print(json.dumps({"cpu_us": cpu * 1e6 / reports, "wall_us": wall * 1e6 / reports,
                      "db_us": server * 1e6 / reports}))


def database_cpu():
    # mariadbd's user + system seconds (its pids from the parent; none on SQLite)
    total = 0
    for pid in sys.argv[5].split(",") if sys.argv[5] else []:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")

task.react(lambda reactor: defer.ensureDeferred(main(reactor)))
""" % {"states": STATES}


def measure(root: Path, url: str, folder: Path, batches: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root)}
    pids = ",".join(str(pid) for pid in mariadb_pids()) if url.startswith("mysql") else ""
    out = subprocess.run([sys.executable, "-c", CHILD, url, str(folder), str(batches),
                          str(SERVERS), pids], env=env, cwd=folder, capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def mariadb_pids() -> list[int]:
    """The local mariadbd (or mysqld) processes, whose CPU the MariaDB rows count."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as comm:
                    if comm.read().strip() in ("mariadbd", "mysqld"):
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def drop(url: str) -> None:
    import pymysql
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = pymysql.connect(host=parts.hostname, port=parts.port or 3306,
                                 user=parts.username or "root", password=parts.password or "",
                                 autocommit=True)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{parts.path.lstrip('/')}`")
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--no-mysql", action="store_true")
    args = parser.parse_args()
    trees = [("before", args.before.resolve()), ("after", HERE.parent)]
    base = os.environ.get("OVERC_TEST_MYSQL", "mysql://root@127.0.0.1:3306/overc_test")
    databases = ["SQLite"] + ([] if args.no_mysql else ["MariaDB"])
    results: dict[tuple[str, str], list[dict]] = {}
    for round_ in range(args.rounds):
        for database in databases:
            for label, root in trees if round_ % 2 == 0 else trees[::-1]:
                folder = Path(tempfile.mkdtemp(prefix="overc-batch-"))
                url = (f"sqlite:///{folder / 'bench.db'}" if database == "SQLite"
                       else f"{base}_batch_{uuid.uuid4().hex[:8]}")
                try:
                    got = measure(root, url, folder, args.batches)
                finally:
                    if database == "MariaDB":
                        drop(url)
                results.setdefault((database, label), []).append(got)
                print(f"round {round_ + 1} {database} {label}: {got}", file=sys.stderr)
    print("| database | before CPU µs/report | after CPU µs/report | after / before |"
          " mariadbd µs/report before → after | ratio | before wall µs/report |"
          " after wall µs/report |")
    print("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |")
    for database in databases:
        def mean(label: str, key: str) -> float:
            rows = results[(database, label)]
            return sum(r[key] for r in rows) / len(rows)

        before, after = mean("before", "cpu_us"), mean("after", "cpu_us")
        db_before, db_after = mean("before", "db_us"), mean("after", "db_us")
        server = (f"{db_before:.0f} → {db_after:.0f} | {db_after / db_before:.3f}"
                  if db_before else "— | —")
        print(f"| {database} | {before:.0f} | {after:.0f} | {after / before:.3f} | {server} |"
              f" {mean('before', 'wall_us'):.0f} | {mean('after', 'wall_us'):.0f} |")


if __name__ == "__main__":
    main()
