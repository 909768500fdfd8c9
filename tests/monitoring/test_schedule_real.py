"""SPEC 9 with real parts: a real ``twistd overc server``, the real ``overcli`` in a shell
script, a real command channel; and two real servers on one MariaDB (each timeout once)."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from openapi_schema_validator import OAS30Validator

from helpers import wait_for
from realserver import ROOT, RealServer, running_server
from slow_channel import CONFIG  # a JSON command channel, ./alert.d/record.sh

from overc.api.openapi import openapi_document
from overc.core.durations import Grace
from overc.core.passwords import hash_secret
from overc.core.schedule import scheduled_deadline, zone

pytestmark = pytest.mark.slow

PASSWORD = "s3cret pass"
BASIC = {"Authorization": "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()}
RECORD = """#!/bin/sh
# One file per delivery: the JSON document on stdin (renamed when whole: the test reads
# the folder while deliveries are being written).
mkdir -p deliveries
cat > "deliveries/$OVERC_NOTIFICATION_ID-$$.part"
mv "deliveries/$OVERC_NOTIFICATION_ID-$$.part" "deliveries/$OVERC_NOTIFICATION_ID-$$.json"
echo "$OVERC_KIND|$OVERC_SERVICE|$OVERC_SEVERITY|$OVERC_MESSAGE" >> deliveries/env.txt
"""

BACKUP_SCRIPT = """#!/bin/sh
# The nightly backup of docs/agent.md, with a stand-in for ./backup.sh.
set -e
overcli run --schedule "0 3 * * *" --tz Europe/Berlin --timeout 3600 backup -- \\
    /bin/sh -c 'sleep 0.3; echo "backup done | size=12MB"'
