"""The server as an operator meets it: twistd, config errors, closed registration, outages."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import pytest

from helpers import wait_for
from realserver import ROOT, RealServer, running_server

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def twistd(*args, cwd, timeout=30):
    return subprocess.run([*TWISTD, "-n", "--pidfile=", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def test_twistd_lists_the_plugins(tmp_path):
    out = subprocess.run([*TWISTD, "--help"], env=ENV, capture_output=True, text=True).stdout
    assert "overc " in out and "overcli-monitor" in out


def test_a_config_error_is_one_line_naming_file_section_and_key(tmp_path):
    config = tmp_path / "server.ini"
    config.write_text("[overc]\ngrace = soon\n")
    result = twistd("overc", "server", "--config", str(config), cwd=tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"overc: config error: {config} [overc] grace: 'soon' is not a duration"
                     " (like 30s, 15m, 12h, 90d)"], result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_refuses_to_listen_beyond_loopback_without_users(tmp_path):
    result = twistd("overc", "server", "--listen", "tcp:0", cwd=tmp_path)
    assert result.returncode != 0
    assert "[ui] users: the server would listen beyond loopback (tcp:0) with no users" in \
        result.stderr
    assert not (tmp_path / "overc.db").exists()


def test_password_hash_command(tmp_path):
    result = subprocess.run([sys.executable, "-m", "overc.passwd", "admin"], input="hunter2\n",
                            env=ENV, capture_output=True, text=True)
    user, _, hashed = result.stdout.strip().partition(":")
    assert result.returncode == 0 and user == "admin"
    from overc.core.passwords import verify_secret

    assert verify_secret("hunter2", hashed) and not verify_secret("hunter3", hashed)
    config = tmp_path / "s.ini"
    config.write_text(f"[overc]\nlisten = tcp:0\n[ui]\nusers = {result.stdout.strip()}\n")
    from overc.config import load_config_file

    assert load_config_file(config, {}).auth_required


def test_defaults_with_no_config_use_sqlite_in_the_current_folder(tmp_path):
    server = RealServer(tmp_path)
    server.database = "sqlite:///overc.db"  # relative: the server's current folder
    server.start()
    try:
        assert server.post("api/ping", {"server": {"name": "a", "key": "b"}})[0] == 200
        assert (tmp_path / "overc.db").exists()
    finally:
        server.stop()


def test_tac_file_reads_overc_config(tmp_path):
    port = RealServer(tmp_path).port
    config = tmp_path / "tac.ini"
    config.write_text(f"[overc]\nlisten = tcp:{port}:interface=127.0.0.1\n"
                      f"database = sqlite:///tac.db\n")
    process = subprocess.Popen([*TWISTD, "-n", "--pidfile=", "-y", str(ROOT / "overc.tac")],
                               cwd=tmp_path, env={**ENV, "OVERC_CONFIG": str(config)},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        server = RealServer(tmp_path, port=port)
        server.process = process
        server.wait_healthy()
        assert server.post("api/ping", {"server": {"name": "t", "key": "k"}})[0] == 200
        assert (tmp_path / "tac.db").exists()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)


def test_closed_registration(tmp_path):
    with running_server(tmp_path, config_text="[overc]\nregistration = closed\n") as server:
        status, _, body = server.post("api/ping", {"server": {"name": "new", "key": "k"}})
        assert (status, body) == (403, {"error": "Invalid server key"})
        assert server.query("SELECT COUNT(*) FROM servers") == [(0,)]


def test_unreachable_database_answers_503_and_recovers_nothing_lost(tmp_path):
    # Port 9 on loopback: connection refused, as when MariaDB is down.
    with running_server(tmp_path, database="mysql://root@127.0.0.1:9/overc", wait=False) as server:
        server.wait_listening()
        status, headers, body = server.post(
            "api/set/service/status",
            {"server": {"name": "a", "key": "k"}, "period": 60, "services": []})
        assert status == 503 and headers["Retry-After"] == "5"
        assert body == {"error": "The database is unavailable; retry later"}
        status, _, health = server.get("healthz")
        assert status == 503 and health["ok"] is False and health["database"]["ok"] is False
        assert "Traceback" not in json.dumps(body)


@pytest.mark.parametrize("kind", ["sqlite", "mysql"])
def test_every_acknowledged_report_survives_sigkill(tmp_path, kind, request):
    """Push from 6 threads, SIGKILL the server mid-stream, restart: every 200 is in the database."""
    database = request.getfixturevalue("mysql_url") if kind == "mysql" else None
    server = RealServer(tmp_path, database=database).start()
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def pusher(n: int) -> None:
        for i in range(100000):
            if stop.is_set():
                return
            info = f"t{n}-{i}"
            try:
                status, _, _ = server.post("api/set/service/status", {
                    "server": {"name": f"h{n}", "key": "k"}, "period": 60,
                    "services": [{"name": "svc", "state": "OK", "info": info}]})
            except OSError:
                return
            if status == 200:
                with lock:
                    acknowledged.append(info)

    threads = [threading.Thread(target=pusher, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(acknowledged) >= 200 or any(not t.is_alive() for t in threads), 30,
             "200 acknowledged reports")  # mid-stream: every pusher is still pushing
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(15)
    assert len(acknowledged) > 50
    server.start()
    try:
        stored = {row[0] for row in server.query("SELECT info FROM states")}
        missing = [info for info in acknowledged if info not in stored]
        assert missing == []
    finally:
        server.stop()


@pytest.mark.parametrize("level, shown", [("info", True), ("warn", False)])
def test_loglevel_filters_the_log(tmp_path, level, shown):
    with running_server(tmp_path, config_text=f"[overc]\nloglevel = {level}\n") as server:
        server.post("api/ping", {"server": {"name": "logged", "key": "k"}})
        server.post("api/ping", {"server": {"name": "logged", "key": "bad"}})
    log = server.log_text()
    assert ("Registered new server 'logged'" in log) is shown, log[-2000:]
    assert ("Refused server 'logged'" in log) is shown


def test_several_processes_share_one_port_on_mariadb(tmp_path, mysql_url):
    server = RealServer(tmp_path, database=mysql_url,
                        config_text="[overc]\nprocesses = 2\nwatchdog-interval = 1\n")
    server.start()
    try:
        pids: set[int] = set()

        def answering(into: set[int]) -> set[int]:
            status, _, body = server.get("healthz")  # a new connection each time
            if status == 200:
                into.add(body["pid"])
            return into

        def answering_retried(into: set[int]) -> set[int]:
            try:  # connections queued at the killed worker are reset: clients retry
                return answering(into)
            except OSError:
                return into

        wait_for(lambda: len(answering(pids)) >= 2, 20, "both processes to answer /healthz")
        assert len(pids) == 2 and server.process.pid in pids
        for n in range(40):
            status, _, _ = server.post("api/set/service/status", {
                "server": {"name": f"p{n % 4}", "key": "k"}, "period": 60,
                "services": [{"name": "svc", "state": "OK", "info": str(n)}]})
            assert status == 200
        assert server.query("SELECT COUNT(*) FROM states") == [(40,)]
        assert server.query("SELECT COUNT(*) FROM servers") == [(4,)]
        worker = (pids - {server.process.pid}).pop()
        os.kill(worker, signal.SIGKILL)  # a crashed worker is started again
        seen: set[int] = set()
        wait_for(lambda: answering_retried(seen) - pids, 30, "a restarted worker to answer")
        assert seen - pids, "the worker was not restarted"
    finally:
        server.stop()
    # Stopping the first process stops its workers.
    running = lambda: subprocess.run(  # noqa: E731
        ["pgrep", "-f", f"--database {mysql_url}"], capture_output=True, text=True).stdout
    wait_for(lambda: running().strip() == "", 10, "every worker to exit")


def test_several_processes_refuse_sqlite(tmp_path):
    config = tmp_path / "s.ini"
    config.write_text("[overc]\nprocesses = 2\nlisten = tcp:5999:interface=127.0.0.1\n")
    result = twistd("overc", "server", "--config", str(config), cwd=tmp_path)
    assert result.returncode != 0
    assert "[overc] processes: several processes need MySQL/MariaDB" in result.stderr


def test_the_server_process_freezes_its_startup_heap_once_running(tmp_path):
    """twistd's service asks for gc.freeze() when the reactor runs (overc.runtime.heap);
    build_server alone, as tests use it, does not."""
    from twisted.internet.testing import MemoryReactorClock

    from overc.runtime.heap import freeze_startup_heap
    from overc.tap import Options, build_server, makeService

    def hooks(reactor):
        return [hook for hook, *_ in reactor.whenRunningHooks if hook is freeze_startup_heap]

    options = Options()
    options.parseOptions(["server", "--database", f"sqlite:///{tmp_path / 'a.db'}",
                          "--listen", "tcp:0:interface=127.0.0.1"])
    reactor = MemoryReactorClock()
    makeService(options, reactor)
    assert len(hooks(reactor)) == 1
    alone = MemoryReactorClock()
    build_server(options.subOptions["server_config"], alone, [])
    assert hooks(alone) == []
