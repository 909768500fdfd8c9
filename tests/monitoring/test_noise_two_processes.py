"""SPEC 10 with two real server processes on one MariaDB, each with its own watchdog and
dispatcher, and real command channels recording every notification: each noise rule notifies
exactly once, whichever process got the reports, ran the watchdog tick or dispatched.

- 3 attempts: the soft problems counted across both processes, one `state` FAIL per service
  at the third report in a row, one recovery;
- a flapping service: one `flapping`, one `flapping-end` (with the truth), nothing between;
- hosts of 20 services that stop pushing: one `server-offline` each, one `server-online`;
- an escalation chain of two channels: the second gets only what stayed unacknowledged, and
  what an expired acknowledgement left unhandled, once, then its recovery once.

Every notified alert is in exactly one notification of a channel (counted by alert id).
"""
from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest

from helpers import wait_for
from recording_channel import RECORD, settled
from realserver import RealServer

pytestmark = pytest.mark.slow

JSON = {"Content-Type": "application/json"}


def channel(name: str, extra: str = "min-severity = OK\n") -> str:
    return f"[alert:{name}]\ncommand = ./alert.d/record.sh {name}\nformat = json\n{extra}"


@contextlib.contextmanager
def two_processes(tmp_path: Path, mysql_url: str, config: str) -> Iterator[tuple[RealServer,
                                                                                 RealServer]]:
    (tmp_path / "alert.d").mkdir()
    (tmp_path / "alert.d" / "record.sh").write_text(RECORD)
    (tmp_path / "alert.d" / "record.sh").chmod(0o755)
    a = RealServer(tmp_path, mysql_url, config, name="a").start()
    try:
        b = RealServer(tmp_path, mysql_url, config, name="b").start()
        try:
            yield a, b
        finally:
            b.stop()
    finally:
        a.stop()


def push(server: RealServer, host: str, services: list[dict], period: int = 3600) -> None:
    status, _, body = server.post("api/set/service/status", {
        "server": {"name": host, "key": "k-" + host}, "period": period, "services": services})
    assert status == 200, body


def in_parallel(*calls) -> None:
    """Run the calls at the same moment, one thread each (both processes busy at once)."""
    errors: list[BaseException] = []

    def run(call) -> None:
        try:
            call()
        except BaseException as error:  # noqa: BLE001 - re-raised below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if errors:
        raise errors[0]


def notified(tmp_path: Path, name: str) -> list[dict]:
    """Every alert the channel got, in notification order."""
    files = sorted((tmp_path / "got" / name).glob("*.json"), key=lambda p: int(p.stem))
    return [alert for path in files for alert in json.loads(path.read_text())["alerts"]]



def each_once(tmp_path: Path, name: str) -> list[dict]:
    """The channel's alerts, after checking that none was notified twice (two processes)."""
    got = notified(tmp_path, name)
    twice = {i: n for i, n in Counter(a["id"] for a in got).items() if n > 1}
    assert not twice, f"{name}: alerts notified more than once: {twice}"
    return got


def marker(tmp_path: Path, server: RealServer, name: str) -> None:
    """A last alert through ``server``: once it is notified, everything dispatched before it
    has been too (and a late duplicate by the other process would have had its chance)."""
    push(server, "marker", [{"name": "m", "state": "OK"}])
    push(server, "marker", [{"name": "m", "state": "FAIL", "attempts": 1}])
    wait_for(lambda: any(a["server"] == "marker" for a in notified(tmp_path, name)), 30,
             "the marker alert")
    wait_for(lambda: settled(server), 30, "every alert to be dispatched and delivered")


def a_full_tick_after_now(server: RealServer) -> None:
    """Wait until a watchdog (either process) has run a whole tick that began after this call:
    what was due by now is claimed by then, so nothing more may come from it. A full tick
    writes ``last_tick``; idle ticks only read."""
    since = time.time()
    wait_for(lambda: server.query("SELECT last_tick FROM coordination WHERE job = 'watchdog'"
                                  )[0][0] > since, 30, "a full watchdog tick after now")


