"""Where a push's CPU goes: py-spy's GIL-held samples of a loaded server, grouped.

    python bench/profile_ingest.py [--database sqlite|mariadb] [--processes 1]
                                   [--duration 12] [--concurrency 50] [--raw FILE]

Starts ``twistd -n overc server`` (tests/realserver.py), loads it with wrk as
``bench/ingest.py`` does (3-service status reports over 1,000 servers), and once it is warm
records one server process with ``py-spy record --gil`` (``pip install py-spy``; root or
ptrace rights). Prints the share of GIL-held samples per part of the request's path, inclusive
(a sample can count in several rows), then the functions most often on top of the stack.
``--raw`` keeps py-spy's folded stacks for a flame graph. The shares are the figure to trust:
a loaded neighbour slows every part alike.
"""
from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ingest  # noqa: E402  (also puts tests/ and the repository on sys.path)
from realserver import RealServer  # noqa: E402

SERVERS = 1000

#: (row, what a frame must match): a sample counts in a row when any frame of its stack does;
#: with ``leaf:`` only when the frame on top of the stack does.
PARTS = [
    ("twisted.web: reading and parsing HTTP", r"HTTPChannel\.(dataReceived|lineReceived)"),
    ("the push on the reactor: body JSON, validation, key, submit", r"PushAPI\.push "),
    ("- of which the body's JSON and its validation (payload.py)", r"payload\.py"),
    ("answers: group-commit callbacks, write and finish", r"GroupCommit\._run |PushAPI\._committed"),
    ("the ingest transaction (pool thread)", r"Database\.run\.<locals>\.interaction"),
    ("- the servers' UPDATE", r"update_servers_seen"),
    ("- the locked read of the services", r"_load_services"),
    ("- the fold (apply_report, apply_start)", r"apply_report|apply_start"),
    ("- the writes: literals (bulk_rows)", r"Writes\.insert"),
    ("- the writes: the round trip", r"Writes\.send"),
    ("- COMMIT", r"Connection\.commit"),
    ("thread pool hand-off and locks (on top)",
     r"leaf:threadpool\.py|_threadworker\.py|_team\.py|queue\.py|threading\.py"),
]


def profile(pid: int, seconds: int, raw: Path) -> list[tuple[str, int]]:
    subprocess.run(["py-spy", "record", "--gil", "-r", "250", "-d", str(seconds), "-p",
                    str(pid), "-f", "raw", "-o", str(raw)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stacks = []
    for line in raw.read_text().splitlines():
        stack, count = line.rsplit(" ", 1)
        stacks.append((stack, int(count)))
    return stacks


def _name(frame: str) -> str:
    """``function (file.py)`` of one py-spy frame ``function (path/file.py:line)``."""
    function, _, where = frame.partition(" (")
    return f"{function} ({re.sub(r':[0-9]+[)]$', '', where).rsplit('/', 1)[-1]})"


def report(stacks: list[tuple[str, int]]) -> None:
    total = sum(count for _, count in stacks) or 1
    print(f"\n{total} GIL-held samples\n")
    print("| where (share of GIL-held samples, inclusive) | % |")
    print("| --- | ---: |")
    for label, pattern in PARTS:
        leaf = pattern.startswith("leaf:")
        matcher = re.compile(pattern.removeprefix("leaf:"))
        hits = sum(count for stack, count in stacks
                   if matcher.search(stack.rsplit(";", 1)[-1] if leaf else stack))
        print(f"| {label} | {100 * hits / total:.1f} |")
    leaves: collections.Counter = collections.Counter()
    for stack, count in stacks:
        leaves[_name(stack.split(";")[-1])] += count
    print("\n| on top of the stack | % |")
    print("| --- | ---: |")
    for name, count in leaves.most_common(15):
        print(f"| `{name}` | {100 * count / total:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "mariadb"], default="mariadb")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--duration", type=int, default=12)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--raw", type=Path, default=None)
    args = parser.parse_args()
    for tool in ("py-spy", "wrk"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (pip install py-spy; apt-get install wrk)")
    folder = Path(tempfile.mkdtemp(prefix="overc-profile-"))
    base = os.environ.get("OVERC_TEST_MYSQL", "mysql://root@127.0.0.1:3306/overc_test")
    database = (f"{base}_profile_{uuid.uuid4().hex[:8]}" if args.database == "mariadb"
                else None)
    config = f"[overc]\nprocesses = {args.processes}\n" if args.processes > 1 else None
    server = RealServer(folder, database=database, config_text=config)
    raw = args.raw or folder / "stacks.txt"
    try:
        server.start()
        ingest.warm_up(server.url, SERVERS)
        ingest.run_wrk(server.port, args.concurrency, 3, SERVERS)  # warm: caches, pool
        assert server.process is not None
        loaded: dict = {}
        load = threading.Thread(target=lambda: loaded.update(ingest.run_wrk(
            server.port, args.concurrency, args.duration + 4, SERVERS)))
        load.start()
        time.sleep(2)
        stacks = profile(server.process.pid, args.duration, raw)
        load.join()
    finally:
        server.stop()
        if database:
            ingest._drop(database)
    print(f"{args.database}, processes = {args.processes}, wrk c={args.concurrency}:"
          f" {loaded.get('rps', 0):.0f} requests/s while profiled (py-spy slows the process"
          f" it samples)")
    report(stacks)
    if args.raw is None:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
