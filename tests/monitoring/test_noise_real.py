"""SPEC 10.1 and 10.2 end to end: a real server process, a real command channel recording each
notification, on SQLite and MariaDB. Settings come from a ``[policy:*]`` section and from the
report; only the third problem report in a row notifies; a flapping service gets one
``flapping`` notification, its state changes held, and one ``flapping-end`` with the truth."""
from __future__ import annotations

import json
from pathlib import Path

from helpers import wait_for
from recording_channel import RECORD, settled
from realserver import RealServer, running_server


CONFIG = """[overc]
watchdog-interval = 0.5
[policy:databases]
servers = db*
attempts = 3
[policy:everything]
attempts = 7
flapping = 40/20
[alert:log]
command = ./alert.d/record.sh
format = json
min-severity = OK
"""


def setup_channel(tmp_path: Path) -> None:
    (tmp_path / "alert.d").mkdir()
    (tmp_path / "alert.d" / "record.sh").write_text(RECORD)
    (tmp_path / "alert.d" / "record.sh").chmod(0o755)


def push(server: RealServer, name: str, services: list[dict]) -> None:
    status, _, body = server.post("api/set/service/status", {
        "server": {"name": name, "key": "k-" + name}, "period": 3600, "services": services})
    assert status == 200, body


def notified(tmp_path: Path) -> list[dict]:
    """Every alert the channel got, in notification order."""
    files = sorted((tmp_path / "got").glob("*.json"), key=lambda p: int(p.stem))
    return [alert for path in files for alert in json.loads(path.read_text())["alerts"]]



def service_json(server: RealServer, name: str) -> dict:
    status, _, body = server.get("api/servers")
    assert status == 200
    services = [s for srv in body["items"] for s in srv["services"]]
    return next(s for s in services if s["name"] == name)


def test_three_attempts_only_the_third_problem_report_notifies(tmp_path, database_url):
    setup_channel(tmp_path)
    with running_server(tmp_path, database=database_url, config_text=CONFIG) as server:
        push(server, "db1", [{"name": "mysql", "state": "OK", "info": "up"}])
        for n in (1, 2):
            push(server, "db1", [{"name": "mysql", "state": "FAIL", "info": f"refused {n}"}])
            svc = service_json(server, "mysql")
            assert (svc["state"], svc["soft_state"], svc["soft_count"]) == ("OK", "FAIL", n)
        # Committed before the 200: two problem reports have raised no alert at all.
        assert server.query("SELECT COUNT(*) FROM alerts")[0][0] == 0
        svc = service_json(server, "mysql")
        assert (svc["attempts"], svc["flapping_thresholds"]) == (3, "40/20")
        assert svc["settings_source"] == {"attempts": "policy:databases",
                                          "flapping": "policy:everything",
                                          "depends_on": "default"}
        push(server, "db1", [{"name": "mysql", "state": "FAIL", "info": "refused 3"}])
        wait_for(lambda: notified(tmp_path), 30, "the hard problem to be notified")
        wait_for(lambda: settled(server), 30, "every alert to be delivered")
        assert [(a["kind"], a["severity"], a["info"]) for a in notified(tmp_path)] == [
            ("state", "FAIL", "refused 3")]
        assert service_json(server, "mysql")["soft_state"] is None
        # The report's own field wins over the policy; a bad one is a 400 naming the field.
        push(server, "db1", [{"name": "mysql", "state": "OK", "attempts": 1}])
        assert service_json(server, "mysql")["settings_source"]["attempts"] == "report"
        status, _, body = server.post("api/set/service/status", {
            "server": {"name": "db1", "key": "k-db1"}, "period": 60,
            "services": [{"name": "mysql", "state": "OK", "attempts": 0}]})
        assert status == 400 and body["field"] == "services[0].attempts"


def test_flapping_one_notification_held_changes_and_the_truth_at_the_end(tmp_path,
                                                                          database_url):
    setup_channel(tmp_path)
    with running_server(tmp_path, database=database_url, config_text=CONFIG) as server:
        states = ["OK", "FAIL"] * 5 + ["FAIL"] * 20
        for n, state in enumerate(states):
            push(server, "web1", [{"name": "app", "state": state, "info": f"try {n}",
                                   "attempts": 1, "flapping": "30/25"}])
        svc = service_json(server, "app")
        assert not svc["flapping"] and svc["flapping_percent"] == 0
        wait_for(lambda: settled(server), 30, "every alert to be delivered")
        got = notified(tmp_path)
        kinds = [a["kind"] for a in got]
        assert kinds.count("flapping") == 1 and kinds.count("flapping-end") == 1
        assert got[-1]["kind"] == "flapping-end" and got[-1]["severity"] == "FAIL"
        assert got[-1]["message"].startswith("Stopped flapping; now FAIL: try ")
        start = kinds.index("flapping")
        assert all(kind == "state" for kind in kinds[:start])
        assert kinds[start + 1:] == ["flapping-end"], "state changes while flapping are held"
        held = server.query("SELECT kind, held FROM alerts WHERE held IS NOT NULL")
        assert held and set(held) == {("state", "flapping")}
        status, _, body = server.get("api/alerts?limit=100")
        assert status == 200
        shown = {a["held"] for a in body["items"]}
        assert shown == {None, "flapping"}
        status, _, metrics = server.get("metrics")
        assert b'overc_service_flapping_percent{server="web1",service="app"} 0' in metrics
