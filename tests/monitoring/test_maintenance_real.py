"""Maintenance windows end to end (SPEC 11) with real ``twistd overc server`` processes, the real
``overcli`` called from a shell script, and a real command channel: a deploy announces itself,
the FAIL it causes is held and sent once when the deploy ends; a recurring config window; the
read/write API; two processes on one MariaDB sending each window end once."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import wait_for
from realserver import ROOT, RealServer, running_server

pytestmark = pytest.mark.slow

LOG_SCRIPT = '#!/bin/sh\ncat >> "$1"\n'
CONFIG = """[overc]
watchdog-interval = 0.5
[alert:log]
command = ./alert.d/log.sh out.log
min-severity = WARN
[maintenance:backups]
servers = db*
services = backup
schedule = * * * * *
tz = Europe/Berlin
duration = 2h
reason = nightly backups
"""
FAIL_BLOCK = 'web1 app: [service:state/FAIL] State changed: "OK" -> "FAIL"'


def prepare(folder: Path) -> dict:
    """The channel's script, an ``overcli`` on PATH, and the environment a deploy script has."""
    (folder / "alert.d").mkdir(parents=True, exist_ok=True)
    (folder / "alert.d" / "log.sh").write_text(LOG_SCRIPT)
    (folder / "alert.d" / "log.sh").chmod(0o755)
    bin_dir = folder / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "overcli").write_text(
        f'#!/bin/sh\nexec {sys.executable} -c "from overc.agent.cli import main; main()" "$@"\n')
    (bin_dir / "overcli").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OVERC_")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(ROOT)
    return env


def shell(folder: Path, env: dict, server: RealServer, script: str, name: str = "web1") -> str:
    path = folder / "deploy.sh"
    path.write_text("#!/bin/sh\nset -e\n" + script)
    path.chmod(0o755)
    done = subprocess.run([str(path)], env={**env, "OVERC_SERVER": server.url,
                                            "OVERC_SERVER_ID": f"{name}:k-{name}"},
                          capture_output=True, text=True, timeout=60, cwd=folder)
    assert done.returncode == 0, done.stderr
    return done.stdout


def out_log(folder: Path) -> str:
    path = folder / "out.log"
    return path.read_text() if path.exists() else ""