def test_three_attempts_across_two_processes_one_hard_problem_each(tmp_path, mysql_url):
    config = "[overc]\nwatchdog-interval = 0.5\n[policy:db]\nattempts = 3\n" + channel("log")
    names = [f"db{i}" for i in range(8)]
    with two_processes(tmp_path, mysql_url, config) as (a, b):
        for name in names:
            push(a, "h1", [{"name": name, "state": "OK"}])

        def report(server: RealServer, part: list[str], state: str):
            return lambda: [push(server, "h1", [{"name": n, "state": state, "info": state}])
                            for n in part]

        half = len(names) // 2
        for round_ in range(3):  # each service's three reports alternate between a and b
            first, second = (a, b) if round_ % 2 == 0 else (b, a)
            in_parallel(report(first, names[:half], "FAIL"),
                        report(second, names[half:], "FAIL"))
            if round_ == 1:
                assert a.query("SELECT DISTINCT soft_count FROM services WHERE name LIKE 'db%'"
                               ) == [(2,)]
                assert a.query("SELECT COUNT(*) FROM alerts") == [(0,)]
        wait_for(lambda: len(notified(tmp_path, "log")) >= len(names), 30, "the hard FAILs")
        in_parallel(report(b, names[:half], "OK"), report(a, names[half:], "OK"))
        marker(tmp_path, b, "log")
        got = [(x["service"], x["kind"], x["severity"]) for x in each_once(tmp_path, "log")
               if x["server"] == "h1"]
        assert sorted(got) == sorted([(n, "state", s) for n in names for s in ("FAIL", "OK")])
        assert a.query("SELECT COUNT(*) FROM alerts WHERE service_id IN"
                       " (SELECT id FROM services WHERE name LIKE 'db%')") == [(16,)]


def test_flapping_across_two_processes_one_flapping_and_one_end(tmp_path, mysql_url):
    config = "[overc]\nwatchdog-interval = 0.5\n" + channel("log")
    names = ["app", "web", "queue", "cron"]
    with two_processes(tmp_path, mysql_url, config) as (a, b):
        states = ["OK", "FAIL"] * 5 + ["FAIL"] * 20
        for n, state in enumerate(states):  # reports alternate between the processes
            push((a, b)[n % 2], "web1", [
                {"name": name, "state": state, "info": f"try {n}", "flapping": "30/25"}
                for name in names])
        marker(tmp_path, a, "log")
        got = each_once(tmp_path, "log")
        for name in names:
            kinds = [x["kind"] for x in got if x["service"] == name]
            start = kinds.index("flapping")
            assert kinds.count("flapping") == 1 and kinds[start + 1:] == ["flapping-end"], kinds
            assert set(kinds[:start]) == {"state"}
            end = [x for x in got if x["service"] == name][-1]
            assert end["severity"] == "FAIL" and end["message"].startswith(
                "Stopped flapping; now FAIL: try ")
        # The held state changes are recorded, once each, and never notified.
        held = a.query("SELECT id FROM alerts WHERE held = 'flapping'")
        assert held and not {i for (i,) in held} & {x["id"] for x in got}


