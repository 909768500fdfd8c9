"""The /metrics process: builds the exposition away from the server's GIL.

Even incremental, a build of 10,000 services is tens of milliseconds of Python (comparing the
rows with the kept ones, rendering the ages, joining ~7 MB). Run in the server's thread pool
it held the GIL that every push needs, so each scrape showed in the push p99 (+20-50 %). Here
it runs in a process of its own, with its own database connection (a reader's: on SQLite its
transactions take no write lock), started by :class:`~overc.web.metrics_worker.MetricsWorker`
on the first scrape; the server only passes the text on. ``python -m
overc.web.metrics_child``: frames (:mod:`overc.web.frames`) on stdin and stdout, log lines on
stderr.

Requests are JSON: first ``{"target": ...}`` (the database), then ``{"now": ..., "counters":
..., "gzip": ...}`` per build (compressed here too, for Prometheus, which asks for gzip: the
server process then passes on ~650 KB instead of ~7 MB). Each answer starts with one status
byte: ``T`` and the text, ``U`` and why the database is unavailable (the server answers 503),
``E`` and the error (500).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from overc.core.dburl import MySQLTarget, SQLiteTarget
from overc.core.errors import DatabaseUnavailable
from overc.storage.db import Database
from overc.storage.queries import Queries
from overc.web.compress import metrics_body
from overc.web.frames import FrameReader, frame
from overc.web.metrics_build import IncrementalMetrics
from overc.web.metrics_text import CounterValues

log = Logger()

def target_to_json(target: SQLiteTarget | MySQLTarget) -> dict[str, Any]:
    if isinstance(target, SQLiteTarget):
        return {"sqlite": str(target.path)}
    return {"mysql": {"host": target.host, "port": target.port, "user": target.user,
                      "password": target.password, "database": target.database,
                      "hosts": [list(pair) for pair in target.hosts]}}


def target_from_json(data: dict[str, Any]) -> SQLiteTarget | MySQLTarget:
    if "sqlite" in data:
        return SQLiteTarget(Path(data["sqlite"]))
    mysql = dict(data["mysql"])
    mysql["hosts"] = tuple((host, int(port)) for host, port in mysql["hosts"])
    return MySQLTarget(**mysql)


def counters_to_json(values: CounterValues) -> list[Any]:
    return [[name, [[[list(pair) for pair in key], value] for key, value in series.items()]]
            for name, series in values.items()]


def counters_from_json(data: list[Any]) -> CounterValues:
    return {name: {tuple((k, v) for k, v in key): value for key, value in series}
            for name, series in data}


class BuildServer(Protocol):
    """Answers build requests, one at a time, from the kept :class:`IncrementalMetrics`."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.reader = FrameReader()
        self.queries: Queries | None = None
        self.builder = IncrementalMetrics()
        self._queue: list[dict[str, Any]] = []
        self._busy = False

    def dataReceived(self, data: bytes) -> None:
        for payload in self.reader.feed(data):
            request = json.loads(payload)
            if "target" in request:
                db = Database(target_from_json(request["target"]), self.reactor, pool_size=1,
                              reader=True)
                self.queries = Queries(db)
            else:
                self._queue.append(request)
        if self._queue and not self._busy:
            self._busy = True
            Deferred.fromCoroutine(self._serve())

    async def _serve(self) -> None:
        try:
            while self._queue:
                request = self._queue.pop(0)
                answer = frame(await self._answer(request))
                assert self.transport is not None
                self.transport.write(answer)
        finally:
            self._busy = False

    async def _answer(self, request: dict[str, Any]) -> bytes:
        builder = self.builder
        try:
            if self.queries is None:
                raise RuntimeError("no database named before the first build")
            changes = await self.queries.metrics_changes(builder.known, builder.perf_ids,
                                                         builder.since, builder.rows_since)
            builder.apply(changes)
            text = builder.exposition(float(request["now"]),
                                      counters_from_json(request["counters"]))
            return b"T" + metrics_body(text, bool(request.get("gzip")))
        except DatabaseUnavailable as error:
            self.builder = IncrementalMetrics()
            return b"U" + str(error).encode("utf-8", "replace")
        except Exception as error:
            log.failure("/metrics build failed", Failure())
            self.builder = IncrementalMetrics()  # half-applied: start afresh
            return b"E" + f"{type(error).__name__}: {error}".encode("utf-8", "replace")

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        """The server closed our stdin (it stops, or drops us): stop too."""
        if self.queries is not None:
            self.queries.db.close()
        if self.reactor.running:
            self.reactor.stop()


def _die_with_parent() -> None:
    """Linux: be killed when the server process ends, however it ends (a child stuck in a
    read would otherwise see the EOF on its stdin only when the read returns)."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main() -> None:
    from twisted.internet import reactor, stdio
    from twisted.logger import globalLogBeginner, textFileLogObserver

    _die_with_parent()
    sys.stdout = sys.stderr  # fd 1 carries frames only: a stray print must not corrupt one
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)],
                                     redirectStandardIO=False)
    stdio.StandardIO(BuildServer(reactor), reactor=reactor)
    reactor.run()


if __name__ == "__main__":
    main()
