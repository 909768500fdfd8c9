"""MariaDB going away while the server runs: 503 with Retry-After, nothing half-stored, and
the server recovers by itself when the database is back (through a real TCP proxy we cut)."""
from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit, urlunsplit

from helpers import wait_for
from realserver import RealServer


class CuttableProxy:
    """A loopback TCP proxy to MariaDB whose every connection can be cut, and restored."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.connections: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.lock = threading.Lock()

    def start(self) -> "CuttableProxy":
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.connections += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        """The database host disappears: open connections reset, new ones refused."""
        assert self.listener is not None
        try:  # wakes the thread blocked in accept() (close alone would not, on Linux)
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            for s in self.connections:
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                    s.close()
                except OSError:
                    pass
            self.connections.clear()

    def restore(self) -> None:
        self.start()


def push(server, info):
    return server.post("api/set/service/status", {
        "server": {"name": "outage", "key": "k"}, "period": 60,
        "services": [{"name": "svc", "state": "OK", "info": info}]})


def test_database_outage_is_503_then_recovers(tmp_path, mysql_url):
    parts = urlsplit(mysql_url)
    proxy = CuttableProxy((parts.hostname or "127.0.0.1", parts.port or 3306)).start()
    proxied = urlunsplit(parts._replace(netloc=f"{parts.username or 'root'}@127.0.0.1:{proxy.port}"))
    server = RealServer(tmp_path, database=proxied).start()
    try:
        assert push(server, "before")[0] == 200
        proxy.cut()
        for attempt in range(3):
            status, headers, body = push(server, f"during-{attempt}")
            assert status == 503, body
            assert headers["Retry-After"] == "5"
            assert body == {"error": "The database is unavailable; retry later"}
        assert server.get("healthz")[0] == 503
        proxy.restore()
        wait_for(lambda: push(server, "after")[0] == 200, 20, "a push to be stored again")
        assert server.get("healthz")[0] == 200
        stored = [row[0] for row in server.query("SELECT info FROM states ORDER BY id")]
        assert stored[0] == "before" and "after" in stored
        assert not any(info.startswith("during") for info in stored)  # 503: nothing stored
    finally:
        server.stop()
        proxy.cut()
