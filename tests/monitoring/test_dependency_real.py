"""SPEC 10.4 end to end: real server processes and a real command channel recording each
notification. The database and the app fail together: only the database is notified, the
app's alert is recorded with ``held: depends on mysql``; when the database is back the app's
problem is notified once. Two processes on one MariaDB catch up on each child once."""
from __future__ import annotations

from helpers import wait_for
from realserver import RealServer, running_server
from test_noise_real import notified, push, settled, setup_channel

CONFIG = """[overc]
watchdog-interval = 0.5
[policy:apps]
services = app*
depends-on = mysql
[alert:log]
command = ./alert.d/record.sh
format = json
min-severity = WARN
"""


def summary(tmp_path) -> list[tuple[str, str, str]]:
    return [(a["service"], a["kind"], a["severity"]) for a in notified(tmp_path)]


def test_only_the_parent_is_notified_and_the_child_once_it_is_back(tmp_path, database_url):
    setup_channel(tmp_path)
    with running_server(tmp_path, database=database_url, config_text=CONFIG) as server:
        push(server, "db1", [{"name": "mysql", "state": "OK"}, {"name": "app", "state": "OK"},
                             {"name": "cron", "state": "OK", "depends_on": "mysql"}])
        push(server, "db1", [{"name": "mysql", "state": "FAIL", "info": "refused"},
                             {"name": "app", "state": "FAIL", "info": "no db"},
                             {"name": "cron", "state": "FAIL", "info": "no db",
                              "depends_on": "mysql"}])  # each report says it again
        wait_for(lambda: notified(tmp_path), 30, "the parent's problem to be notified")
        wait_for(lambda: settled(server), 30, "every alert to be dispatched and delivered")
        assert summary(tmp_path) == [("mysql", "state", "FAIL")]
        status, _, body = server.get("api/alerts?limit=100")
        assert status == 200
        held = sorted((a["service_name"], a["held"]) for a in body["items"] if a["held"])
        assert held == [("app", "depends on mysql"), ("cron", "depends on mysql")]
        # cron recovers while mysql is still down: nothing to say about it later.
        push(server, "db1", [{"name": "cron", "state": "OK", "depends_on": "mysql"}])
        push(server, "db1", [{"name": "mysql", "state": "OK", "info": "up"}])
        wait_for(lambda: len(notified(tmp_path)) >= 3, 30, "the recovery and the catch-up")
        wait_for(lambda: settled(server), 30, "every alert to be dispatched and delivered")
        got = notified(tmp_path)
        assert summary(tmp_path) == [("mysql", "state", "FAIL"), ("mysql", "state", "OK"),
                                     ("app", "state", "FAIL")]
        assert got[-1]["message"] == "Still FAIL now that mysql is back: no db"
        # Nothing more: the app's unchanged FAIL is not notified again.
        push(server, "db1", [{"name": "app", "state": "FAIL", "info": "no db"},
                             {"name": "mysql", "state": "WARN", "info": "slow"}])
        wait_for(lambda: len(notified(tmp_path)) >= 4, 30, "the marker (mysql WARN)")
        wait_for(lambda: settled(server), 30, "every alert to be dispatched and delivered")
        assert summary(tmp_path)[3:] == [("mysql", "state", "WARN")]


def test_two_processes_on_one_mariadb_catch_up_each_child_once(tmp_path, mysql_url):
    setup_channel(tmp_path)
    a = RealServer(tmp_path, mysql_url, CONFIG, name="a").start()
    try:
        b = RealServer(tmp_path, mysql_url, CONFIG, name="b").start()
        try:
            apps = [f"app{i}" for i in range(12)]
            push(a, "db1", [{"name": "mysql", "state": "OK"}]
                 + [{"name": n, "state": "OK"} for n in apps])
            push(b, "db1", [{"name": "mysql", "state": "FAIL"}])
            for n in apps:  # the children fail one push at a time, on both processes
                push(a if n[-1] in "02468" else b, "db1", [{"name": n, "state": "FAIL"}])
            wait_for(lambda: settled(a), 30, "every alert to be dispatched and delivered")
            assert summary(tmp_path) == [("mysql", "state", "FAIL")]
            push(a, "db1", [{"name": "mysql", "state": "OK"}])
            wait_for(lambda: len(notified(tmp_path)) >= 2 + len(apps), 30, "the catch-up")
            wait_for(lambda: settled(a), 30, "every alert to be dispatched and delivered")
            push(b, "db1", [{"name": "mysql", "state": "WARN"}])  # a marker, after the rest
            wait_for(lambda: ("mysql", "state", "WARN") in summary(tmp_path), 30, "the marker")
            wait_for(lambda: settled(a), 30, "every alert to be dispatched and delivered")
            got = summary(tmp_path)
            assert sorted(got) == sorted([("mysql", "state", "FAIL"), ("mysql", "state", "OK"),
                                          ("mysql", "state", "WARN")]
                                         + [(n, "state", "FAIL") for n in apps])
        finally:
            b.stop()
    finally:
        a.stop()
