"""Start-up as an operator and a supervisor meet it: one line per failure, a non-zero exit,
and the version everywhere (``--version``, ``/healthz``, the start-up log)."""
from __future__ import annotations

import configparser
import os
import re
import socket
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import overc
from realserver import ROOT, RealServer, running_server

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
#: a log line's level, as twistd writes it: "2026-... [overc.tap#critical] ..." ("[-]": info)
LEVEL = re.compile(r"^\d{4}-\S+ \[(?:-|[^\]#]*#(\w+))\]")


def twistd(*args, cwd, timeout=60):
    return subprocess.run([*TWISTD, *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def problems(output: str) -> list[str]:
    """The lines of a twistd log that are not routine (info) lines."""
    lines = []
    for line in output.splitlines():
        level = LEVEL.match(line)
        if line.strip() and (level is None or level.group(1) not in (None, "info", "debug")):
            lines.append(line)
    return lines


def run_server(tmp_path, *args):
    return twistd("-n", "--pidfile=", "overc", "server", *args, cwd=tmp_path)


def test_a_wrong_database_password_is_one_line_and_a_failed_exit(tmp_path, mysql_url):
    parts = urlsplit(mysql_url)
    wrong = urlunsplit(parts._replace(
        netloc=f"{parts.username or 'root'}:not-the-password@{parts.hostname}:{parts.port or 3306}"))
    port = RealServer(tmp_path).port
    result = run_server(tmp_path, "--listen", f"tcp:{port}:interface=127.0.0.1",
                        "--database", wrong)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    lines = problems(output)
    assert len(lines) == 1, output
    assert "cannot open the database" in lines[0] and "Access denied" in lines[0], lines
    assert "not-the-password" not in output  # the URL is named without its password


def test_a_busy_port_is_one_line_and_a_failed_exit(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run_server(tmp_path, "--listen", f"tcp:{port}:interface=127.0.0.1",
                            "--database", "sqlite:///overc.db")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    lines = problems(output)
    assert len(lines) == 1, output
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in lines[0], lines
    assert not (tmp_path / "overc.db").exists()  # nothing opened


def test_the_version_has_one_source():
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+|a\d+|b\d+|rc\d+)?", overc.__version__)
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    assert setup["metadata"]["version"] == "attr: overc.__version__"


def test_twistd_overc_version(tmp_path):
    for args in (["overc", "--version"], ["overc", "server", "--version"]):
        result = twistd(*args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"OverC {overc.__version__} ("), result.stdout


def test_server_help_has_one_usage_line_and_no_internal_flag(tmp_path):
    out = twistd("overc", "server", "--help", cwd=tmp_path).stdout
    usage = [line for line in out.splitlines() if line.startswith("Usage:")]
    assert usage == ["Usage: twistd [options] overc server [--config FILE] [--listen ENDPOINT]"
                     " [--database URL]"], out
    assert "worker" not in out and "--version" in out
    out = twistd("overc", "--help", cwd=tmp_path).stdout
    assert out.splitlines()[0] == "Usage: twistd [options] overc server [options]"
    # the old flag is gone: the first process marks its workers in their environment
    result = run_server(tmp_path, "--worker")
    assert result.returncode != 0 and "option --worker not recognized" in result.stdout


def test_healthz_and_the_start_up_log_say_the_version(tmp_path):
    with running_server(tmp_path) as server:
        status, _, body = server.get("healthz")
        assert status == 200 and body["version"] == overc.__version__
        assert f"OverC {overc.__version__} serving http://127.0.0.1:{server.port}/" \
            in server.log_text()


def test_an_sqlite_file_that_cannot_be_opened_is_one_line_and_a_failed_exit(tmp_path):
    """No database server will come back to fix a missing folder: fail at once, not retry."""
    port = RealServer(tmp_path).port
    result = run_server(tmp_path, "--listen", f"tcp:{port}:interface=127.0.0.1",
                        "--database", "sqlite:///no-such-folder/overc.db")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    lines = problems(output)
    assert len(lines) == 1, output
    assert "cannot open the database sqlite:///" in lines[0], lines
    assert "no-such-folder/overc.db" in lines[0] and "unable to open" in lines[0], lines
