"""Benchmark: the agent's own CPU and its deadlines at 1,000 and 10,000 plugin runs a minute.

For each rate R, a monitor (``overcli monitor``, a real agent process) gets enough services
running ``/bin/true`` for R runs a minute: by default R services with ``period = 75`` and
``max-lag = 0``, which the agent runs every 0.8 x 75 - 0 = 60 s (``--period 60``: a run every
48 s, so 0.8 R services) and reports to a stub push server on loopback (a separate process: a
``twisted.web`` resource that answers like OverC and only records when each service's report
arrived). After the first round has arrived, the agent's CPU is sampled from
``/proc/<pid>/stat`` over a steady-state window: its own user + system time (``utime`` and
``stime``, which exclude its children: the plugins' CPU is theirs, not the agent's).

- **agent CPU % of one core** = agent CPU / wall time of the window. Target at 10,000 runs a
  minute: at most 15 %.
- **missed deadlines**: a report arriving later than ``previous report + period + grace``
  (grace = 10 % of the period, OverC's default), counted by the stub for every service, plus
  any service whose last report is overdue when the window ends. Target: 0.
- **agent / bare**: the agent's CPU per run against a bare loop in this process that runs the
  same plugin the same number of times with ``subprocess.run([plugin], stdin=DEVNULL,
  stdout=PIPE, stderr=PIPE)`` (C vfork + exec, both pipes read to EOF, blocking ``waitpid``;
  no reactor, timers, result mapping or HTTP), measured with ``getrusage(RUSAGE_SELF)`` right
  after the agent stopped, in the same run.

Usage: python bench/agent.py [--rates 1000,10000] [--window 120] [--quick] [--period 75] [--plugin /bin/true]
Windows are whole minutes (whole rounds); ``--quick`` measures one minute per rate instead of two.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")
#: Seconds between two runs of a service with max-lag 0 (overc.agent.schedule).
RUN_FACTOR = 0.8
#: OverC's default grace: 10 % of the period.
GRACE_FACTOR = 0.1


# -- the stub push server (runs as its own process: python bench/agent.py --stub PORTFILE) ------


def run_stub(port_file: str, period: float) -> None:
    """Answer the agent's pushes like OverC; record per service how late each report came."""
    from twisted.internet import reactor
    from twisted.web import resource as web_resource, server

    last: dict[str, float] = {}
    stats = {"posts": 0, "reports": 0, "missed": 0, "worst_gap": 0.0}

    class Push(web_resource.Resource):
        isLeaf = True

        def render_POST(self, request):  # noqa: N802 - twisted.web's name
            body = json.loads(request.content.read())
            now = time.monotonic()
            if request.path.endswith(b"/service/status"):
                stats["posts"] += 1
                for s in body["services"]:
                    name = s["name"]
                    previous = last.get(name)
                    if previous is not None:
                        gap = now - previous
                        stats["worst_gap"] = max(stats["worst_gap"], gap)
                        if gap > s["period"] * (1 + GRACE_FACTOR):
                            stats["missed"] += 1
                    last[name] = now
                    stats["reports"] += 1
            request.setHeader(b"content-type", b"application/json")
            return json.dumps({"pong": 1} if request.path.endswith(b"/ping") else {"ok": 1}).encode()

        def render_GET(self, request):  # noqa: N802
            now = time.monotonic()
            overdue = sum(1 for t in last.values() if now - t > period * (1 + GRACE_FACTOR))
            request.setHeader(b"content-type", b"application/json")
            return json.dumps({**stats, "services": len(last), "overdue": overdue}).encode()

    port = reactor.listenTCP(0, server.Site(Push(), logPath=None), interface="127.0.0.1")
    Path(port_file).write_text(str(port.getHost().port))
    reactor.run()


def stub_stats(url: str) -> dict:
    with urllib.request.urlopen(url + "stats", timeout=30) as answer:
        return json.loads(answer.read())


# -- measuring ----------------------------------------------------------------------------


