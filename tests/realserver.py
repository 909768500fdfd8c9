"""A real ``twistd -n overc server`` process on a real port, for integration tests.

Synchronous on purpose (subprocess + urllib): fixtures start and stop it outside the reactor.
The server runs the working tree's code (PYTHONPATH = the repository root).
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

from helpers import wait_for

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: object | bytes | None = None,
         headers: dict | None = None, timeout: float = 10.0) -> tuple[int, dict, object]:
    """One blocking HTTP call: ``(status, headers, parsed JSON body or raw bytes)``."""
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, head, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, head, raw = error.code, dict(error.headers), error.read()
    try:
        return status, head, json.loads(raw)
    except ValueError:
        return status, head, raw


class RealServer:
    def __init__(self, workdir: Path, database: str | None = None,
                 config_text: str | None = None, env: dict | None = None,
                 name: str = "server", port: int | None = None,
                 root: Path | None = None) -> None:
        #: The code it runs: this repository, or another checkout (bench before/after).
        self.root = Path(root) if root is not None else ROOT
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.db_path = self.workdir / "overc.db"
        self.database = database or f"sqlite:///{self.db_path}"
        self.config_path: Path | None = None
        if config_text is not None:
            self.config_path = self.workdir / f"{name}.ini"
            self.config_path.write_text(config_text)
        self.env = env or {}
        self.log_path = self.workdir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        command = [
            sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
            "-n", "--pidfile=", "overc", "server",
            "--listen", f"tcp:{self.port}:interface=127.0.0.1",
            "--database", self.database,
        ]
        if self.config_path is not None:
            command += ["--config", str(self.config_path)]
        return command

    def start(self, wait: bool = True, timeout: float = 30.0) -> "RealServer":
        env = {**os.environ, **self.env}
        env["PYTHONPATH"] = os.pathsep.join(
            [str(self.root)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.command(), cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        if wait:
            self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        def healthy() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n"
                                   + self.log_text()[-3000:])
            with contextlib.suppress(OSError):
                return http("GET", self.url + "healthz", timeout=2)[0] == 200
            return False

        self._wait(healthy, timeout, "the server to answer /healthz with 200")

    def wait_listening(self, timeout: float = 30.0) -> None:
        def listening() -> bool:
            with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", self.port), timeout=1
            ):
                return True
            return False

        self._wait(listening, timeout, f"the server to listen on port {self.port}")

    def _wait(self, condition, timeout: float, what: str) -> None:
        """:func:`helpers.wait_for`, with the server's log in the error (why it never came)."""
        try:
            wait_for(condition, timeout, what)
        except AssertionError as error:
            raise RuntimeError(f"{error}:\n{self.log_text()[-3000:]}") from None

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM and wait: a clean shutdown."""
        return self._end(signal.SIGTERM, timeout)

    def kill(self) -> int | None:
        """SIGKILL: what a crash looks like."""
        return self._end(signal.SIGKILL, 10.0)

    def _end(self, sig: int, timeout: float) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def query(self, sql: str, *params) -> list[tuple]:
        """Read the server's database directly (SQLite file or MariaDB), for assertions."""
        if self.database.startswith("sqlite"):
            import sqlite3

            with contextlib.closing(sqlite3.connect(self.db_path, timeout=10)) as connection:
                rows = connection.execute(sql, params).fetchall()
                connection.commit()
                return rows
        import pymysql
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(self.database)
        connection = pymysql.connect(
            host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
            user=unquote(parts.username or "root"), password=unquote(parts.password or ""),
            database=unquote(parts.path.lstrip("/")), charset="utf8mb4", autocommit=True,
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql.replace("?", "%s"), params or None)
                return [tuple(row) for row in cursor.fetchall()]
        finally:
            connection.close()

    def post(self, path: str, body: object | bytes, headers: dict | None = None):
        return http("POST", self.url + path.lstrip("/"), body, headers)

    def get(self, path: str, headers: dict | None = None):
        return http("GET", self.url + path.lstrip("/"), None, headers)


@contextlib.contextmanager
def running_server(tmp_path: Path, database: str | None = None,
                   config_text: str | None = None, env: dict | None = None,
                   name: str = "server", wait: bool = True) -> Iterator[RealServer]:
    """Start a server, yield it, and always stop it (dumping its log if the test failed)."""
    server = RealServer(tmp_path, database, config_text, env, name)
    server.start(wait=wait)
    try:
        yield server
    finally:
        server.stop()
