"""End to end: the real ``overcli`` / ``twistd overcli-monitor`` processes against a real server.

The server is ``tests/realserver.py`` (``twistd -n overc server`` on a port, SQLite); results
are read back from its database. These tests poll real time (they are integration tests):
every wait has a deadline and says what it waited for.
"""
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from overc.agent.logs import version
from helpers import wait_for as shared_wait_for
from realserver import ROOT, RealServer, running_server

pytestmark = pytest.mark.slow

NAGIOS = "/usr/lib/nagios/plugins"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
OVERCLI = [sys.executable, "-c", "from overc.agent.cli import main; main()"]
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def agent_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OVERC_")}
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env


def overcli(*args, env=None, timeout=30):
    return subprocess.run(OVERCLI + list(args), env=env or agent_env(), capture_output=True, text=True, timeout=timeout)


def query(server, sql, *params):
    db = sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def service_rows(server):
    return {name: (state, info, period) for name, state, info, period in query(server, "SELECT name, state, info, period FROM services")}


def history(server, service):
    return query(
        server,
        "SELECT st.time, st.state, st.info FROM states st JOIN services s ON s.id = st.service_id WHERE s.name = ? ORDER BY st.id",
        service,
    )


def wait_for(what, predicate, timeout=30.0, logs=()):
    """:func:`helpers.wait_for`, with the tail of the processes' logs when it times out."""
    try:
        return shared_wait_for(predicate, timeout, what, interval=0.1)
    except AssertionError as error:
        detail = "\n".join(Path(p).read_text(errors="replace")[-3000:] for p in logs if Path(p).exists())
        raise AssertionError(f"{error}\n{detail}") from None


