"""Benchmark: the agent's own CPU per plugin run, against a bare fork/exec loop.

A monitor with N services (default 1,000) runs a trivial plugin (``/bin/true``) every 60 s
(``period = 75``, ``max-lag = 0``: 0.8 x 75 - 0 = 60 s), i.e. N runs per minute, and reports
to a real ``twistd overc server`` (SQLite). We sample the agent process's CPU (user + system,
from /proc) in a quiet moment after the first round, again after ROUNDS more rounds, and divide
by the runs the server received in between.

The baseline is a bare Python loop in this (benchmark) process that runs the same plugin N
times per round with ``subprocess.run([plugin], stdin=DEVNULL, stdout=PIPE, stderr=PIPE)``:
``_posixsubprocess`` vfork + exec (descriptors closed in the child with ``close_range``), both
output pipes read to EOF (``communicate``), the child reaped with a blocking ``waitpid``; one
plugin at a time, no reactor, no timers, no result mapping, no HTTP. It runs inside the
measured window, in the quiet half of each minute while the agent idles, so both sides see
the same machine load; its CPU is ``getrusage(RUSAGE_SELF)``. Plugins' own CPU (the children)
is excluded on both sides. Missed deadlines are read from the server: services marked stale
and ``offline`` alerts.

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


def bare_loop(plugin: str, runs: int) -> tuple[float, float]:
    """(user, system) CPU seconds this process spends fork/exec-ing the plugin ``runs`` times."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(runs):
        subprocess.run([plugin], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime


def proc_cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of one process (not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


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
        # Sample in the quiet middle of a minute, then after `rounds` more minutes. Each round
        # the bare loop runs in the quiet half of the minute (the agent's runs start at :00).
        time.sleep(max(30 - (time.monotonic() - started), 0))
        cpu0, states0, t0 = proc_cpu_split(agent.pid), count_states(server.db_path), time.monotonic()
        bare_user = bare_sys = 0.0
        for r in range(args.rounds):
            time.sleep(max(t0 + 60 * r + 15 - time.monotonic(), 0))
            user, system = bare_loop(args.plugin, args.services)
            bare_user, bare_sys = bare_user + user, bare_sys + system
        time.sleep(max(t0 + 60 * args.rounds - time.monotonic(), 0))
        cpu1, states1, t1 = proc_cpu_split(agent.pid), count_states(server.db_path), time.monotonic()
        stale, offline = missed(server.db_path)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)
        server.stop()
    runs = states1 - states0
    bare_runs = args.services * args.rounds
    agent_user, agent_sys = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
    agent_cpu, bare_cpu = agent_user + agent_sys, bare_user + bare_sys
    rate = runs / (t1 - t0) * 60

    print(f"services: {args.services}, plugin: {args.plugin}, measured window: {t1 - t0:.0f} s")
    print(f"first round (start + {args.services} runs delivered): {first_round:.1f} s")
    print()
    def row(what: str, n: int, user: float, system: float) -> str:
        per = lambda x: x / max(n, 1) * 1000  # noqa: E731
        return (
            f"| {what:<34} | {n:>6} | {user + system:>7.2f} | {per(user + system):>10.3f} "
            f"| {per(user):>8.3f} | {per(system):>8.3f} |"
        )

    print(f"| {'what':<34} | {'runs':>6} | {'CPU s':>7} | {'CPU ms/run':>10} | {'user ms':>8} | {'sys ms':>8} |")
    print(f"| {'-' * 34} | {'-' * 6}:| {'-' * 7}:| {'-' * 10}:| {'-' * 8}:| {'-' * 8}:|")
    print(row("agent (overcli monitor)", runs, agent_user, agent_sys))
    print(row("bare Python fork/exec loop", bare_runs, bare_user, bare_sys))
    print()
    per_run_agent, per_run_bare = agent_cpu / max(runs, 1), bare_cpu / max(bare_runs, 1)
    ratio = per_run_agent / per_run_bare if bare_cpu else float("inf")
    print(f"runs per minute: {rate:.0f}; agent / bare = {ratio:.2f} (target <= 1.5)")
    print(f"missed deadlines: {stale} stale services, {offline} offline alerts (target 0)")
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
