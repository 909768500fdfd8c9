"""Debian's ``haproxy`` running the shipped ``misc/haproxy/overc.cfg``, for tests.

The file is used as shipped except for its addresses: :func:`local_config` replaces the
``bind`` of each section and the address of each ``server`` line, in order, and fails if the
file no longer has the lines it expects (so a changed config changes what is tested, never
silently bypasses it). Everything else (checks, intervals, retries, timeouts) is the file's.

Without haproxy the tests skip, except with ``CI=true`` (.ci/run installs it), where they fail.
Synchronous on purpose (subprocess), like tests/realserver.py.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from helpers import wait_for
from realserver import ROOT

SHIPPED = ROOT / "misc" / "haproxy" / "overc.cfg"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SECTION = re.compile(r"^(global|defaults|frontend|backend|listen)\b\s*(\S*)")


def require_haproxy() -> None:
    if not os.access(HAPROXY, os.X_OK):
        if IN_CI:
            pytest.fail("CI needs Debian's haproxy package (.ci/run installs it)")
        pytest.skip("haproxy is not installed (apt-get install haproxy)")


def _sections(text: str) -> list[tuple[str, list[str]]]:
    """``[(section header, its lines)]``; lines before the first header go under ``""``."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    for line in text.splitlines():
        if SECTION.match(line):
            sections.append((line.strip(), []))
        sections[-1][1].append(line)
    return sections


def _readdress(lines: list[str], bind: str | None, servers: list[str], where: str) -> list[str]:
    """``lines`` with the ``bind`` address (if ``bind``) and the server addresses replaced."""
    out, binds, index = [], 0, 0
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("bind ") and bind is not None:
            line = re.sub(r"bind \S+", f"bind {bind}", line, count=1)
            binds += 1
        elif stripped.startswith("server "):
            if index >= len(servers):
                raise AssertionError(f"{SHIPPED} [{where}] has more servers than {servers}")
            line = re.sub(r"^(\s*server \S+ )\S+", rf"\g<1>{servers[index]}", line)
            index += 1
        out.append(line)
    if binds != (bind is not None) or index != len(servers):
        raise AssertionError(f"{SHIPPED} [{where}]: expected one bind and {len(servers)} servers,"
                             f" found {binds} and {index}")
    return out


def local_config(http: str, overc: list[str], writer: str | None = None,
                 databases: list[str] | None = None) -> str:
    """The shipped config with its addresses replaced.

    ``http``: where the ``overc`` frontend listens; ``overc``: the OverC processes, one per
    ``server`` line of ``backend overc``. ``writer`` and ``databases``: the ``galera-writer``
    front and its nodes; without them that section is left out (it needs a Galera cluster and
    its check user: tests/galera/ runs it).
    """
    kept: list[str] = []
    seen = set()
    for header, lines in _sections(SHIPPED.read_text()):
        seen.add(header)
        if header == "frontend overc":
            lines = _readdress(lines, http, [], header)
        elif header == "backend overc":
            lines = _readdress(lines, None, overc, header)
        elif header == "listen galera-writer":
            if writer is None or databases is None:
                continue
            lines = _readdress(lines, writer, databases, header)
        kept.extend(lines)
    missing = {"frontend overc", "backend overc", "listen galera-writer"} - seen
    if missing:
        raise AssertionError(f"{SHIPPED} lacks {sorted(missing)}")
    return "\n".join(kept) + "\n"


def check_config(*arguments: str) -> None:
    """``haproxy -c``: valid, and without a warning."""
    done = subprocess.run([HAPROXY, "-c", *arguments], capture_output=True, text=True,
                          timeout=30)
    output = done.stdout + done.stderr
    assert done.returncode == 0 and "WARNING" not in output, output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HAProxy:
    """``haproxy -db -f <config>`` in the foreground; its log (``log stdout``) in ``log_path``.

    A second file adds a stats socket (what the test reads the checks' results from) and
    nothing else: HAProxy merges the two ``global`` sections.
    """

    def __init__(self, workdir: Path, config: str, name: str = "haproxy") -> None:
        self.config_path = Path(workdir) / f"{name}.cfg"
        self.config_path.write_text(config)
        self.log_path = Path(workdir) / f"{name}.log"
        # a short path: a unix socket's is limited to 107 bytes
        self.socket_dir = tempfile.mkdtemp(prefix="overc-haproxy-")
        self.socket_path = os.path.join(self.socket_dir, "stats.sock")
        self.stats_path = Path(workdir) / f"{name}-stats.cfg"
        self.stats_path.write_text(f"global\n    stats socket {self.socket_path} mode 600\n")
        self.process: subprocess.Popen | None = None

    def _files(self) -> list[str]:
        return ["-f", str(self.config_path), "-f", str(self.stats_path)]

    def check(self) -> None:
        check_config(*self._files())

    def stat(self) -> dict[str, dict[str, str]]:
        """``show stat``: ``{"backend/server": {"status": "UP", "check_status": "L7OK", ...}}``."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.socket_path)
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        header, *rows = data.decode().lstrip("# ").splitlines()
        names = header.split(",")
        table = [dict(zip(names, row.split(","))) for row in rows if row]
        return {f"{row['pxname']}/{row['svname']}": row for row in table}

    def start(self, wait_for_port: int) -> "HAProxy":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([HAPROXY, "-db", *self._files()],
                                        stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

        def listening() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"haproxy exited with {self.process.returncode}:\n"
                                   + self.log_text())
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", wait_for_port), timeout=1):
                return True
            return False

        wait_for(listening, 15, f"haproxy to listen on {wait_for_port}")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.socket_dir, ignore_errors=True)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""
