"""The Galera rows of bench/ingest.py (``--galera``): OverC on a real 3-node MariaDB Galera
cluster (tests/galera/galera_cluster.py) next to one MariaDB, in one run.

Topologies: one process on one node; two processes on two nodes (multi-writer: each has its own
node first); two processes through one writer (the same host order). The load is split over the
two processes, every server name through both (as HAProxy round-robin would send one agent's
pushes), so multi-writer meets real conflicts. 1213s are counted by the servers: Galera's
certification failures + brute-force aborts on every node (InnoDB deadlocks on one MariaDB).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import uuid
from pathlib import Path

import ingest
from ingest import HERE, cpu_seconds, family, load, mariadb_pids, warm_up

from realserver import RealServer  # noqa: E402  (bench/ingest.py put tests/ on the path)


def _conflicts(nodes) -> int:
    total = 0
    for node in nodes:
        for name in ("wsrep_local_cert_failures", "wsrep_local_bf_aborts"):
            total += int(node.status(name) or 0)
    return total


class _Single:
    """The machine's MariaDB, shaped like a cluster node for _conflicts and counting."""

    def __init__(self, url: str) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 3306

    def status(self, name: str) -> str:
        import pymysql

        if name != "wsrep_local_cert_failures":
            return "0"
        connection = pymysql.connect(host=self.host, port=self.port, user="root")
        with connection.cursor() as cursor:
            cursor.execute("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'")
            row = cursor.fetchone()
        connection.close()
        return row[1] if row else "0"

    def query(self, sql: str, database: str) -> list[tuple]:
        import pymysql

        connection = pymysql.connect(host=self.host, port=self.port, user="root",
                                     database=database)
        with connection.cursor() as cursor:
            cursor.execute(sql)
            rows = list(cursor.fetchall())
        connection.close()
        return rows


def _split_load(servers: list[RealServer], concurrency: int, duration: int,
                names: int) -> dict:
    """Load every server at once, ``concurrency`` shared between them; sum the results."""
    results: list[dict] = [{} for _ in servers]
    share = max(1, concurrency // len(servers))

    def run(index: int) -> None:
        results[index] = load(servers[index].port, share, duration, names)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(servers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    requests = sum(r["requests"] for r in results)
    return {"rps": sum(r["rps"] for r in results), "requests": requests,
            "errors": sum(r["errors"] for r in results),
            "p50_ms": max(r["p50_ms"] for r in results),  # the slower process's
            "p99_ms": max(r["p99_ms"] for r in results)}


def galera_rows(args, levels: list[int]) -> None:
    sys_path_tests = str(HERE.parent / "tests" / "galera")
    import sys

    sys.path.insert(0, sys_path_tests)
    from galera_cluster import GaleraCluster

    base = tempfile.mkdtemp(prefix="overc-galera-bench-")
    os.chmod(base, 0o755)
    cluster = GaleraCluster(Path(base))
    workdir = Path(tempfile.mkdtemp(prefix="overc-bench-"))
    single = os.environ.get("OVERC_TEST_MYSQL", "mysql://root@127.0.0.1:3306/overc_test")
    rows = []
    try:
        cluster.start()
        node_pids = [n.process.pid for n in cluster.nodes]
        topologies = [
            ("one MariaDB, 1 process", "single", [None]),
            ("one MariaDB, 2 processes", "single", [None, None]),
            ("Galera, 1 process on db1", "galera", [[0, 1, 2]]),
            ("Galera, 2 processes on db1 + db2 (multi-writer)", "galera", [[0, 1, 2], [1, 2, 0]]),
            ("Galera, 2 processes, one writer (same host order)", "galera",
             [[0, 1, 2], [0, 1, 2]]),
        ]
        for label, kind, orders in topologies:
            name = f"overc_bench_{uuid.uuid4().hex[:8]}"
            if kind == "single":
                urls = [f"{single.rsplit('/', 1)[0]}/{name}" for _ in orders]
                counters, db_pids, reader = [_Single(single)], mariadb_pids(), _Single(single)
            else:
                urls = [cluster.url(name, order) for order in orders]
                counters, db_pids, reader = cluster.nodes, node_pids, cluster.nodes[2]
            servers = [RealServer(workdir / f"{name}-{i}", database=url, name=f"p{i}")
                       for i, url in enumerate(urls)]
            for server in servers:
                server.start(timeout=60)
            try:
                for server in servers:
                    warm_up(server.url, args.servers)
                _split_load(servers, levels[-1], min(args.duration, 5), args.servers)
                pids = [pid for s in servers for pid in family(s.process.pid)]
                for c in levels:
                    before = (cpu_seconds(pids), cpu_seconds(db_pids), _conflicts(counters),
                              _count(reader, name))
                    result = _split_load(servers, c, args.duration, args.servers)
                    after = (cpu_seconds(pids), cpu_seconds(db_pids), _conflicts(counters),
                             _count(reader, name))
                    done = max(result["requests"], 1)
                    acked = (result["requests"] - result["errors"]) * 3
                    if after[3] - before[3] < acked:
                        raise SystemExit(f"{label}: {acked} states acknowledged,"
                                         f" {after[3] - before[3]} stored")
                    rows.append((label, c, result, (after[0] - before[0]) * 1000 / done,
                                 (after[1] - before[1]) * 1000 / done,
                                 (after[2] - before[2]) * 1000 / done))
            finally:
                for server in servers:
                    server.stop()
                try:
                    reader.query(f"DROP DATABASE IF EXISTS `{name}`", None)
                except Exception:
                    pass
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nIngest on Galera: 3-service reports over {args.servers} servers, {args.duration} s"
          f" per row, load by {'wrk' if ingest.use_wrk() else 'asyncio'}\n")
    print("| topology | conc. | req/s | p50 ms | p99 ms | errors | 1213 per 1000 req |"
          " server CPU ms/req | MariaDB CPU ms/req |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, c, r, cpu, db_cpu, conflicts in rows:
        print(f"| {label} | {c} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |"
              f" {r['errors']} | {conflicts:.1f} | {cpu:.3f} | {db_cpu:.3f} |")


def _count(reader, database: str) -> int:
    try:
        return reader.query("SELECT COUNT(*) FROM states", database=database)[0][0]
    except Exception:
        return 0