def test_hosts_that_stop_pushing_one_offline_and_one_online_each(tmp_path, mysql_url):
    # min-severity WARN (the default): the services' `online` alerts are recorded, not sent;
    # `server-online` goes to the channel told of the outage.
    config = "[overc]\nwatchdog-interval = 0.5\ngrace = 1\n" + channel("log", "")
    hosts = ["web1", "web2", "web3"]
    names = [f"s{n:02}" for n in range(20)]
    with two_processes(tmp_path, mysql_url, config) as (a, b):
        # The first watch of a new database gives what is overdue a fresh window: push after it.
        wait_for(lambda: a.query("SELECT last_tick FROM coordination WHERE job = 'watchdog'"
                                 )[0][0] > 0, 30, "the watchdogs' first tick")
        in_parallel(*[(lambda s=server, h=host: push(s, h, [
            {"name": n, "state": "OK"} for n in names], period=2))
            for server, host in zip((a, b, a), hosts)])
        wait_for(lambda: a.query("SELECT COUNT(*) FROM alerts WHERE kind = 'server-offline'"
                                 ) == [(3,)], 30, "the three hosts to be offline")
        wait_for(lambda: a.query("SELECT COUNT(*) FROM alerts WHERE kind = 'offline'")
                 == [(60,)], 30, "their services to go stale")
        a_full_tick_after_now(a)  # nothing more may come
        wait_for(lambda: settled(a), 30, "every alert to be dispatched and delivered")
        got = each_once(tmp_path, "log")
        assert sorted((x["server"], x["kind"]) for x in got) == [
            (h, "server-offline") for h in hosts]
        assert all(x["message"].endswith("; 20 services affected") for x in got)
        assert a.query("SELECT held, COUNT(*) FROM alerts WHERE kind = 'offline' GROUP BY held"
                       ) == [("server offline", 60)]
        # Back, each through the other process, all its services with it.
        in_parallel(*[(lambda s=server, h=host: push(s, h, [
            {"name": n, "state": "OK"} for n in names]))
            for server, host in zip((b, a, b), hosts)])
        wait_for(lambda: a.query("SELECT COUNT(*) FROM alerts WHERE kind = 'server-online'"
                                 ) == [(3,)], 30, "the three hosts to be back")
        a_full_tick_after_now(a)
        marker(tmp_path, a, "log")
        got = [x for x in each_once(tmp_path, "log") if x["server"] != "marker"]
        assert sorted((x["server"], x["kind"]) for x in got) == sorted(
            [(h, k) for h in hosts for k in ("server-offline", "server-online")])
        assert a.query("SELECT COUNT(*) FROM alerts WHERE kind IN ('server-offline',"
                       " 'server-online')") == [(6,)]


def test_escalation_chain_across_two_processes_the_pager_gets_the_unhandled_once(tmp_path,
                                                                                 mysql_url):
    # The pager's min-severity is WARN: it gets a recovery only of a problem it was told of.
    config = ("[overc]\nwatchdog-interval = 0.5\n" + channel("chat")
              + channel("pager", "after = 2s\n"))
    unhandled, acked, expiring = ["u0", "u1"], ["k0", "k1"], ["e0", "e1"]
    names = unhandled + acked + expiring
    with two_processes(tmp_path, mysql_url, config) as (a, b):
        push(a, "web1", [{"name": n, "state": "OK"} for n in names])
        push(b, "web1", [{"name": n, "state": "FAIL", "info": "down"} for n in names])
        ids = dict(a.query("SELECT name, id FROM services"))
        expires = time.time() + 5  # after the pager's `after`: parked, then resumed
        for n, name in enumerate(acked + expiring):
            body = {"comment": "on it"} | ({"expires": expires} if name in expiring else {})
            status, _, answer = (a, b)[n % 2].post(f"api/services/{ids[name]}/ack", body, JSON)
            assert status == 200, answer
        wait_for(lambda: len(notified(tmp_path, "pager")) >= 2, 30, "the unacknowledged ones")
        if time.time() < expires - 0.5:  # (a machine slower than that sends all four at once)
            assert sorted(x["service"] for x in notified(tmp_path, "pager")) == unhandled
        wait_for(lambda: len(notified(tmp_path, "pager")) >= 4, 30, "the expired acks' ones")
        assert sorted(x["service"] for x in notified(tmp_path, "pager")) == sorted(
            unhandled + expiring)
        assert all(x["severity"] == "FAIL" for x in notified(tmp_path, "pager"))
        push(a, "web1", [{"name": n, "state": "OK", "info": "up"} for n in names])
        wait_for(lambda: len(notified(tmp_path, "chat")) >= 12, 30, "the recoveries in chat")
        marker(tmp_path, b, "pager")
        chat = [(x["service"], x["severity"]) for x in each_once(tmp_path, "chat")
                if x["server"] == "web1"]
        assert sorted(chat) == sorted((n, s) for n in names for s in ("FAIL", "OK"))
        pager = [(x["service"], x["severity"]) for x in each_once(tmp_path, "pager")
                 if x["server"] == "web1"]
        assert sorted(pager) == sorted((n, s) for n in unhandled + expiring
                                       for s in ("FAIL", "OK"))
        assert a.query("SELECT COUNT(*) FROM escalations") == [(0,)]