@pytest.fixture(params=["sqlite", "mysql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("mysql_url")


def test_deploy_script_holds_the_fail_and_its_end_sends_it_once(tmp_path, database):
    env = prepare(tmp_path)
    with running_server(tmp_path, database=database, config_text=CONFIG) as server:
        shell(tmp_path, env, server, "overcli service-status 60 app OK up\n")
        said = shell(tmp_path, env, server, """
overcli maintenance 30m "deploy 4.2"
overcli service-status 60 app FAIL "down for the deploy"
""")
        assert said.startswith("maintenance window ")
        held = wait_for(lambda: server.query(
            "SELECT a.id FROM alerts a WHERE a.severity = 'FAIL' AND a.dispatched = 2"
            " AND a.maintenance_id IS NOT NULL"), 20, "the FAIL alert held by the window")
        status, _, listed = server.get("api/alerts?service=app")
        matches_document("/api/alerts", "get", status, listed)
        assert [a["held"] for a in listed["items"] if a["id"] == held[0][0]] == ["maintenance"]
        status, _, windows = server.get("api/maintenance")
        matches_document("/api/maintenance", "get", status, windows)
        mine = [w for w in windows["items"] if w["source"] == "push"]
        assert [(w["server_name"], w["reason"], w["created_by"], w["active"])
                for w in mine] == [("web1", "deploy 4.2", "web1", True)]
        assert out_log(tmp_path) == ""
        assert "ended 1 window(s)" in shell(tmp_path, env, server, "overcli maintenance --end\n")
        wait_for(lambda: FAIL_BLOCK in out_log(tmp_path), 20, "the held FAIL, sent at the end")
        # A later alert outside any window is sent after it: by then any double is in the log.
        shell(tmp_path, env, server, "overcli service-status 60 other FAIL marker\n")
        wait_for(lambda: "web1 other:" in out_log(tmp_path), 20, "the marker alert")
        assert out_log(tmp_path).count(FAIL_BLOCK) == 1


def test_recurring_config_window_holds_its_scope_only(tmp_path, database):
    env = prepare(tmp_path)
    with running_server(tmp_path, database=database, config_text=CONFIG) as server:
        for name in ("db1", "web2"):
            shell(tmp_path, env, server, "overcli service-status 60 backup OK fine\n", name)
            shell(tmp_path, env, server, "overcli service-status 60 backup FAIL broken\n", name)
        wait_for(lambda: "web2 backup:" in out_log(tmp_path), 20, "web2's FAIL, outside")
        wait_for(lambda: server.query(
            "SELECT a.id FROM alerts a JOIN servers s ON s.id = a.server_id"
            " WHERE s.name = 'db1' AND a.dispatched = 2"), 20, "db1's FAIL held")
        assert "db1" not in out_log(tmp_path)
        status, _, windows = server.get("api/maintenance")
        config = [w for w in windows["items"] if w["source"] == "config"]
        assert [(w["name"], w["servers"], w["services"], w["schedule"], w["tz"], w["active"])
                for w in config] == [("backups", ["db*"], ["backup"], "* * * * *",
                                      "Europe/Berlin", True)]
        # A config window is changed in the file, not through the API.
        status, _, body = server.get("api/maintenance")
        status, _, body = _delete(server, f"api/maintenance/{config[0]['id']}")
        assert status == 400 and body["field"] == "id"


def matches_document(path: str, method: str, status: int, body: dict) -> dict:
    """A real answer checked against the OpenAPI document's schema for it."""
    from openapi_schema_validator import OAS30Validator

    from overc.api.openapi import openapi_document

    doc = openapi_document()
    schema = doc["paths"][path][method]["responses"][str(status)]["content"][
        "application/json"]["schema"]
    OAS30Validator({**schema, "components": doc["components"]}).validate(body)
    return body


def _delete(server: RealServer, path: str):
    from realserver import http

    return http("DELETE", server.url + path)


def test_read_write_api_creates_lists_and_ends_windows(tmp_path):
    env = prepare(tmp_path)
    with running_server(tmp_path, config_text=CONFIG) as server:
        shell(tmp_path, env, server, "overcli service-status 60 app OK up\n")
        (server_id,) = server.query("SELECT id FROM servers WHERE name = 'web1'")[0]
        json_headers = {"Content-Type": "application/json"}
        status, _, body = server.post("api/maintenance", {"server_id": server_id,
                                                          "duration": 600, "reason": "disk"},
                                      json_headers)
        matches_document("/api/maintenance", "post", status, body)
        window_id = body["id"]
        status, _, body = server.post("api/set/maintenance", {
            "server": {"name": "web1", "key": "k-web1"}, "duration": "soon"})
        assert matches_document("/api/set/maintenance", "post", status, body)["field"] == \
            "duration"
        status, _, body = server.post("api/set/maintenance", {
            "server": {"name": "web1", "key": "wrong"}, "duration": 60})
        assert status == 403
        status, _, body = server.post("api/maintenance", {"schedule": "0 2 * * sun",
                                                          "tz": "Nowhere/City", "duration": 60},
                                      json_headers)
        assert (status, body["field"]) == (400, "tz")
        status, _, body = server.post("api/maintenance", {"server_id": 999, "duration": 60},
                                      json_headers)
        assert (status, body["field"]) == (400, "server_id")
        # A form post is refused: state changes need JSON (no cross-site form can send it).
        status, _, _ = server.post("api/maintenance", b"duration=60",
                                   {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 403
        (service_id,) = server.query("SELECT id FROM services WHERE name = 'app'")[0]
        for page in (f"ui/server/{server_id}", f"ui/service/{service_id}", "ui/maintenance/"):
            status, _, html = server.get(page)
            assert status == 200 and b"disk" in html and b"End now" in html, page
        status, _, listed = server.get(f"api/maintenance?server={server_id}")
        assert [w["id"] for w in listed["items"] if w["source"] == "api"] == [window_id]
        assert _delete(server, f"api/maintenance/{window_id}")[0] == 200
        assert _delete(server, "api/maintenance/99999")[0] == 404
        status, _, listed = server.get("api/maintenance")
        assert [w["active"] for w in listed["items"] if w["id"] == window_id] == [False]


def test_two_processes_on_one_mariadb_send_each_window_end_once(tmp_path, mysql_url):
    env = prepare(tmp_path)
    config = CONFIG.replace("[overc]\n", "[overc]\n")
    a = RealServer(tmp_path, mysql_url, config, name="a").start()
    try:
        b = RealServer(tmp_path, mysql_url, config, name="b").start()
        try:
            services = [f"s{i}" for i in range(8)]
            shell(tmp_path, env, a, "".join(f"overcli service-status 60 {s} OK up\n"
                                            for s in services))
            shell(tmp_path, env, b, 'overcli maintenance 1h "reboot"\n')
            shell(tmp_path, env, a, "".join(f"overcli service-status 60 {s} FAIL down\n"
                                            for s in services))
            wait_for(lambda: len(a.query("SELECT id FROM alerts WHERE dispatched = 2"))
                     == len(services), 20, "every FAIL held")
            shell(tmp_path, env, a, "overcli maintenance --end\n")
            wait_for(lambda: all(f"web1 {s}:" in out_log(tmp_path) for s in services), 30,
                     "every held FAIL sent once the window ended")
            shell(tmp_path, env, b, "overcli service-status 60 other FAIL marker\n")
            wait_for(lambda: "web1 other:" in out_log(tmp_path), 20, "the marker alert")
            text = out_log(tmp_path)
            assert [text.count(f"web1 {s}: [service:state/FAIL]") for s in services] == [1] * 8
        finally:
            b.stop()
    finally:
        a.stop()
