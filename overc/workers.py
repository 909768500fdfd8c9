"""Several server processes on one port: ``[overc] processes = N``.

One Twisted process uses one core (the GIL); OverC keeps no state outside the database, so N
processes can share the load. Each binds the same TCP port with ``SO_REUSEPORT`` and the kernel
spreads connections across them. The first process supervises the others with Twisted's
``ProcessMonitor`` (restarted when they die, stopped with it). Watchdog and notifications run in
every process and coordinate through the database (SPEC 8), which is why this needs MySQL or
MariaDB: SQLite has a single writer.
"""
from __future__ import annotations

import os
import socket
import sys
from typing import Any, Callable

from twisted.application import service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger
from twisted.runner.procmon import ProcessMonitor

from overc.config import endpoint_tcp_address

log = Logger()


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket that other processes may bind too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


#: Requests a keep-alive connection serves before its answer says ``Connection: close``.
RECYCLE_AFTER = 100


def recycling(channel: type, after: int = RECYCLE_AFTER) -> type:
    """``channel`` (an ``HTTPChannel`` class) that ends a connection after ``after`` requests.

    The kernel picks a process per *connection* (a hash of its addresses): a few long-lived
    keep-alive connections (a proxy in front, a handful of busy agents) can stay on one process
    while the other idles (measured: 4 connections split 1,730 : 798 requests). A client that
    reconnects gets a new source port and a new draw, so over time each connection spreads
    over every process; the cost is one TCP handshake per ``after`` requests.
    """

    class Recycling(channel):
        _served = 0

        def checkPersistence(self, request: Any, version: bytes) -> bool:
            self._served += 1
            if self._served >= after:
                request.responseHeaders.setRawHeaders(b"connection", [b"close"])
                return False
            return bool(super().checkPersistence(request, version))

    Recycling.__name__ = Recycling.__qualname__ = f"Recycling{channel.__name__}"
    return Recycling


class ReusePortService(service.Service):
    """Listens for ``site`` on ``listen`` (a tcp endpoint string) with SO_REUSEPORT; its
    connections are recycled (:func:`recycling`) so that the processes share the load."""

    def __init__(self, listen: str, site: Any, reactor: Any,
                  ready: Callable[[], Deferred] | None = None) -> None:
        self.host, self.port = endpoint_tcp_address(listen)
        site.protocol = recycling(site.protocol)
        self.site = site
        self.reactor = reactor
        self.ready = ready
        self.listening: IListeningPort | None = None

    def startService(self) -> None:
        super().startService()
        if self.ready is None:
            self._listen()
        else:
            # A process joins the port only once its database is ready: the kernel hands
            # connections to every socket in the group, and a starting worker would answer 503.
            self.ready().addCallback(lambda _: self._listen() if self.running else None)

    def _listen(self) -> None:
        sock = reuseport_socket(self.host, self.port)
        try:
            self.listening = self.reactor.adoptStreamPort(sock.fileno(), sock.family, self.site)
        finally:
            sock.close()  # the reactor holds its own duplicate of the descriptor

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        if self.listening is not None:
            return self.listening.stopListening()
        return None


#: Set (to "1") in a worker's environment by the first process: a worker starts no workers.
WORKER_ENV = "OVERC_WORKER"


def worker_monitor(count: int, argv: list[str], reactor: Any) -> ProcessMonitor:
    """Supervise ``count`` more copies of this server, each started with ``OVERC_WORKER=1``."""
    monitor = ProcessMonitor(reactor=reactor)
    monitor.threshold = 5
    monitor.maxRestartDelay = 30
    command = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
               "-n", "--pidfile=", *argv]
    for number in range(1, count + 1):
        monitor.addProcess(f"overc-worker-{number}", command, env={**os.environ, WORKER_ENV: "1"},
                           cwd=os.getcwd())
    return monitor