class Agent:
    """A monitor process (``overcli monitor`` or ``twistd -n overcli-monitor``) with its log."""

    def __init__(self, argv, log_path, env=None):
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(argv, env=env or agent_env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    def log(self):
        return Path(self.log_path).read_text(errors="replace")


def write_plugins(folder: Path):
    plugins = folder / "plugin.d"
    plugins.mkdir(parents=True, exist_ok=True)
    bodies = {
        "ok.sh": "echo 'all good | v=1;5;10'\nexit 0",
        "warn.sh": "echo 'getting slow'\nexit 1",
        "fail.sh": "echo 'down'\nexit 2",
        "unk.sh": "echo 'no idea'\nexit 3",
        "seven.sh": "echo 'odd'\nexit 7",
        "sleepy.sh": "exec sleep 30",
        "big.sh": "head -c 1048576 /dev/zero | tr '\\0' x",
        "killed.sh": "kill -9 $$",
        "noexec.sh": "exit 0",
        "counter.sh": 'n=$(cat count 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > count\necho "run $n"',
    }
    for name, body in bodies.items():
        path = plugins / name
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(0o644 if name == "noexec.sh" else 0o755)


def test_cli_commands_against_the_real_server(tmp_path):
    with running_server(tmp_path / "srv") as server:
        ident = ["-s", server.url, "-i", "web1:s3cret"]
        r = overcli(*ident, "ping")
        assert (r.returncode, r.stdout, r.stderr) == (0, "pong\n", "")

        r = overcli(*ident, "service-status", "60", "app", "WARN", "slow | t=3s;1;5")
        assert r.returncode == 0, r.stderr
        assert service_rows(server)["app"][0] == "WARN"

        r = overcli(*ident, "alert", "--service", "queue", "Cannot check")
        assert r.returncode == 0, r.stderr
        assert ("api", "Cannot check") in query(server, "SELECT kind, message FROM alerts")

        r = overcli("-s", server.url, "-i", "web1:wrong", "ping")
        assert r.returncode == 1
        assert r.stderr == "overcli: server refused (403): Invalid server key\n"

        r = overcli("run", "--period", "120", "cronjob", "--", "/bin/sh", "-c", "echo 'from cron | n=4'; exit 2",
                    env=agent_env(OVERC_SERVER=server.url, OVERC_SERVER_ID="web1:s3cret"))
        assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
        assert service_rows(server)["cronjob"] == ("FAIL", "from cron", 120)
        url = server.url
    r = overcli("-s", url, "-i", "web1:s3cret", "ping")
    assert r.returncode == 3
    assert r.stderr.startswith("overcli: cannot reach ") and r.stderr.count("\n") == 1


def test_monitor_with_real_plugins_reports_to_real_server(tmp_path):
    have_nagios = os.path.exists(f"{NAGIOS}/check_dummy")
    if not have_nagios and IN_CI:
        pytest.fail("monitoring-plugins-basic is required in CI")
    with running_server(tmp_path / "srv") as server:
        folder = tmp_path / "agent"
        write_plugins(folder)
        services = {
            "ok": "./plugin.d/ok.sh",
            "warn": "./plugin.d/warn.sh",
            "fail": "./plugin.d/fail.sh",
            "unk": "./plugin.d/unk.sh",
            "seven": "./plugin.d/seven.sh",
            "sleepy": "./plugin.d/sleepy.sh\ntimeout = 1",
            "big": "./plugin.d/big.sh",
            "killed": "./plugin.d/killed.sh",
            "noexec": "./plugin.d/noexec.sh",
        }
        if have_nagios:
            services["dummy"] = f"{NAGIOS}/check_dummy 1 'dummy says hi'"
            services["load"] = f"{NAGIOS}/check_load -w 1000,1000,1000 -c 2000,2000,2000"
        config = folder / "monitor.ini"
        config.write_text(
            "[overc]\nserver = http://127.0.0.1:1/   ; overridden by -s\nmy-name = web1\nmy-key = s3cret\n\n"
            + "".join(f"[service:{name}]\nperiod = 60\ncommand = {cmd}\n\n" for name, cmd in services.items())
        )
        agent = Agent(TWISTD + ["-n", "--pidfile=", "overcli-monitor", "-s", server.url, str(config)], tmp_path / "agent.log")
        try:
            rows = wait_for("every service at the server", lambda: len(service_rows(server)) == len(services) and service_rows(server),
                            timeout=30, logs=[agent.log_path, server.log_path])
        finally:
            agent.stop()
        assert rows["ok"] == ("OK", "all good", 60)
        assert rows["warn"][:2] == ("WARN", "getting slow")
        assert rows["fail"][:2] == ("FAIL", "down")
        assert rows["unk"][:2] == ("UNK", "no idea")
        assert rows["seven"][:2] == ("UNK", "Plugin exited with code 7: odd")
        assert rows["sleepy"][:2] == ("UNK", "Timed out after 1 s")
        assert rows["big"][0] == "OK" and rows["big"][1].endswith("[output truncated]") and len(rows["big"][1]) <= 65536
        assert rows["killed"][:2] == ("UNK", "Plugin killed by signal 9 (SIGKILL)")
        assert rows["noexec"][0] == "UNK" and "Permission denied" in rows["noexec"][1]
        perf = query(server, "SELECT s.name, p.label, p.value, p.warn, p.crit FROM perfdata p JOIN services s ON s.id = p.service_id")
        assert ("ok", "v", 1.0, "5", "10") in perf
        if have_nagios:
            assert rows["dummy"][:2] == ("WARN", "WARNING: dummy says hi")
            assert rows["load"][0] == "OK" and "load average" in rows["load"][1]
            assert {"load1", "load5", "load15"} <= {label for name, label, *_ in perf if name == "load"}


def spooled_lines(path):
    try:
        return [line for line in Path(path).read_text().splitlines() if line.startswith('{"r"')]
    except FileNotFoundError:
        return []


def test_store_and_forward_across_agent_restart(tmp_path):
    folder = tmp_path / "agent"
    write_plugins(folder)
    server = RealServer(tmp_path / "srv")  # chosen port, not started: the server is down
    config = folder / "monitor.ini"
    spool = folder / "monitor.spool"
    config.write_text(
        f"[overc]\nserver = {server.url}\nmy-name = web1\nmy-key = s3cret\nspool = monitor.spool\n\n"
        "[service:counter]\nperiod = 2\ncommand = ./plugin.d/counter.sh\n"
    )
    logs = [tmp_path / "agent1.log", tmp_path / "agent2.log"]
    first = Agent(OVERCLI + ["monitor", str(config)], logs[0])
    try:
        wait_for("3 spooled reports", lambda: len(spooled_lines(spool)) >= 3, timeout=20, logs=logs)
    finally:
        assert first.stop() == 0, first.log()
    down_runs = int((folder / "count").read_text())
    assert "retrying in" in first.log()
    spooled_before = len(spooled_lines(spool))

    second = Agent(OVERCLI + ["monitor", str(config)], logs[1])
    try:
        # Still down: the restarted agent keeps spooling behind the old reports.
        wait_for("a report of the restarted agent in the spool", lambda: len(spooled_lines(spool)) > spooled_before,
                 timeout=20, logs=logs)
        server_up_at = time.time()
        server.start()
        try:
            wait_for("the spooled runs at the server", lambda: len(history(server, "counter")) >= down_runs + 2,
                     timeout=30, logs=logs + [server.log_path])
        finally:
            assert second.stop() == 0, second.log()
        rows = history(server, "counter")
    finally:
        server.stop()
    infos = [info for _, _, info in rows]
    delivered = len(infos)
    # Every run, in order, none twice: run 1 .. run N; whatever was not yet sent is still spooled.
    assert infos == [f"run {n}" for n in range(1, delivered + 1)], infos
    from overc.agent.spool import FileSpool

    left = [r.info for r in FileSpool(str(spool)).peek(1000)]
    total = int((folder / "count").read_text())
    assert infos + left == [f"run {n}" for n in range(1, total + 1)]
    # Reports made while the server was down keep their original time.
    times = [t for t, _, _ in rows]
    assert times == sorted(times)
    assert all(t < server_up_at for t in times[:down_runs])
    assert times[down_runs - 1] - times[0] >= (down_runs - 1) * 1.0


class TwistdServer(RealServer):
    """A server started the README's way: twistd's default pidfile, ``twistd.pid`` in its folder."""

    def command(self):
        return [arg for arg in super().command() if arg != "--pidfile="]


def test_monitor_beside_a_twistd_server_own_pidfile_and_quiet_logs(tmp_path):
    folder = tmp_path / "srv"
    server = TwistdServer(folder).start()
    try:
        pidfile = folder / "twistd.pid"
        assert wait_for("the server's twistd.pid", pidfile.exists, timeout=10)
        server_pid = pidfile.read_text()
        (folder / "monitor.ini").write_text(
            f"[overc]\nserver = {server.url}\nmy-name = web1\nmy-key = s3cret\n\n"
            "[service:flip]\nperiod = 1\ncommand = sh -c 'test -e down && { echo down; exit 2; }; echo up'\n"
        )
        log_path = tmp_path / "agent.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(TWISTD + ["-n", "overcli-monitor", "monitor.ini"], cwd=folder, env=agent_env(),
                                       stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        agent = Agent.__new__(Agent)
        agent.log_path, agent.process = log_path, process
        try:
            own = folder / "overcli-monitor.pid"
            wait_for("the monitor's own pidfile", lambda: own.exists() and own.read_text().strip() == str(process.pid),
                     timeout=20, logs=[log_path])
            wait_for("3 runs at the server", lambda: len(history(server, "flip")) >= 3, timeout=30, logs=[log_path])
            (folder / "down").write_text("")
            wait_for("the FAIL at the server", lambda: service_rows(server).get("flip", ("",))[0] == "FAIL", timeout=30, logs=[log_path])
            wait_for("the state change in the log", lambda: "flip: OK -> FAIL: down" in agent.log(), timeout=10, logs=[log_path])
        finally:
            # twistd ends itself with the signal it got (-15) once it has shut down cleanly.
            assert agent.stop() in (0, -signal.SIGTERM), agent.log()
        assert "Server Shut Down." in agent.log()
        assert pidfile.read_text() == server_pid  # the server's pidfile is untouched
        assert not own.exists()  # removed on a clean stop
    finally:
        server.stop()
    text = agent.log()
    runs = len(history(server, "flip"))
    lines = text.splitlines()
    assert f"OverC monitor {version()}: 1 service from monitor.ini as 'web1', reporting to {server.url}" in text
    for noise in ("Starting factory", "Stopping factory", "Main loop terminated", "services", "flip: OK in", "Another twistd"):
        assert noise not in text, noise
    assert len(lines) < 12, text  # start-up, the server answers, one state change, the stop; not one line per run
    assert f"Monitor stopped after {runs} plugin runs; 0 reports in the spool for the next start" in text


def test_loglevel_debug_shows_every_run_and_overcli_v(tmp_path):
    with running_server(tmp_path / "srv") as server:
        folder = tmp_path / "agent"
        folder.mkdir()
        config = folder / "monitor.ini"
        config.write_text(f"[overc]\nserver = {server.url}\nmy-name = web1\nmy-key = s3cret\nloglevel = error\n\n"
                          "[service:ok]\nperiod = 1\ncommand = echo fine\n")
        quiet = Agent(OVERCLI + ["monitor", str(config)], tmp_path / "quiet.log")
        try:
            wait_for("2 runs at the server", lambda: len(history(server, "ok")) >= 2, timeout=30, logs=[quiet.log_path])
        finally:
            assert quiet.stop() == 0
        assert quiet.log() == ""  # loglevel = error: nothing to say
        loud = Agent(OVERCLI + ["-vv", "monitor", str(config)], tmp_path / "loud.log")
        try:
            wait_for("a per-run debug line", lambda: "ok: OK in " in loud.log(), timeout=30, logs=[loud.log_path])
        finally:
            assert loud.stop() == 0
        assert "Starting factory" in loud.log()  # -vv: debug shows Twisted's detail too
        url = server.url
    r = overcli("-v", "-s", url, "-i", "web1:s3cret", "ping")
    assert r.returncode == 3
    assert r.stderr.startswith("overcli: cannot reach ") and r.stderr.count("\n") == 1, r.stderr


def test_versions_and_config_errors_of_the_real_commands(tmp_path):
    r = overcli("--version")
    assert (r.returncode, r.stdout, r.stderr) == (0, f"overcli (OverC) {version()}\n", "")
    r = subprocess.run(TWISTD + ["overcli-monitor", "--version"], env=agent_env(), capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stdout) == (0, f"overcli-monitor (OverC) {version()}\n")
    config = tmp_path / "monitor.ini"
    config.write_text("[overc]\nserver = http://127.0.0.1:1/\nmy-name = a\nmy-key = b\n\n[service:x]\nperiod = 5\ntimout = 3\ncommand = true\n")
    expected = f"{config}: [service:x] timout: unknown key (known: period, command, max-lag, timeout, shell, schedule, tz)\n"
    r = overcli("monitor", str(config))
    assert (r.returncode, r.stderr) == (2, "overcli: config error: " + expected)
    r = subprocess.run(TWISTD + ["-n", "--pidfile=", "overcli-monitor", str(config)], env=agent_env(), capture_output=True,
                       text=True, timeout=30)
    assert (r.returncode, r.stderr) == (2, "overcli-monitor: config error: " + expected)
