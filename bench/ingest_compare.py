"""The before/after rows of bench/ingest.py (``--before <checkout>``): this tree against another
checkout (``git archive <sha> | tar -x -C /tmp/before``) on SQLite, MariaDB in one process and
MariaDB with ``[overc] processes = 2``, measured in the same run.

Every server (both trees, every target) is started and warmed up once, then the load rounds
are interleaved: round 1 loads before, after, before, after... target by target, round 2 the
other way round, so a neighbour's burst on this shared machine falls on both trees alike. The
figure to trust is the CPU per request (user + system time of the server's processes, and of
mariadbd, from /proc, divided by the requests served); requests/s depends on what the other
processes on the machine leave us. The load average is printed with every row.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

from ingest import cpu_seconds, count_states, family, load, mariadb_pids, use_wrk, warm_up

from realserver import RealServer  # noqa: E402  (bench/ingest.py put tests/ on the path)


def _loadavg() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def _measure(server: RealServer, c: int, duration: int, servers: int) -> dict:
    pids = family(server.process.pid)
    database = mariadb_pids()
    stored_before = count_states(server)
    cpu_before = (cpu_seconds(pids), cpu_seconds(database))
    result = load(server.port, c, duration, servers)
    cpu_after = (cpu_seconds(pids), cpu_seconds(database))
    stored = count_states(server) - stored_before
    acked = (result["requests"] - result["errors"]) * 3
    if stored < acked:
        raise SystemExit(f"{acked} states acknowledged, {stored} stored")
    result["cpu"] = cpu_after[0] - cpu_before[0]
    result["db_cpu"] = cpu_after[1] - cpu_before[1]
    result["load"] = _loadavg()
    return result


def before_after(args, levels: list[int]) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="overc-bench-ab-"))
    base = os.environ.get("OVERC_TEST_MYSQL", "mysql://root@127.0.0.1:3306/overc_test")
    every = {"sqlite": ("SQLite", None, None), "mariadb": ("MariaDB", "mysql", None),
             "mariadb2": ("MariaDB, processes = 2", "mysql", "[overc]\nprocesses = 2\n")}
    wanted = args.targets.split(",")
    if args.no_mysql:
        wanted = [name for name in wanted if name == "sqlite"]
    targets: list[tuple[str, str | None, str | None]] = [every[name] for name in wanted]
    trees = [("before", args.before), ("after", args.after)]
    servers: dict[tuple[str, str], RealServer] = {}
    databases: list[str] = []
    try:
        for label, kind, config in targets:
            for tree, root in trees:
                database = None
                if kind == "mysql":
                    database = f"{base}_ab_{uuid.uuid4().hex[:8]}"
                    databases.append(database)
                folder = f"{label}-{tree}".replace(",", "").replace(" ", "-").replace("=", "")
                server = RealServer(workdir / folder.lower(), database=database,
                                    config_text=config, root=root)
                server.start()
                servers[(label, tree)] = server
                warm_up(server.url, args.servers)
                load(server.port, levels[-1], min(args.duration, 5), args.servers)
        results: dict[tuple[str, str, int], list[dict]] = {}
        print(f"load average at the start: {_loadavg()}", flush=True)
        for number in range(args.rounds):
            order = trees if number % 2 == 0 else trees[::-1]
            for label, _, _ in targets:
                for c in levels:
                    for tree, _ in order:
                        row = _measure(servers[(label, tree)], c, args.duration, args.servers)
                        results.setdefault((label, tree, c), []).append(row)
                        print(f"round {number + 1} {label} {tree} c={c}: {row['rps']:.0f} req/s,"
                              f" {row['cpu'] * 1000 / row['requests']:.3f} +"
                              f" {row['db_cpu'] * 1000 / row['requests']:.3f} ms/req,"
                              f" p99 {row['p99_ms']:.1f} ms, load {row['load']}", flush=True)
    finally:
        for server in servers.values():
            server.stop()
        for database in databases:
            from ingest import _drop

            _drop(database)
        shutil.rmtree(workdir, ignore_errors=True)
    _report(args, targets, levels, results)


def _report(args, targets, levels, results) -> None:
    print(f"\nBefore/after: 3-service status reports over {args.servers} servers, {args.rounds}"
          f" rounds of {args.duration} s, load by {'wrk' if use_wrk() else 'asyncio'}\n")
    print("| target | conc. | req/s before (rounds) | req/s after (rounds) | req/s after/before |"
          " server CPU ms/req before → after | ratio | + mariadbd ms/req before → after |"
          " ratio incl. mariadbd | p99 ms before → after | load avg |")
    print("| --- | ---: | --- | --- | ---: | --- | ---: | --- | ---: | --- | --- |")
    for label, _, _ in targets:
        for c in levels:
            b, a = results[(label, "before", c)], results[(label, "after", c)]

            def total(rows, key):
                return sum(r[key] for r in rows)

            def per_request(rows, key):
                return total(rows, key) * 1000 / max(total(rows, "requests"), 1)

            def rps(rows):
                return sum(r["rps"] for r in rows) / len(rows)

            cpu_b, cpu_a = per_request(b, "cpu"), per_request(a, "cpu")
            db_b, db_a = per_request(b, "db_cpu"), per_request(a, "db_cpu")
            p99_b = sorted(r["p99_ms"] for r in b)[len(b) // 2]
            p99_a = sorted(r["p99_ms"] for r in a)[len(a) // 2]
            loads = ", ".join(r["load"].split()[0] for r in b + a)
            each_b = ", ".join(f"{r['rps']:.0f}" for r in b)
            each_a = ", ".join(f"{r['rps']:.0f}" for r in a)
            if label.startswith("MariaDB"):
                with_db = (f"{db_b:.3f} → {db_a:.3f} | {(cpu_a + db_a) / (cpu_b + db_b):.2f}")
            else:
                with_db = "— | —"  # mariadbd then only serves the other tests on the machine
            print(f"| {label} | {c} | {rps(b):.0f} ({each_b}) | {rps(a):.0f} ({each_a})"
                  f" | {rps(a) / rps(b):.2f} | {cpu_b:.3f} → {cpu_a:.3f} | {cpu_a / cpu_b:.2f}"
                  f" | {with_db}"
                  f" | {p99_b:.0f} → {p99_a:.0f} | {loads} |")
