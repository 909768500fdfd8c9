"""Real ``twistd overc server`` processes: two on one MariaDB with one SIGKILLed in the middle
of deliveries (every alert notified, each stale transition once, nothing lost or stuck), and one
server stopped longer than the periods (no offline alert during the first fresh period)."""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

import slow_channel
from helpers import wait_for
from realserver import RealServer, running_server

pytestmark = pytest.mark.slow


def push(server: RealServer, name: str, services: list[tuple[str, str]], period: int) -> None:
    status, _, body = server.post("api/set/service/status", {
        "server": {"name": name, "key": "k-" + name}, "period": period,
        "services": [{"name": s, "state": st, "info": f"{s} {st}"} for s, st in services],
    })
    assert status == 200, body


def test_two_processes_one_killed_mid_delivery_every_alert_once(tmp_path: Path, mysql_url):
    slow_channel.install(tmp_path)
    with running_server(tmp_path, database=mysql_url, config_text=slow_channel.CONFIG,
                        name="a") as a, \
            running_server(tmp_path, database=mysql_url, config_text=slow_channel.CONFIG,
                           name="b") as b:
        q = a.query  # the shared database, readable after a is killed
        hosts = {"h0": a, "h1": b, "h2": a, "h3": b}
        for name, server in hosts.items():
            push(server, name, [(f"s{i}", "OK") for i in range(5)], period=2)
            push(server, name, [("db", "FAIL")], period=3600)  # a state alert at once
        # Kill whichever process holds a delivery lease (its channel runs 2 s per notification).
        victim, survivor = slow_channel.kill_the_deliverer(q, a, b)
        # Reports keep coming, to the survivor: h0 and h2 are back (online alerts).
        wait_for(lambda: q("SELECT COUNT(*) FROM services WHERE stale = 1")[0][0] == 20,
                 20, "all 20 services with a 2 s period to go stale")
        for name in ("h0", "h2"):
            push(survivor, name, [(f"s{i}", "OK") for i in range(5)], period=3600)
        # The watchdog raises server-online from those pushes at its next tick: wait for both
        # before "nothing left to deliver" can mean anything (a fresh-clone run checked first).
        wait_for(lambda: q("SELECT COUNT(*) FROM alerts WHERE kind = 'server-online'")[0][0]
                 == 2, 20, "both hosts back online")
        slow_channel.wait_all_delivered(q)

        kinds = Counter(kind for (kind,) in q("SELECT kind FROM alerts"))
        # SPEC 10.3: the four hosts stopped pushing: one server-offline each (their services'
        # offline alerts held), one server-online for each host back.
        assert kinds == {"offline": 20, "server-offline": 4, "server-online": 2, "state": 4,
                         "online": 10}, kinds
        assert q("SELECT DISTINCT held FROM alerts WHERE kind = 'offline'") == [
            ("server offline",)]
        per_service = Counter(q("SELECT service_id FROM alerts WHERE kind = 'offline'"))
        assert set(per_service.values()) == {1}, "each stale transition once"
        per_server = Counter(q("SELECT server_id FROM alerts WHERE kind = 'server-offline'"))
        assert set(per_server.values()) == {1}, "each server's outage once"
        links = q("SELECT notification_id, alert_id FROM notification_alerts")
        assert sorted(Counter(alert for _, alert in links).values()) == [1] * 10, \
            "every notified alert in exactly one notification (state, server-offline, and" \
            " server-online: the channel got the server-offline; online: it did not get the" \
            " held offline)"
        slow_channel.check_deliveries(q, tmp_path)
        takers = {o.split(":")[1] for (o,) in q(
            "SELECT owner FROM notification_attempts WHERE ok = 1 AND notification_id IN"
            " (SELECT notification_id FROM notification_attempts"
            "  WHERE error LIKE 'lease expired%')")}
        assert takers == {str(survivor.process.pid)}


AWAY = 5.0  # how long without a watchdog tick counts as OverC away: max(5 s, 3 intervals)


def test_server_down_longer_than_the_periods_gives_the_fresh_window(tmp_path: Path):
    server = RealServer(tmp_path, config_text="[overc]\nwatchdog-interval = 0.5\ngrace = 1\n")
    server.start()
    try:
        push(server, "h0", [("app", "OK"), ("web", "OK")], period=3)
        server.stop()
        # While nobody listens, the deadlines (report + 3 s + 1 s) pass and so does the time
        # after which OverC counts as having been away (5 s without a watchdog tick).
        [(last_tick, deadline)] = server.query((
            "SELECT (SELECT last_tick FROM coordination WHERE job = 'watchdog'),"
            " (SELECT MAX(deadline) FROM services)"))
        wait_for(lambda: time.time() > max(deadline, last_tick + AWAY), 15,
                 "the deadlines and the away threshold to pass")
        started = time.time()
        server.start()
        wait_for(lambda: "get a fresh period" in server.log_text(), 10, "the fresh window")
        # Agents may be 60 s into their backoff (+ Retry-After 5 s): no deadline ends before
        # they can be back (65 s + 1 s grace from the restart, not 3 s + 1 s).
        deadlines = [d for (d,) in server.query("SELECT deadline FROM services")]
        assert min(deadlines) >= started + 66.0
        assert server.query("SELECT COUNT(*) FROM alerts WHERE kind = 'offline'")[0][0] == 0
    finally:
        server.stop()


def test_a_bad_channel_stops_the_start_with_one_line(tmp_path: Path):
    import subprocess
    import sys

    from realserver import ROOT

    (tmp_path / "server.ini").write_text("[alert:pager]\ncommand = true\nmin-severity = LOUD\n")
    done = subprocess.run(
        [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n",
         "--pidfile=", "overc", "server", "--config", str(tmp_path / "server.ini"),
         "--database", f"sqlite:///{tmp_path / 'o.db'}"],
        cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode != 0
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert lines == [f"overc: config error: {tmp_path / 'server.ini'} [alert:pager] min-severity:"
                     " 'LOUD' is not one of OK, WARN, FAIL, UNK"]
