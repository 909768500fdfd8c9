"""Real ``twistd overc server`` processes: two on one MariaDB with one SIGKILLed in the middle
of deliveries (every alert notified, each stale transition once, nothing lost or stuck), and one
server stopped longer than the periods (no offline alert during the first fresh period)."""
from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from helpers import wait_for
from realserver import RealServer, running_server

pytestmark = pytest.mark.slow

SLOW_RECORD = """#!/bin/sh
# A slow channel, so that a process can be killed while it delivers. One file per attempt.
mkdir -p deliveries
cat > "deliveries/.$OVERC_NOTIFICATION_ID-$$"
sleep 2
mv "deliveries/.$OVERC_NOTIFICATION_ID-$$" "deliveries/$OVERC_NOTIFICATION_ID-$$.json"
"""

CONFIG = """[overc]
watchdog-interval = 0.5
grace = 1
[alert:log]
command = ./alert.d/record.sh
format = json
timeout = 5
"""


def mysql_query(url: str, sql: str) -> list[tuple]:
    import pymysql

    parts = urlsplit(url)
    connection = pymysql.connect(host=parts.hostname, port=parts.port or 3306,
                                 user=parts.username or "root", password=parts.password or "",
                                 database=parts.path.lstrip("/"), autocommit=True)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())
    finally:
        connection.close()


def push(server: RealServer, name: str, services: list[tuple[str, str]], period: int) -> None:
    status, _, body = server.post("api/set/service/status", {
        "server": {"name": name, "key": "k-" + name}, "period": period,
        "services": [{"name": s, "state": st, "info": f"{s} {st}"} for s, st in services],
    })
    assert status == 200, body


def test_two_processes_one_killed_mid_delivery_every_alert_once(tmp_path: Path, mysql_url):
    (tmp_path / "alert.d").mkdir()
    (tmp_path / "alert.d" / "record.sh").write_text(SLOW_RECORD)
    (tmp_path / "alert.d" / "record.sh").chmod(0o755)
    q = lambda sql: mysql_query(mysql_url, sql)  # noqa: E731
    with running_server(tmp_path, database=mysql_url, config_text=CONFIG, name="a") as a, \
            running_server(tmp_path, database=mysql_url, config_text=CONFIG, name="b") as b:
        hosts = {"h0": a, "h1": b, "h2": a, "h3": b}
        for name, server in hosts.items():
            push(server, name, [(f"s{i}", "OK") for i in range(5)], period=2)
            push(server, name, [("db", "FAIL")], period=3600)  # a state alert at once
        # Kill whichever process holds a delivery lease (its channel runs 2 s per notification).
        by_pid = {str(a.process.pid): a, str(b.process.pid): b}
        # An attempt started less than a second ago still has over a second of `sleep 2` left.
        owner = wait_for(lambda: [o for (o,) in q(
            "SELECT owner FROM notification_attempts WHERE finished IS NULL"
            f" AND started > {time.time() - 1.0}")],
            20, "a process to be delivering")[0]
        victim = by_pid[owner.split(":")[1]]
        survivor = b if victim is a else a
        victim.kill()
        # Reports keep coming, to the survivor: h0 and h2 are back (online alerts).
        wait_for(lambda: q("SELECT COUNT(*) FROM services WHERE stale = 1")[0][0] == 20,
                 20, "all 20 services with a 2 s period to go stale")
        for name in ("h0", "h2"):
            push(survivor, name, [(f"s{i}", "OK") for i in range(5)], period=3600)
        wait_for(lambda: q(
            "SELECT (SELECT COUNT(*) FROM alerts WHERE dispatched = 0) +"
            " (SELECT COUNT(*) FROM notifications WHERE status IN ('pending', 'sending'))"
        )[0][0] == 0, 45, "every alert to be delivered (the survivor takes over the leases)")

        kinds = Counter(kind for (kind,) in q("SELECT kind FROM alerts"))
        assert kinds == {"offline": 20, "state": 4, "online": 10}, kinds
        per_service = Counter(q("SELECT service_id FROM alerts WHERE kind = 'offline'"))
        assert set(per_service.values()) == {1}, "each stale transition once"
        notifications = q("SELECT id, status FROM notifications")
        assert {status for _, status in notifications} == {"sent"}
        links = q("SELECT notification_id, alert_id FROM notification_alerts")
        assert sorted(Counter(alert for _, alert in links).values()) == [1] * 34, \
            "every alert in exactly one notification (online: the channel got the offline)"

        delivered: dict[int, int] = Counter()
        seen_alerts = Counter()
        cut_short = set()
        for path in (tmp_path / "deliveries").glob("*.json"):
            try:
                doc = json.loads(path.read_text())
            except ValueError:
                # The victim was SIGKILLed while writing this delivery's stdin: its orphaned
                # command got a truncated document. Only a taken-over lease may explain that.
                cut_short.add(int(path.name.split("-")[0]))
                continue
            delivered[doc["notification"]] += 1
            seen_alerts.update(x["id"] for x in doc["alerts"])
        assert set(delivered) == {n for n, _ in notifications}, "nothing lost"
        # A delivery can only repeat when the process doing it died mid-way (the orphaned
        # command may still finish): the repeat carries the same id, and the record shows it.
        repeated = {n for n, count in delivered.items() if count > 1}
        expired = {n for (n,) in q("SELECT notification_id FROM notification_attempts"
                                    " WHERE error LIKE 'lease expired%'")}
        assert repeated <= expired
        assert cut_short <= expired
        assert expired, "the victim was killed holding a lease: the survivor took it over"
        takers = {o.split(":")[1] for (o,) in q(
            "SELECT owner FROM notification_attempts WHERE ok = 1 AND notification_id IN"
            " (SELECT notification_id FROM notification_attempts"
            "  WHERE error LIKE 'lease expired%')")}
        assert takers == {str(survivor.process.pid)}


def sqlite_rows(path: Path, sql: str) -> list[tuple]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def sqlite_count(path: Path, sql: str) -> int:
    return sqlite_rows(path, sql)[0][0]


AWAY = 5.0  # how long without a watchdog tick counts as OverC away: max(5 s, 3 intervals)


def test_server_down_longer_than_the_periods_gives_the_fresh_window(tmp_path: Path):
    server = RealServer(tmp_path, config_text="[overc]\nwatchdog-interval = 0.5\ngrace = 1\n")
    server.start()
    try:
        push(server, "h0", [("app", "OK"), ("web", "OK")], period=3)
        server.stop()
        # While nobody listens, the deadlines (report + 3 s + 1 s) pass and so does the time
        # after which OverC counts as having been away (5 s without a watchdog tick).
        [(last_tick, deadline)] = sqlite_rows(server.db_path, (
            "SELECT (SELECT last_tick FROM coordination WHERE job = 'watchdog'),"
            " (SELECT MAX(deadline) FROM services)"))
        wait_for(lambda: time.time() > max(deadline, last_tick + AWAY), 15,
                 "the deadlines and the away threshold to pass")
        started = time.time()
        server.start()
        wait_for(lambda: "get a fresh period" in server.log_text(), 10, "the fresh window")
        # Agents may be 60 s into their backoff (+ Retry-After 5 s): no deadline ends before
        # they can be back (65 s + 1 s grace from the restart, not 3 s + 1 s).
        deadlines = [d for (d,) in sqlite_rows(server.db_path, "SELECT deadline FROM services")]
        assert min(deadlines) >= started + 66.0
        assert sqlite_count(server.db_path,
                            "SELECT COUNT(*) FROM alerts WHERE kind = 'offline'") == 0
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