def wait_until(predicate, timeout: float, what: str) -> None:
    """Poll ``predicate`` until it holds or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise SystemExit(f"bench: timed out waiting for {what}")


def proc_cpu(pid: int) -> tuple[float, float]:
    """(own, children's) CPU seconds, user + system, of process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK, (int(fields[13]) + int(fields[14])) / TICK


def bare_loop(plugin: str, runs: int) -> float:
    """CPU seconds (user + system) this process spends running the plugin ``runs`` times."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(runs):
        subprocess.run([plugin], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(rate: int, period: int, window: float, plugin: str, work: Path) -> dict:
    """Run an agent with ``rate`` runs a minute against a fresh stub; the figures of one row."""
    interval = RUN_FACTOR * period
    services = round(rate * interval / 60)
    folder = work / f"rate-{rate}"
    folder.mkdir()
    port_file = folder / "port"
    stub = subprocess.Popen(
        [sys.executable, __file__, "--stub", str(port_file), "--period", str(period)], stdin=subprocess.DEVNULL
    )
    agent = None
    try:
        wait_until(lambda: port_file.exists() and port_file.read_text(), 30, "the stub server")
        url = f"http://127.0.0.1:{port_file.read_text()}/"
        config = folder / "monitor.ini"
        config.write_text(
            f"[overc]\nserver = {url}\nmy-name = bench\nmy-key = k\nspool = monitor.spool\n\n"
            + "".join(
                f"[service:svc{i:05d}]\nperiod = {period}\nmax-lag = 0\ncommand = {plugin}\n\n" for i in range(services)
            )
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with open(folder / "agent.log", "wb") as log:
            agent = subprocess.Popen(
                [sys.executable, "-c", "from overc.agent.cli import main; main()", "monitor", str(config)],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        started = time.monotonic()
        wait_until(lambda: stub_stats(url)["services"] >= services, interval, "the first round at the stub")
        first_round = time.monotonic() - started
        # The window starts half an interval after a round started and lasts whole intervals,
        # so it holds whole rounds however long a round's burst of runs takes.
        rounds = max(round(window / interval), 1)
        t0 = started + interval / 2
        while t0 < time.monotonic():
            t0 += interval
        time.sleep(max(t0 - time.monotonic(), 0))
        cpu0, stats0 = proc_cpu(agent.pid), stub_stats(url)
        time.sleep(max(t0 + rounds * interval - time.monotonic(), 0))
        cpu1, stats1, t1 = proc_cpu(agent.pid), stub_stats(url), time.monotonic()
    finally:
        if agent is not None:
            agent.send_signal(signal.SIGTERM)
            agent.wait(60)
        stub.send_signal(signal.SIGTERM)
        stub.wait(30)
    runs = stats1["reports"] - stats0["reports"]
    agent_cpu = cpu1[0] - cpu0[0]
    bare_cpu = bare_loop(plugin, runs)
    return {
        "rate": rate,
        "services": services,
        "window": t1 - t0,
        "first_round": first_round,
        "runs": runs,
        "runs_per_min": runs / (t1 - t0) * 60,
        "posts": stats1["posts"] - stats0["posts"],
        "agent_cpu": agent_cpu,
        "plugins_cpu": cpu1[1] - cpu0[1],
        "agent_pct": agent_cpu / (t1 - t0) * 100,
        "bare_cpu": bare_cpu,
        "missed": stats1["missed"] + stats1["overdue"],
        "worst_gap": stats1["worst_gap"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="1000,10000", help="plugin runs a minute, comma separated")
    parser.add_argument("--window", type=float, default=120.0, help="seconds of steady state measured")
    parser.add_argument("--quick", action="store_true", help="one-minute windows")
    parser.add_argument("--period", type=int, default=75, help="every service's period (max-lag 0)")
    parser.add_argument("--plugin", default="/bin/true")
    parser.add_argument("--stub", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stub:
        return run_stub(args.stub, args.period)
    window = 60.0 if args.quick else args.window
    work = Path(tempfile.mkdtemp(prefix="overc-bench-agent-"))
    rows = [measure(int(rate), args.period, window, args.plugin, work) for rate in args.rates.split(",")]

    print(f"plugin: {args.plugin}; period {args.period} s, max-lag 0 (a run every {RUN_FACTOR * args.period:g} s); "
          f"deadline = previous report + {args.period} s + {GRACE_FACTOR * args.period:g} s grace")
    print()
    print("| runs/min (target) | services | measured | window s | first round s | POSTs | agent CPU s | agent % of a core "
          "| agent ms/run | bare loop ms/run | agent / bare | plugins' CPU s | missed deadlines | worst gap s |")
    print("|" + " ---: |" * 14)
    for r in rows:
        runs = max(r["runs"], 1)
        print(
            f"| {r['rate']:,} | {r['services']:,} | {r['runs_per_min']:,.0f} | {r['window']:.0f} | {r['first_round']:.1f} | {r['posts']} "
            f"| {r['agent_cpu']:.2f} | {r['agent_pct']:.1f} % | {r['agent_cpu'] / runs * 1000:.3f} "
            f"| {r['bare_cpu'] / runs * 1000:.3f} | {r['agent_cpu'] / max(r['bare_cpu'], 1e-9):.2f} "
            f"| {r['plugins_cpu']:.2f} | {r['missed']} | {r['worst_gap']:.1f} |"
        )
    print()
    top = rows[-1]
    print(f"target at 10,000/min: agent <= 15 % of one core, 0 missed; measured at {top['rate']:,}/min: "
          f"{top['agent_pct']:.1f} %, {top['missed']} missed")
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
