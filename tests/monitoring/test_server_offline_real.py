"""SPEC 10.3 end to end: a real server process and a real command channel, on SQLite and
MariaDB. A host with 20 services stops pushing: exactly one notification (`server-offline`),
its 20 `offline` alerts recorded and held. Meanwhile a live host's one hung plugin is notified
alone. The dead host comes back: one `server-online`, to the channel told of the outage."""
from __future__ import annotations

import json
import threading
from pathlib import Path

from helpers import wait_for
from recording_channel import RECORD, settled
from realserver import RealServer, running_server


CONFIG = """[overc]
watchdog-interval = 0.5
grace = 1
[alert:log]
command = ./alert.d/record.sh
format = json
"""
NAMES = [f"s{n:02}" for n in range(20)]


def push(server: RealServer, host: str, names: list[str], period: int) -> None:
    status, _, body = server.post("api/set/service/status", {
        "server": {"name": host, "key": "k-" + host}, "period": period,
        "services": [{"name": name, "state": "OK", "info": f"{name} fine"} for name in names]})
    assert status == 200, body


def notifications(tmp_path: Path) -> list[list[dict]]:
    """Each notification the channel got (its alerts), in order."""
    files = sorted((tmp_path / "got").glob("*.json"), key=lambda p: int(p.stem))
    return [json.loads(path.read_text())["alerts"] for path in files]



def about(tmp_path: Path, host: str) -> list[list[tuple]]:
    return [[(a["kind"], a["service"]) for a in alerts if a["server"] == host]
            for alerts in notifications(tmp_path)
            if any(a["server"] == host for a in alerts)]


def test_a_dead_host_with_20_services_is_one_notification_and_comes_back(tmp_path,
                                                                         database_url):
    (tmp_path / "alert.d").mkdir()
    (tmp_path / "alert.d" / "record.sh").write_text(RECORD)
    (tmp_path / "alert.d" / "record.sh").chmod(0o755)
    with running_server(tmp_path, database=database_url, config_text=CONFIG) as server:
        stop = threading.Event()

        def live_host() -> None:  # web2 keeps pushing "up"; its "hung" plugin never reports
            while not stop.wait(0.5):
                push(server, "web2", ["up"], period=2)

        # The first watch of a new database gives what is overdue a fresh window: push after it.
        wait_for(lambda: server.query(
            "SELECT last_tick FROM coordination WHERE job = 'watchdog'")[0][0] > 0, 30,
            "the watchdog's first tick")
        push(server, "web2", ["up", "hung"], period=2)
        pusher = threading.Thread(target=live_host, daemon=True)
        pusher.start()
        try:
            push(server, "web1", NAMES, period=2)  # and then web1 dies
            wait_for(lambda: server.query(
                "SELECT COUNT(*) FROM alerts WHERE kind = 'offline'")[0][0] == 21, 30,
                "web1's 20 services and web2's hung plugin to go stale")
            wait_for(lambda: settled(server), 30, "every alert to be delivered")
            assert about(tmp_path, "web1") == [[("server-offline", None)]]
            assert about(tmp_path, "web2") == [[("offline", "hung")]]
            [alert] = [a for alerts in notifications(tmp_path) for a in alerts
                       if a["server"] == "web1"]
            assert alert["severity"] == "FAIL"
            assert alert["message"].endswith(" s; 20 services affected")
            assert server.query("SELECT held, COUNT(*) FROM alerts WHERE kind = 'offline'"
                                " GROUP BY held ORDER BY held") in (
                [(None, 1), ("server offline", 20)], [("server offline", 20), (None, 1)])
            # The read API says so: web1 offline, web2 not; the alerts carry the reason.
            status, _, body = server.get("api/servers")
            assert status == 200
            state = {s["name"]: (s["offline"], s["deadline"] is None) for s in body["items"]}
            assert state == {"web1": (True, True), "web2": (False, False)}
            status, _, body = server.get("api/alerts?limit=100")
            assert {a["held"] for a in body["items"] if a["server_name"] == "web1"} == {
                None, "server offline"}

            # web1 is back: half its services report (with a long period from now on).
            push(server, "web1", NAMES[:10], period=3600)
            wait_for(lambda: server.query(
                "SELECT COUNT(*) FROM alerts WHERE kind = 'server-online'")[0][0] == 1, 30,
                "web1 to be back")
            wait_for(lambda: settled(server), 30, "every alert to be delivered")
            assert about(tmp_path, "web1") == [[("server-offline", None)],
                                               [("server-online", None)]]
            status, _, body = server.get("api/servers")
            assert {s["name"]: s["offline"] for s in body["items"]} == {
                "web1": False, "web2": False}
            # Its stored shortest period (2 s) is checked against its live services when the
            # deadline it gives passes: 3600 s now, so web1 stays online.
            wait_for(lambda: server.query(
                "SELECT period FROM servers WHERE name = 'web1'")[0][0] == 3600, 30,
                "web1's period to be checked")
            assert server.query("SELECT offline FROM servers WHERE name = 'web1'") == [(0,)]
            assert about(tmp_path, "web2") == [[("offline", "hung")]]
        finally:
            stop.set()
            pusher.join(10)
