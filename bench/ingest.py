"""Ingest throughput of the real server against a bare Klein route, measured in one run.

    python bench/ingest.py [--duration 10] [--servers 500] [--no-mysql]
    python bench/ingest.py --galera [--duration 10]      # the Galera rows (SPEC 12)

Starts (1) bench/bare_klein.py, (2) `twistd -n overc server` on SQLite, (3) the same on a fresh
MariaDB database (OVERC_TEST_MYSQL), and loads each from a separate process (wrk when
installed, else a small asyncio load generator) with 3-service status reports spread over many
server names, at concurrency 10 and 50. Prints req/s, service states/s, p50/p99 latency and the
ratio to the bare route, and checks afterwards that every acknowledged report is in the
database (200 means committed).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

from realserver import RealServer, free_port, http  # noqa: E402

PATH = "/api/set/service/status"
LUA = r"""
-- Each wrk thread walks its own part of the server names, as independent hosts would.
local threads = 0
setup = function(thread)
  thread:set("id", threads)
  threads = threads + 1
end
counter = 0
servers = tonumber(os.getenv("BENCH_SERVERS") or "500")
request = function()
  counter = counter + 1
  local n = (id * math.floor(servers / 2) + counter) % servers
  local body = '{"server":{"name":"bench' .. n .. '","key":"k' .. n .. '"},"period":60,' ..
    '"services":[{"name":"app","state":"OK","info":"up 32h"},' ..
    '{"name":"disk","state":"WARN","info":"DISK WARNING - /var 91% | /var=91%;90;95;0;100"},' ..
    '{"name":"queue","state":"OK","info":"12 items"}]}'
  return wrk.format("POST", "/api/set/service/status",
    {["Content-Type"] = "application/json"}, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
    '"non2xx":%d,"socket_errors":%d}\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout))
end
"""


def body(n: int) -> bytes:
    return json.dumps({
        "server": {"name": f"bench{n}", "key": f"k{n}"}, "period": 60,
        "services": [
            {"name": "app", "state": "OK", "info": "up 32h"},
            {"name": "disk", "state": "WARN",
             "info": "DISK WARNING - /var 91% | /var=91%;90;95;0;100"},
            {"name": "queue", "state": "OK", "info": "12 items"},
        ]}).encode()


def run_wrk(port: int, concurrency: int, duration: int, servers: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA)
    try:
        out = subprocess.run(
            ["wrk", "-t", "2", "-c", str(concurrency), "-d", f"{duration}s", "--latency",
             "-s", script.name, f"http://127.0.0.1:{port}{PATH}"],
            capture_output=True, text=True, env={**os.environ, "BENCH_SERVERS": str(servers)},
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    line = next(l for l in out.splitlines() if l.startswith("BENCH "))
    stats = json.loads(line[len("BENCH "):])
    return {
        "rps": stats["requests"] / (stats["duration_us"] / 1e6),
        "p50_ms": stats["p50_us"] / 1000, "p99_ms": stats["p99_us"] / 1000,
        "errors": stats["non2xx"] + stats["socket_errors"], "requests": stats["requests"],
    }


async def _read_body(reader: asyncio.StreamReader, head: bytes) -> None:
    """Consume one response body: Content-Length or chunked (twisted.web uses both)."""
    headers = {line.split(b":", 1)[0].strip().lower(): line.split(b":", 1)[1].strip()
               for line in head.split(b"\r\n")[1:] if b":" in line}
    if b"content-length" in headers:
        await reader.readexactly(int(headers[b"content-length"]))
        return
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        await reader.readexactly(size + 2)  # the chunk and its CRLF
        if size == 0:
            return


async def _asyncio_load(port: int, concurrency: int, duration: float, servers: int) -> dict:
    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + duration
    counter = iter(range(10**9))

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.monotonic() < stop_at:
            payload = body(next(counter) % servers)
            started = time.monotonic()
            writer.write(
                f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
            head = await reader.readuntil(b"\r\n\r\n")
            await _read_body(reader, head)
            latencies.append(time.monotonic() - started)
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
        writer.close()

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    latencies.sort()
    return {"rps": len(latencies) / elapsed, "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000, "errors": errors,
            "requests": len(latencies)}


LOADER = "auto"


def use_wrk() -> bool:
    return LOADER == "wrk" or (LOADER == "auto" and shutil.which("wrk") is not None)


def load(port: int, concurrency: int, duration: int, servers: int) -> dict:
    if use_wrk():
        return run_wrk(port, concurrency, duration, servers)
    code = (f"import asyncio, sys; sys.path.insert(0, {str(HERE)!r}); import ingest, json; "
            f"print(json.dumps(asyncio.run(ingest._asyncio_load({port}, {concurrency}, "
            f"{duration}, {servers}))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.splitlines()[-1])


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def family(pid: int) -> list[int]:
    """A server process and its worker processes ([overc] processes)."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [pid, *map(int, children.split())]


def mariadb_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-x", "mariadbd"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def warm_up(url: str, servers: int) -> None:
    """Register every bench server once (key hashing is deliberately slow, once per server)."""
    from concurrent.futures import ThreadPoolExecutor

    def register(n: int) -> None:
        status, _, answer = http("POST", url + PATH.lstrip("/"), body(n), timeout=60)
        assert status == 200, answer

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(register, range(servers)))


