"""SPEC 10.5 end to end: a real server process with two real command channels, on SQLite and
MariaDB. `chat` is told at once; `pager` (after = 4s) only gets what stayed a problem and
unacknowledged that long, and then its recovery too. The acknowledgement goes through the
read/write API, as a script would send it."""
from __future__ import annotations

import json
from pathlib import Path

from helpers import wait_for
from recording_channel import RECORD, settled
from realserver import RealServer, running_server


CONFIG = """[overc]
watchdog-interval = 0.5
[alert:chat]
command = ./alert.d/record.sh chat
format = json
[alert:pager]
command = ./alert.d/record.sh pager
format = json
after = 4s
"""


JSON = {"Content-Type": "application/json"}


def notified(tmp_path: Path, channel: str) -> list[tuple[str, str]]:
    """(service, severity) of every alert the channel got, in notification order."""
    files = sorted((tmp_path / "got" / channel).glob("*.json"), key=lambda p: int(p.stem))
    return [(a["service"], a["severity"])
            for path in files for a in json.loads(path.read_text())["alerts"]]


def push(server: RealServer, services: list[dict]) -> None:
    status, _, body = server.post("api/set/service/status", {
        "server": {"name": "web1", "key": "k-web1"}, "period": 3600, "services": services})
    assert status == 200, body



def test_the_pager_gets_only_what_stayed_unacknowledged(tmp_path, database_url):
    (tmp_path / "alert.d").mkdir()
    (tmp_path / "alert.d" / "record.sh").write_text(RECORD)
    (tmp_path / "alert.d" / "record.sh").chmod(0o755)
    with running_server(tmp_path, database=database_url, config_text=CONFIG) as server:
        push(server, [{"name": "mine", "state": "OK"}, {"name": "nobody", "state": "OK"}])
        push(server, [{"name": "mine", "state": "FAIL"}, {"name": "nobody", "state": "FAIL"}])
        ((mine,),) = server.query("SELECT id FROM services WHERE name = 'mine'")
        status, _, body = server.post(f"api/services/{mine}/ack", {"comment": "on it"}, JSON)
        assert status == 200, body
        status, _, body = server.post(f"api/services/{mine}/ack", {"expires": "never"}, JSON)
        assert status == 400 and body["field"] == "expires"
        wait_for(lambda: notified(tmp_path, "pager"), 60, "the unacknowledged escalation")
        assert sorted(notified(tmp_path, "chat")) == [("mine", "FAIL"), ("nobody", "FAIL")]
        assert notified(tmp_path, "pager") == [("nobody", "FAIL")]
        # The acknowledged problem's escalation came due too and is parked, not sent.
        wait_for(lambda: server.query("SELECT COUNT(*) FROM escalations WHERE due IS NULL")
                 == [(1,)], 60, "the acknowledged escalation to be parked")
        push(server, [{"name": "mine", "state": "OK"}, {"name": "nobody", "state": "OK"}])
        wait_for(lambda: len(notified(tmp_path, "chat")) == 4, 60, "both recoveries in chat")
        wait_for(lambda: settled(server), 60, "every alert to be delivered")
        assert notified(tmp_path, "pager") == [("nobody", "FAIL"), ("nobody", "OK")]
        assert sorted(notified(tmp_path, "chat")[2:]) == [("mine", "OK"), ("nobody", "OK")]
        assert server.query("SELECT COUNT(*) FROM escalations") == [(0,)]
