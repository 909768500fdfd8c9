"""No false alarm after OverC's own outage, with a real ``overcli monitor`` and real servers.

Five healthy services (periods 2 to 5 s) report through a real agent. OverC goes away (the
server stopped, or its MariaDB cut behind a real TCP proxy); the agent spools and backs off as
designed (1 s doubling, or ``Retry-After: 5``), so it comes back well after one period from the
recovery. The watchdog must give it the fresh window (``max(period, 60 s + 5 s) + grace``)
rather than declare the five services offline and online again.

The agent's backoff cap is the production one (60 s); the gaps here are shorter (20 s and
30 s) but already put the agent 8 to 16 s behind the recovery, far beyond one period + grace,
which is what raised the false alarms.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from helpers import wait_for
from realserver import ROOT, RealServer

pytestmark = pytest.mark.slow

PERIODS = {"a": 2, "b": 3, "c": 4, "d": 5, "e": 5}


class Monitor:
    """A real ``overcli monitor`` process with five healthy services."""

    def __init__(self, folder: Path, server_url: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "ok.sh").write_text("#!/bin/sh\necho fine\n")
        (folder / "ok.sh").chmod(0o755)
        config = folder / "monitor.ini"
        config.write_text(
            f"[overc]\nserver = {server_url}\nmy-name = web1\nmy-key = s3cret\n"
            "spool = monitor.spool\nloglevel = debug\n\n"
            + "".join(f"[service:{name}]\nperiod = {period}\ncommand = ./ok.sh\n\n"
                      for name, period in PERIODS.items()))
        env = {k: v for k, v in os.environ.items() if not k.startswith("OVERC_")}
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        self.log_path = folder / "agent.log"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from overc.agent.cli import main; main()", "monitor",
                 str(config)], env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def reported_since(server: RealServer, since: float) -> set[str]:
    """Services with a report the server received after ``since`` (fresh, not from the spool:
    spooled reports keep their old time)."""
    return {name for (name,) in server.query(
        "SELECT DISTINCT s.name FROM states st JOIN services s ON s.id = st.service_id"
        " WHERE st.time > ?", since)}


def alerts(server: RealServer) -> list[tuple]:
    return server.query("SELECT kind, message FROM alerts WHERE kind IN ('offline', 'online')")


def test_server_stopped_longer_than_the_agent_backoff_raises_no_false_alarm(tmp_path):
    server = RealServer(tmp_path / "srv").start()
    monitor = Monitor(tmp_path / "agent", server.url)
    try:
        wait_for(lambda: reported_since(server, 0) == set(PERIODS), 30, "all five services")
        server.stop()
        stopped = time.time()
        wait_for(lambda: "retrying in 8 s" in monitor.log(), 30, "the agent to back off 8 s")
        wait_for(lambda: time.time() > stopped + 20, 30, "20 s of outage")
        server.start()
        back = time.time()
        # The agent is up to 16 s into its backoff: wait for it to flush and report afresh
        # (the watchdog ticks every second meanwhile; one period + grace is long gone).
        wait_for(lambda: reported_since(server, back + 3) == set(PERIODS), 40,
                 "fresh reports of all five services after the restart")
        # (the agent's own log is buffered: the database is the sync point, not the log)
        assert alerts(server) == []
    finally:
        monitor.stop()
        server.stop()


@pytest.mark.parametrize("seconds", [30, 3])
def test_database_cut_raises_no_false_alarm(tmp_path, mysql_url, seconds):
    """30 s: a gap the watchdog sees by itself. 3 s: under its 5 s away threshold, but the
    agent got a 503 and waits Retry-After (5 s) while the 2 s service is due: the pushes this
    process turned away make it a gap too."""
    from test_database_outage import CuttableProxy

    parts = urlsplit(mysql_url)
    proxy = CuttableProxy((parts.hostname or "127.0.0.1", parts.port or 3306)).start()
    proxied = urlunsplit(parts._replace(
        netloc=f"{parts.username or 'root'}@127.0.0.1:{proxy.port}"))
    server = RealServer(tmp_path / "srv", database=proxied).start()
    monitor = Monitor(tmp_path / "agent", server.url)
    try:
        wait_for(lambda: reported_since(server, 0) == set(PERIODS), 30, "all five services")
        proxy.cut()
        cut = time.time()
        # (the server's log, not the agent's: the agent's is buffered)
        wait_for(lambda: "Database unavailable" in server.log_text(), 20,
                 "a push answered 503")
        wait_for(lambda: time.time() > cut + seconds, 40, f"{seconds} s of database outage")
        proxy.restore()
        back = time.time()
        wait_for(lambda: server.get("healthz")[0] == 200, 20, "the database back")
        # Retry-After 5 then doubling: the agent comes back ~10 s after the database.
        wait_for(lambda: reported_since(server, back + 3) == set(PERIODS), 45,
                 "fresh reports of all five services after the outage")
        assert alerts(server) == []
        log = server.log_text()
        # The gap was seen (or, on a slow start, the first watch came after the cut): either
        # way every overdue service got the fresh window.
        assert "Nobody watched for" in log or "First watch of this database" in log, log[-3000:]
        if seconds < 5:  # (unless the first watch itself came after the cut, as above)
            assert ("pushes were turned away" in log
                    or "First watch of this database" in log), log[-3000:]
    finally:
        monitor.stop()
        server.stop()
        proxy.cut()