def count_states(server: RealServer) -> int:
    if server.database.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(server.db_path) as connection:
            return connection.execute("SELECT COUNT(*) FROM states").fetchone()[0]
    import pymysql
    from urllib.parse import urlsplit

    parts = urlsplit(server.database)
    connection = pymysql.connect(host=parts.hostname, port=parts.port or 3306,
                                 user=parts.username or "root", password=parts.password or "",
                                 database=parts.path.lstrip("/"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM states")
        return cursor.fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--concurrency", default="10,50")
    parser.add_argument("--no-mysql", action="store_true")
    parser.add_argument("--before", type=Path, default=None,
                        help="another checkout (e.g. `git archive main`): its rows (SQLite,"
                             " and MariaDB unless --no-mysql) run interleaved with this"
                             " tree's, twice each, for a before/after ratio measured in the"
                             " same run")
    parser.add_argument("--load", choices=["auto", "wrk", "asyncio"], default="auto",
                        help="load generator (auto: wrk when installed)")
    parser.add_argument("--galera", action="store_true",
                        help="only the Galera rows (a 3-node cluster of tests/galera) next to"
                             " one MariaDB")
    args = parser.parse_args()
    global LOADER
    LOADER = args.load
    levels = [int(c) for c in args.concurrency.split(",")]
    if args.galera:
        from ingest_galera import galera_rows

        galera_rows(args, levels)
        return
    workdir = Path(tempfile.mkdtemp(prefix="overc-bench-"))
    rows = []

    def measured(pids: list[int], port: int, c: int) -> dict:
        """One load row, with the CPU the server (and MariaDB) spent per request."""
        database = mariadb_pids()
        before = (cpu_seconds(pids), cpu_seconds(database))
        result = load(port, c, args.duration, args.servers)
        after = (cpu_seconds(pids), cpu_seconds(database))
        done = max(result["requests"], 1)
        result["cpu_ms"] = (after[0] - before[0]) * 1000 / done
        result["db_cpu_ms"] = (after[1] - before[1]) * 1000 / done
        return result

    def bare(mode: str) -> dict:
        port = free_port()
        process = subprocess.Popen([sys.executable, str(HERE / "bare_klein.py"), str(port), mode])
        try:
            time.sleep(1.5)
            http("POST", f"http://127.0.0.1:{port}{PATH}", body(0))
            return {c: measured([process.pid], port, c) for c in levels}
        finally:
            process.terminate()
            process.wait()

    baseline = bare("default")
    tuned = bare("tuned")
    for c in levels:
        rows.append(("bare Klein route (baseline)", c, baseline[c], 1.0,
                     baseline[c]["rps"] / tuned[c]["rps"]))
    for c in levels:
        rows.append(("bare Klein route, no form parsing", c, tuned[c],
                     tuned[c]["rps"] / baseline[c]["rps"], 1.0))

    targets: list[tuple] = [("OverC, SQLite", None, None)]
    if args.before is not None:
        targets = [("OverC, SQLite, before", None, None, args.before),
                   ("OverC, SQLite", None, None),
                   ("OverC, SQLite, before (2)", None, None, args.before),
                   ("OverC, SQLite (2)", None, None)]
    if not args.no_mysql:
        import uuid

        base = os.environ.get("OVERC_TEST_MYSQL", "mysql://root@127.0.0.1:3306/overc_test")

        def fresh() -> str:
            return f"{base}_bench_{uuid.uuid4().hex[:8]}"

        if args.before is not None:
            targets += [("OverC, MariaDB, before", fresh(), None, args.before),
                        ("OverC, MariaDB", fresh(), None),
                        ("OverC, MariaDB, before (2)", fresh(), None, args.before),
                        ("OverC, MariaDB (2)", fresh(), None)]
        else:
            targets.append(("OverC, MariaDB", fresh(), None))
        targets.append(("OverC, MariaDB, 2 processes", fresh(), "[overc]\nprocesses = 2\n"))
    for label, database, config_text, *root in targets:
        folder = label.replace(",", "").replace(" ", "-").replace("(", "").replace(")", "")
        server = RealServer(workdir / folder.lower(), database=database,
                            config_text=config_text, root=root[0] if root else None)
        server.start()
        try:
            warm_up(server.url, args.servers)
            # Steady state: every process has seen every server once (a process verifies a
            # server's key with PBKDF2 the first time it sees it, then only re-reads the hash).
            load(server.port, levels[-1], min(args.duration, 5), args.servers)
            pids = family(server.process.pid)
            for c in levels:
                before = count_states(server)
                result = measured(pids, server.port, c)
                stored = count_states(server) - before
                acked = (result["requests"] - result["errors"]) * 3
                if stored < acked:
                    raise SystemExit(f"{label}: {acked} states acknowledged, {stored} stored")
                rows.append((label, c, result, result["rps"] / baseline[c]["rps"],
                             result["rps"] / tuned[c]["rps"]))
        finally:
            server.stop()
            if database:
                _drop(database)

    print(f"\nIngest: 3-service status reports over {args.servers} servers, "
          f"{args.duration} s per row, load by {'wrk' if use_wrk() else 'asyncio'}\n")
    print("| server | conc. | req/s | states/s | p50 ms | p99 ms | errors | server CPU ms/req |"
          " MariaDB CPU ms/req | ratio to bare | ratio to bare, no form parsing |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, c, r, ratio, tuned_ratio in rows:
        print(f"| {label} | {c} | {r['rps']:.0f} | {r['rps'] * 3:.0f} | {r['p50_ms']:.1f} | "
              f"{r['p99_ms']:.1f} | {r['errors']} | {r['cpu_ms']:.3f} | {r['db_cpu_ms']:.3f} | "
              f"{ratio:.2f} | {tuned_ratio:.2f} |")
    if args.before is not None:
        print("\nThis tree against --before (req/s and server CPU ms/req of both runs each):\n")
        print("| database | conc. | before req/s | after req/s | after / before |"
              " CPU ms/req before | CPU ms/req after |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for backend in ("SQLite", "MariaDB"):
            for c in levels:
                mine = [(label, r) for label, cc, r, *_ in rows
                        if cc == c and label.startswith(f"OverC, {backend}")
                        and "processes" not in label]
                before = [r for label, r in mine if "before" in label]
                after = [r for label, r in mine if "before" not in label]
                if not before or not after:
                    continue
                print(f"| {backend} | {c} | {_mean(before, 'rps'):.0f} |"
                      f" {_mean(after, 'rps'):.0f} |"
                      f" {_mean(after, 'rps') / _mean(before, 'rps'):.3f} |"
                      f" {_mean(before, 'cpu_ms'):.3f} | {_mean(after, 'cpu_ms'):.3f} |")


def _mean(results: list[dict], key: str) -> float:
    return sum(r[key] for r in results) / len(results)


def _drop(database: str) -> None:
    import pymysql
    from urllib.parse import urlsplit

    parts = urlsplit(database)
    connection = pymysql.connect(host=parts.hostname, port=parts.port or 3306,
                                 user=parts.username or "root", password=parts.password or "")
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{parts.path.lstrip('/')}`")
    connection.close()


if __name__ == "__main__":
    main()
