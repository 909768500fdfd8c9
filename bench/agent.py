"""Benchmark: the agent's own CPU per plugin run, against a bare fork/exec loop.

A monitor with N services (default 1,000) runs a trivial plugin (``/bin/true``) every 60 s
(``period = 75``, ``max-lag = 0``: 0.8 x 75 - 0 = 60 s), i.e. N runs per minute, and reports
to a real ``twistd overc server`` (SQLite). We sample the agent process's CPU (user + system,
from /proc) in a quiet moment after the first round, again after ROUNDS more rounds, and divide
by the runs in between. The same script then runs a bare Python loop that fork/execs the same
plugin the same number of times (``subprocess.run``) and measures its own CPU the same way.
Plugins' own CPU (the children) is excluded on both sides. Missed deadlines are read from the
server: services marked stale and ``offline`` alerts.

Usage: python bench/agent.py [--services 1000] [--rounds 2] [--plugin /bin/true]
Target (issue 4): agent CPU per run <= 1.5 x the bare loop, no missed deadlines.
"""
from __future__ import annotations

import argparse
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from realserver import RealServer  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def count_states(db_path: Path) -> int:
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute("SELECT COUNT(*) FROM states").fetchone()[0]
    finally:
        db.close()


def missed(db_path: Path) -> tuple[int, int]:
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        stale = db.execute("SELECT COUNT(*) FROM services WHERE stale != 0").fetchone()[0]
        offline = db.execute("SELECT COUNT(*) FROM alerts WHERE kind = 'offline'").fetchone()[0]
        return stale, offline
    finally:
        db.close()


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise SystemExit(f"bench: timed out waiting for {what}")


def bare_loop(plugin: str, runs: int) -> float:
    """CPU seconds this process spends fork/exec-ing the plugin ``runs`` times."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(runs):
        subprocess.run([plugin], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2, help="60 s rounds measured after the first one")
    parser.add_argument("--plugin", default="/bin/true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="overc-bench-agent-"))
    server = RealServer(work / "server")
    server.start()
    config = work / "agent" / "monitor.ini"
    config.parent.mkdir()
    config.write_text(
        f"[overc]\nserver = {server.url}\nmy-name = bench\nmy-key = k\nspool = monitor.spool\n\n"
        + "".join(f"[service:svc{i:04d}]\nperiod = 75\nmax-lag = 0\ncommand = {args.plugin}\n\n" for i in range(args.services))
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = open(work / "agent.log", "wb")
    agent = subprocess.Popen(
        [sys.executable, "-c", "from overc.agent.cli import main; main()", "monitor", str(config)],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    try:
        started = time.monotonic()
        wait_until(lambda: count_states(server.db_path) >= args.services, 60, "the first round at the server")
        first_round = time.monotonic() - started
        # Sample in the quiet middle of a minute, then after `rounds` more minutes.
        time.sleep(max(30 - (time.monotonic() - started), 0))
        cpu0, states0, t0 = proc_cpu(agent.pid), count_states(server.db_path), time.monotonic()
        time.sleep(60 * args.rounds)
        cpu1, states1, t1 = proc_cpu(agent.pid), count_states(server.db_path), time.monotonic()
        stale, offline = missed(server.db_path)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)
        server.stop()
    runs = states1 - states0
    agent_cpu = cpu1 - cpu0
    bare_cpu = bare_loop(args.plugin, runs)
    rate = runs / (t1 - t0) * 60

    print(f"services: {args.services}, plugin: {args.plugin}, measured window: {t1 - t0:.0f} s")
    print(f"first round (start + {args.services} runs delivered): {first_round:.1f} s")
    print()
    print(f"| {'what':<34} | {'runs':>6} | {'CPU s':>7} | {'CPU ms/run':>10} |")
    print(f"| {'-' * 34} | {'-' * 6}:| {'-' * 7}:| {'-' * 10}:|")
    print(f"| {'agent (overcli monitor)':<34} | {runs:>6} | {agent_cpu:>7.2f} | {agent_cpu / max(runs, 1) * 1000:>10.3f} |")
    print(f"| {'bare Python fork/exec loop':<34} | {runs:>6} | {bare_cpu:>7.2f} | {bare_cpu / max(runs, 1) * 1000:>10.3f} |")
    print()
    ratio = agent_cpu / bare_cpu if bare_cpu else float("inf")
    print(f"runs per minute: {rate:.0f}; agent / bare = {ratio:.2f} (target <= 1.5)")
    print(f"missed deadlines: {stale} stale services, {offline} offline alerts (target 0)")
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