"""


def channel(tmp_path: Path) -> None:
    (tmp_path / "alert.d").mkdir(exist_ok=True)
    (tmp_path / "alert.d" / "record.sh").write_text(RECORD)
    (tmp_path / "alert.d" / "record.sh").chmod(0o755)


def deliveries(tmp_path: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in (tmp_path / "deliveries").glob("*.json")]


def agent_env(server: RealServer, ident: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OVERC_")}
    bindir = Path(sys.executable).parent
    env.update(PYTHONPATH=str(ROOT), OVERC_SERVER=server.url, OVERC_SERVER_ID=ident,
               PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}")
    return env


def check(path: str, body: object) -> None:
    doc = openapi_document()
    schema = doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    OAS30Validator({**schema["schema"], "components": doc["components"]}).validate(body)


def test_overcli_run_with_a_schedule_gives_a_scheduled_deadline_in_the_read_api(tmp_path):
    script = tmp_path / "nightly-backup.sh"
    script.write_text(BACKUP_SCRIPT)
    script.chmod(0o755)
    config = f"[ui]\nusers = admin:{hash_secret(PASSWORD, iterations=1000)}\n"
    with running_server(tmp_path / "srv", config_text=config) as server:
        overcli = Path(sys.executable).parent / "overcli"
        if not overcli.exists():
            pytest.skip("the overcli console script is not installed")
        done = subprocess.run([str(script)], env=agent_env(server, "db1:k1"), cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
        assert (done.returncode, done.stderr) == (0, ""), done.stderr
        status, _, body = server.get("api/servers", BASIC)
        assert status == 200, body
        check("/api/servers", body)
        [service] = body["items"][0]["services"]
        assert (service["name"], service["state"], service["info"]) == \
            ("backup", "OK", "backup done")
        assert (service["schedule"], service["tz"], service["grace"]) == \
            ("0 3 * * *", "Europe/Berlin", None)
        assert service["period"] == 86400  # the schedule's typical interval
        # the next 03:00 in Berlin after the report, plus 10 % of a day
        expected = scheduled_deadline("0 3 * * *", "Europe/Berlin", service["last_time"],
                                      Grace())
        assert service["deadline"] == pytest.approx(expected)
        assert datetime.fromtimestamp(service["deadline"] - 8640, zone("Europe/Berlin")) \
            .strftime("%H:%M") == "03:00"
        # the start signal opened a run; the report ended it with the measured duration
        assert service["run_started"] is None and not service["run_late"]
        assert 0.3 <= service["duration"] < 30
        status, _, states = server.get(f"api/services/{service['id']}/states", BASIC)
        assert status == 200 and [s["duration"] for s in states["items"]] == [service["duration"]]


def test_a_start_signal_that_times_out_raises_one_timeout_alert_through_a_command(tmp_path):
    channel(tmp_path)
    with running_server(tmp_path, config_text=CONFIG) as server:
        ident = {"name": "db1", "key": "k1"}
        status, _, body = server.post("api/set/service/start", {
            "server": ident, "services": [{"name": "backup", "timeout": 1}]})
        assert (status, body) == (200, {"ok": 1})
        status, _, body = server.post("api/set/service/start", {
            "server": ident, "services": [{"name": "backup", "timeout": 0}]})
        assert (status, body["field"]) == (400, "services[0].timeout")
        wait_for(lambda: any(a["kind"] == "timeout" for d in deliveries(tmp_path)
                             for a in d["alerts"]), 20, "the timeout notification")
        # a period-1 service going stale afterwards shows that the watchdog went on ticking
        # (db1 says nothing more either: one server-offline for both, SPEC 10.3)
        server.post("api/set/service/status", {"server": ident, "period": 1, "services": [
            {"name": "tick", "state": "OK"}]})
        wait_for(lambda: any(a["kind"] == "server-offline" for d in deliveries(tmp_path)
                             for a in d["alerts"]), 20, "the server-offline notification")
        timeouts = [a for d in deliveries(tmp_path) for a in d["alerts"] if a["kind"] == "timeout"]
        assert len(timeouts) == 1
        [alert] = timeouts
        assert (alert["service"], alert["severity"], alert["channel"], alert["event"]) == \
            ("backup", "FAIL", "plugin", "timeout")
        assert alert["message"].startswith("Started ") and \
            alert["message"].endswith(" s ago and not finished (timeout 1 s)")
        assert "timeout|backup|FAIL|Started" in (tmp_path / "deliveries" / "env.txt").read_text()
        # the service is running late until a report ends the run
        [(late, started)] = server.query("SELECT run_late, run_started FROM services"
                                         " WHERE name = 'backup'")
        assert late == 1 and started is not None
        server.post("api/set/service/status", {"server": ident, "period": 60, "services": [
            {"name": "backup", "state": "OK", "info": "finally"}]})
        [(late, started, duration)] = server.query(
            "SELECT run_late, run_started, duration FROM services WHERE name = 'backup'")
        assert (late, started) == (0, None) and duration >= 1.0


def test_two_processes_on_one_mariadb_notify_each_timeout_once(tmp_path, mysql_url):
    channel(tmp_path)
    with running_server(tmp_path, database=mysql_url, config_text=CONFIG, name="a") as a, \
            running_server(tmp_path, database=mysql_url, config_text=CONFIG, name="b") as b:
        q = a.query
        for index, server in enumerate((a, b, a, b)):
            status, _, _ = server.post("api/set/service/start", {
                "server": {"name": f"h{index}", "key": "k"},
                "services": [{"name": f"job{i}", "timeout": 1} for i in range(5)]})
            assert status == 200
        wait_for(lambda: q("SELECT COUNT(*) FROM alerts WHERE kind = 'timeout'")[0][0] == 20,
                 30, "20 timeouts")
        # both watchdogs go on: a period-1 service goes stale after the timeouts were raised
        a.post("api/set/service/status", {"server": {"name": "h0", "key": "k"}, "period": 1,
                                          "services": [{"name": "tick", "state": "OK"}]})
        wait_for(lambda: q("SELECT COUNT(*) FROM alerts WHERE kind = 'offline'")[0][0] == 1,
                 30, "the offline alert")
        wait_for(lambda: q(
            "SELECT (SELECT COUNT(*) FROM alerts WHERE dispatched = 0) +"
            " (SELECT COUNT(*) FROM notifications WHERE status IN ('pending', 'sending'))"
        )[0][0] == 0, 45, "every alert to be delivered")
        per_service = Counter(q("SELECT service_id FROM alerts WHERE kind = 'timeout'"))
        assert len(per_service) == 20 and set(per_service.values()) == {1}
        seen = Counter(x["id"] for d in deliveries(tmp_path) for x in d["alerts"]
                       if x["kind"] == "timeout")
        assert len(seen) == 20 and set(seen.values()) == {1}, "each timeout notified once"
        assert q("SELECT COUNT(*) FROM services WHERE run_late = 1")[0][0] == 20
