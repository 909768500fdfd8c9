"""OverC against Icinga 2 on the same machine, in the same run: the yardstick of issue 13.

    python bench/peers.py [--quick] [--duration 10] [--rounds 3] [--concurrency 50]
                          [--no-mysql] [--no-icinga]

Starts, on loopback only and each in its own temporary folder:

* Icinga 2 from Debian's package (``apt-get install icinga2 wrk``), without systemd: its own
  config/data/log/run folders (``-D ConfigDir=... -D DataDir=...``), ``icinga2 api setup``
  (CA, node certificate, TLS as it ships), an ApiUser, 100 hosts x 3 passive services
  (``enable_active_checks = false``), ``icinga2 daemon`` on a free port;
* ``twistd -n overc server`` on SQLite, on MariaDB, and on MariaDB with ``[overc] processes = 2``
  (a fresh database each, dropped afterwards);

then loads each with wrk at the same concurrency, interleaved over rounds (round 1: every
server once, round 2: every server again, ...), so a noisy neighbour hits all of them alike.
Icinga gets one check result per request (``POST /v1/actions/process-check-result``), OverC
3 per request (a status report of 3 services, as ``bench/ingest.py`` sends), over 100 server
names either way. Reported per server (medians over the rounds): requests/s, check results/s,
CPU ms per check result (the server's process tree, and mariadbd, from /proc), p50/p99 and the
RSS of the server's process tree after the load. After each OverC round every acknowledged
report must be in the database (200 means committed). Everything it starts it stops.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ingest  # noqa: E402  (also puts tests/ and the repository on sys.path)
from realserver import RealServer, free_port  # noqa: E402

HOSTS = 100
SERVICES = ("app", "disk", "queue")

ICINGA_LUA = r"""
-- One passive check result per request, walking 100 hosts x 3 services like OverC's bench.
local threads = 0
setup = function(thread)
  thread:set("id", threads)
  threads = threads + 1
