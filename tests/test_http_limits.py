"""The limits of the network service, with real sockets against a real server process.

Body size (413 at once, from the header or mid-stream), the per-request deadline (slowloris),
and the cap on open connections (503 beyond it).
"""
from __future__ import annotations

import contextlib
import json
import socket
import time

import pytest

from helpers import wait_for
from realserver import running_server

CONFIG = """
[overc]
request-timeout = 1s
max-connections = 6
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("limits"), config_text=CONFIG) as real:
        yield real


def connect(server, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    return sock


def read_answer(sock: socket.socket) -> tuple[int, dict, bytes, bool]:
    """``(status, headers, body, closed)``: one response, and whether EOF followed it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before an answer: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    closed = False
    with contextlib.suppress(ConnectionResetError):
        closed = sock.recv(65536) == b""
    return status, headers, body, closed


def test_an_announced_body_over_one_mebibyte_is_refused_from_the_header(server):
    with connect(server) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /api/set/service/status HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n")
        status, headers, body, closed = read_answer(sock)
        elapsed = time.monotonic() - started
    assert status == 413 and json.loads(body) == {"error": "The body is larger than 1048576 bytes"}
    assert headers["connection"] == "close" and closed
    assert elapsed < 0.9  # not after the body, nor after the request timeout


def test_a_streamed_body_over_one_mebibyte_is_refused_mid_stream(server):
    with connect(server) as sock:
        sock.sendall(b"POST /api/ping HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"y" * 65536
        for _ in range(17):  # 1.06 MiB
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        status, headers, body, closed = read_answer(sock)
        assert status == 413 and headers["connection"] == "close" and closed
        # The server reads no more: sending on goes nowhere and soon fails.
        with pytest.raises(OSError):
            for _ in range(2000):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))


def test_a_request_trickled_byte_by_byte_is_cut_off_at_the_request_timeout(server):
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 1000
    with connect(server) as sock:
        started = time.monotonic()
        sock.settimeout(0.1)
        answer = b""
        # A slowloris client: one byte every 50 ms, which resets any idle timeout.
        for byte in request:
            try:
                sock.send(bytes([byte]))
            except OSError:
                break
            with contextlib.suppress(socket.timeout):
                answer += sock.recv(65536)
            if answer:
                break
            assert time.monotonic() - started < 10, "the server kept a trickling client"
        elapsed = time.monotonic() - started
        sock.settimeout(5)
        status, _, body, _ = read_answer_from(answer, sock)
    assert status == 408 and "1 s" in json.loads(body)["error"]
    assert 0.9 <= elapsed < 3


def read_answer_from(prefix: bytes, sock: socket.socket):
    class Prefixed:
        def __init__(self) -> None:
            self.pending = prefix

        def recv(self, n: int) -> bytes:
            if self.pending:
                data, self.pending = self.pending, b""
                return data
            return sock.recv(n)

    return read_answer(Prefixed())  # type: ignore[arg-type]


def test_connections_beyond_the_cap_are_answered_503_and_closed(server):
    held = [connect(server) for _ in range(6)]
    try:
        # The server has accepted all six (one answered request each proves it).
        for sock in held:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_answer_head(sock) == 200
        with connect(server) as extra:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body, closed = read_answer(extra)
        assert status == 503 and headers["retry-after"] == "5" and closed
        assert json.loads(body) == {"error": "too many connections; retry later"}
    finally:
        for sock in held:
            sock.close()

    def accepted() -> bool:
        with connect(server) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return read_answer(sock)[0] == 200

    wait_for(accepted, 10, "a connection to be accepted once the others closed")


def test_an_idle_keep_alive_connection_is_closed_after_the_timeout(server):
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_answer_head(sock) == 200
        started = time.monotonic()
        assert sock.recv(100) == b""  # blocks until the server closes it
        assert time.monotonic() - started < 5


def read_answer_head(sock: socket.socket) -> int:
    """Read one response with a Content-Length body and return its status."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "closed before an answer"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.decode("latin-1").split("\r\n")[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1])


def raw_get(server, path: str, host: str = "evil.example") -> tuple[int, dict, bytes]:
    with connect(server) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                     .encode())
        status, headers, body, _ = read_answer(sock)
    return status, headers, body


@pytest.mark.parametrize("path, target", [("/ui", "/ui/"), ("/ui/static", "/ui/static/"),
                                          ("/api/servers/", None), ("/", "/ui/")])
def test_redirects_never_repeat_the_host_header(server, path, target):
    status, headers, _ = raw_get(server, path)
    if target is None:
        assert status == 404
        return
    assert status in (301, 302, 303, 307, 308) and headers["location"] == target


@pytest.mark.parametrize("path", ["/ui/static/", "/ui/static", "/ui/static/.", "/ui/static//"])
def test_static_files_have_no_directory_listing(server, path):
    status, _, body = raw_get(server, path)
    assert status in (308, 404) and b"Directory listing" not in body and b"overc" not in body
    if status == 308:
        assert raw_get(server, "/ui/static/")[0] == 404


def test_static_files_are_still_served(server):
    status, headers, body = raw_get(server, "/ui/static/overc.css")
    assert status == 200 and body


@pytest.mark.parametrize("key, value", [("request-timeout", "0"), ("request-timeout", "2h"),
                                        ("request-timeout", "soon"), ("max-connections", "0"),
                                        ("max-connections", "1e3"), ("max-connections", "-5")])
def test_bad_limits_name_file_section_and_key(key, value):
    from overc.config import ConfigError, load_config

    with pytest.raises(ConfigError) as caught:
        load_config(f"[overc]\n{key} = {value}\n", source="/etc/overc.ini")
    assert str(caught.value).startswith(f"/etc/overc.ini [overc] {key}:")


def test_limits_from_the_config():
    from overc.config import load_config

    config = load_config("[overc]\nrequest-timeout = 5s\nmax-connections = 200\n")
    assert (config.request_timeout, config.max_connections) == (5.0, 200)
    assert (load_config("").request_timeout, load_config("").max_connections) == (30.0, 1000)


def test_max_connections_stays_below_the_descriptor_limit(monkeypatch):
    import resource

    from overc.web import site

    limits = {"soft": 512, "hard": 512}
    monkeypatch.setattr(resource, "getrlimit", lambda _: (limits["soft"], limits["hard"]))

    def setrlimit(_, values):
        if values[0] > limits["hard"]:
            raise ValueError("over the hard limit")
        limits["soft"] = values[0]

    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    assert site.connection_limit(1000) == 512 - site.RESERVED_FDS
    limits.update(soft=256, hard=4096)
    assert site.connection_limit(1000) == 1000 and limits["soft"] == 1000 + site.RESERVED_FDS