end
counter = 0
local auth = "Basic " .. os.getenv("BENCH_AUTH")
local results = {
  {"app", 0, "OK - up 32h", "[]"},
  {"disk", 1, "DISK WARNING - /var 91%", '["/var=91%;90;95;0;100"]'},
  {"queue", 0, "OK - 12 items", "[]"},
}
request = function()
  counter = counter + 1
  local n = (id * 150 + counter) % 300
  local r = results[n % 3 + 1]
  local body = '{"type":"Service","service":"bench' .. math.floor(n / 3) .. '!' .. r[1] ..
    '","exit_status":' .. r[2] .. ',"plugin_output":"' .. r[3] ..
    '","performance_data":' .. r[4] .. '}'
  return wrk.format("POST", "/v1/actions/process-check-result",
    {["Content-Type"] = "application/json", ["Accept"] = "application/json",
     ["Authorization"] = auth}, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
    '"non2xx":%d,"socket_errors":%d}\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout))
end
"""


def wrk(url: str, lua: str, concurrency: int, duration: int, env: dict) -> dict:
    """One wrk run (2 threads), bounded in time; the BENCH line of the Lua ``done``."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    try:
        out = subprocess.run(
            ["wrk", "-t", "2", "-c", str(concurrency), "-d", f"{duration}s", "--timeout", "5s",
             "--latency", "-s", script.name, url],
            capture_output=True, text=True, env={**os.environ, **env}, check=True,
            timeout=duration + 60,
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


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Icinga's umbrella + main process, OverC's workers)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        children = subprocess.run(["pgrep", "-P", str(current)], capture_output=True,
                                  text=True).stdout
        todo.extend(int(c) for c in children.split())
    return found


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


class Icinga:
    """Icinga 2 in a temporary folder: ``icinga2 api setup``, passive services, the daemon."""

    label = "Icinga 2 (Debian), REST process-check-result"
    per_request = 1
    uses_mariadb = False

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.password = uuid.uuid4().hex
        self.process: subprocess.Popen | None = None
        self.dirs = {name: folder / name for name in ("etc", "data", "log", "run", "cache",
                                                      "spool")}

    def defines(self) -> list[str]:
        names = {"ConfigDir": "etc", "DataDir": "data", "LogDir": "log", "InitRunDir": "run",
                 "CacheDir": "cache", "SpoolDir": "spool"}
        out = []
        for constant, folder in names.items():
            out += ["-D", f"{constant}={self.dirs[folder]}"]
        return out

    def start(self) -> None:
        if shutil.which("icinga2") is None:
            raise SystemExit("icinga2 is not installed (apt-get install -y icinga2)")
        for path in self.dirs.values():
            path.mkdir(parents=True)
        etc = self.dirs["etc"]
        shutil.copy("/etc/icinga2/constants.conf", etc / "constants.conf")
        (etc / "conf.d").mkdir()
        (etc / "features-enabled").mkdir()
        (etc / "icinga2.conf").write_text(
            'include "constants.conf"\ninclude "zones.conf"\ninclude <itl>\n'
            'include "features-enabled/*.conf"\ninclude_recursive "conf.d"\n')
        (etc / "zones.conf").write_text(
            "object Endpoint NodeName { }\n"
            "object Zone ZoneName { endpoints = [ NodeName ] }\n")
        # The features Debian enables out of the box (checker, mainlog, notification).
        for feature in ("checker", "mainlog", "notification"):
            shutil.copy(f"/etc/icinga2/features-available/{feature}.conf",
                        etc / "features-enabled" / f"{feature}.conf")
        self._own()
        # CA + node certificate in DataDir, the api feature, an ApiUser "root" (replaced).
        subprocess.run(["icinga2", "api", "setup", *self.defines()], check=True,
                       capture_output=True, timeout=120)
        (etc / "features-enabled" / "api.conf").write_text(
            'object ApiListener "api" {\n  bind_host = "127.0.0.1"\n'
            f"  bind_port = {self.port}\n  ticket_salt = TicketSalt\n}}\n")
        (etc / "conf.d" / "api-users.conf").write_text(
            f'object ApiUser "bench" {{\n  password = "{self.password}"\n'
            '  permissions = [ "*" ]\n}\n')
        hosts = ["template Host \"bench-host\" {\n  check_command = \"dummy\"\n"
                 "  enable_active_checks = false\n}\n"
                 "template Service \"bench-service\" {\n  check_command = \"dummy\"\n"
                 "  enable_active_checks = false\n}\n"]
        for h in range(HOSTS):
            hosts.append(f'object Host "bench{h}" {{ import "bench-host" }}\n')
            for name in SERVICES:
                hosts.append(f'object Service "{name}" {{ import "bench-service";'
                             f' host_name = "bench{h}" }}\n')
        (etc / "conf.d" / "bench.conf").write_text("".join(hosts))
        self._own()
        log = open(self.folder / "daemon.out", "ab")
        self.process = subprocess.Popen(
            ["icinga2", "daemon", "-c", str(etc / "icinga2.conf"), *self.defines()],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()
        deadline = time.monotonic() + 90
        while not self._ready():
            if self.process.poll() is not None:
                raise SystemExit("icinga2 daemon exited:\n"
                                 + (self.folder / "daemon.out").read_text()[-3000:])
            if time.monotonic() > deadline:
                raise SystemExit("icinga2 API did not answer within 90 s")
            time.sleep(0.5)

    def _own(self) -> None:
        """The package runs the daemon as its own user (nagios): let it read and write here."""
        if os.geteuid() == 0:
            with contextlib.suppress(KeyError):
                import pwd

                user = pwd.getpwnam("nagios")
                for path in [self.folder, *self.folder.rglob("*")]:
                    os.chown(path, user.pw_uid, user.pw_gid)

    def auth(self) -> str:
        return base64.b64encode(f"bench:{self.password}".encode()).decode()

    def _ready(self) -> bool:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        request = urllib.request.Request(
            f"https://127.0.0.1:{self.port}/v1/objects/services?filter=host.name==%22bench99%22",
            headers={"Authorization": f"Basic {self.auth()}", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=3, context=context) as response:
                return len(json.load(response)["results"]) == len(SERVICES)
        except (OSError, ValueError, KeyError):
            return False

    def pids(self) -> list[int]:
        assert self.process is not None
        return tree(self.process.pid)

    def load(self, concurrency: int, duration: int) -> dict:
        return wrk(f"https://127.0.0.1:{self.port}/v1/actions/process-check-result",
                   ICINGA_LUA, concurrency, duration, {"BENCH_AUTH": self.auth()})

    def check(self, result: dict) -> None:
        """Icinga answers 200 before anything is on disk: nothing to count."""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


class OverC:
    """``twistd -n overc server`` (tests/realserver.py), loaded as bench/ingest.py does."""

    per_request = 3

    def __init__(self, label: str, folder: Path, database: str | None,
                 config_text: str | None) -> None:
        self.label = label
        self.database = database
        self.uses_mariadb = database is not None
        self.server = RealServer(folder, database=database, config_text=config_text)

    def start(self) -> None:
        self.server.start()
        ingest.warm_up(self.server.url, HOSTS)

    def pids(self) -> list[int]:
        assert self.server.process is not None
        return tree(self.server.process.pid)

    def load(self, concurrency: int, duration: int) -> dict:
        self.before = ingest.count_states(self.server)
        return ingest.run_wrk(self.server.port, concurrency, duration, HOSTS)

    def check(self, result: dict) -> None:
        stored = ingest.count_states(self.server) - self.before
        acked = (result["requests"] - result["errors"]) * 3
        if stored < acked:
            raise SystemExit(f"{self.label}: {acked} states acknowledged, {stored} stored")

    def stop(self) -> None:
        self.server.stop()
        if self.database:
            ingest._drop(self.database)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 4 s")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--no-mysql", action="store_true")
    parser.add_argument("--no-icinga", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds = 4, 2
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    folder = Path(tempfile.mkdtemp(prefix="overc-peers-"))
    os.chmod(folder, 0o755)
    base = os.environ.get("OVERC_TEST_MYSQL", "mysql://root@127.0.0.1:3306/overc_test")
    targets: list = []
    if not args.no_icinga:
        targets.append(Icinga(folder / "icinga"))
    targets.append(OverC("OverC, SQLite", folder / "sqlite", None, None))
    if not args.no_mysql:
        targets.append(OverC("OverC, MariaDB, one process", folder / "mariadb",
                             f"{base}_peers_{uuid.uuid4().hex[:8]}", None))
        targets.append(OverC("OverC, MariaDB, processes = 2", folder / "mariadb2",
                             f"{base}_peers_{uuid.uuid4().hex[:8]}",
                             "[overc]\nprocesses = 2\n"))
    results: dict[str, list[dict]] = {t.label: [] for t in targets}
    started: list = []
    try:
        for target in targets:
            started.append(target)
            target.start()
            target.load(args.concurrency, 2)  # warm-up: TLS, key caches, buffer pool
        for round_number in range(args.rounds):
            for target in targets:
                pids, database = target.pids(), ingest.mariadb_pids()
                before = (ingest.cpu_seconds(pids), ingest.cpu_seconds(database))
                result = target.load(args.concurrency, args.duration)
                after = (ingest.cpu_seconds(pids), ingest.cpu_seconds(database))
                target.check(result)
                checks = max(result["requests"] * target.per_request, 1)
                result["cpu_ms"] = (after[0] - before[0]) * 1000 / checks
                result["db_cpu_ms"] = (after[1] - before[1]) * 1000 / checks
                result["rss_mib"] = rss_mib(target.pids())
                results[target.label].append(result)
                print(f"round {round_number + 1}: {target.label}: {result['rps']:.0f} req/s,"
                      f" p99 {result['p99_ms']:.1f} ms, {result['errors']} errors",
                      file=sys.stderr)
    finally:
        for target in reversed(started):
            with contextlib.suppress(Exception):
                target.stop()
        shutil.rmtree(folder, ignore_errors=True)

    print(f"\nwrk, c={args.concurrency}, {args.duration} s x {args.rounds} rounds interleaved;"
          f" medians over the rounds (requests/s of each round in brackets)\n")
    print("| server | requests/s | check results/s | CPU ms per result (server + mariadbd) |"
          " p50 ms | p99 ms | errors | RSS MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for target in targets:
        rows = results[target.label]
        med = {key: statistics.median(r[key] for r in rows)
               for key in ("rps", "cpu_ms", "db_cpu_ms", "p50_ms", "p99_ms", "rss_mib")}
        each = ", ".join(f"{r['rps']:.0f}" for r in rows)
        cpu = f"{med['cpu_ms']:.3f}"
        if target.uses_mariadb:  # mariadbd is shared: counted only where it does the work
            cpu += f" + {med['db_cpu_ms']:.3f}"
        print(f"| {target.label} | {med['rps']:,.0f} ({each}) |"
              f" {med['rps'] * target.per_request:,.0f} |"
              f" {cpu} | {med['p50_ms']:.1f} |"
              f" {med['p99_ms']:.1f} | {sum(r['errors'] for r in rows)} |"
              f" {med['rss_mib']:.0f} |")


if __name__ == "__main__":
    socket.setdefaulttimeout(30)
    main()
