"""The server's side of the /metrics process (:mod:`overc.web.metrics_child`).

Started on the first scrape (a server nobody scrapes pays nothing), one per server process
(its counters are its own), asked for one build at a time; a child that died is started again
by the next build, and one build that finds it dead tries once more with a new one. Stopping the
server closes the child's stdin, which ends it.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone
from twisted.internet.interfaces import IProcessTransport, IReactorProcess
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from overc.core.dburl import MySQLTarget, SQLiteTarget
from overc.core.errors import DatabaseUnavailable
from overc.web.frames import FrameReader, frame
from overc.web.metrics_child import counters_to_json, target_to_json
from overc.web.metrics_text import CounterValues

log = Logger()


#: Seconds a child has to end after its stdin closed, before it is killed.
STOP_TIMEOUT = 2.0


class MetricsProcessFailed(Exception):
    """The /metrics process answered with an error, or ended before it answered."""


class _Child(ProcessProtocol):
    def __init__(self) -> None:
        self.reader = FrameReader()
        self.pending: Deferred[bytes] | None = None
        self.ended: Deferred[None] = Deferred()
        self.alive = True
        #: How it ended: its exit code, or None (killed by a signal, or still running).
        self.exit_code: int | None = None
        self._err = b""

    @property
    def process(self) -> IProcessTransport:
        assert self.transport is not None, "spawned"
        return self.transport

    def childDataReceived(self, fd: int, data: bytes) -> None:
        if fd == 2:  # its log lines: keep them in ours
            *lines, self._err = (self._err + data).split(b"\n")
            for line in lines:
                if line.strip():
                    log.warn("metrics process: {line}", line=line.decode("utf-8", "replace"))
            return
        for answer in self.reader.feed(data):
            pending, self.pending = self.pending, None
            if pending is not None:
                pending.callback(answer)

    def processEnded(self, reason: Failure) -> None:
        self.alive = False
        self.exit_code = getattr(reason.value, "exitCode", None)
        if not reason.check(ProcessDone):
            log.warn("metrics process ended: {reason}", reason=reason.getErrorMessage())
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.errback(MetricsProcessFailed(
                f"the metrics process ended: {reason.getErrorMessage()}"))
        self.ended.callback(None)


class MetricsWorker:
    """Builds the exposition in a child process (see :mod:`overc.web.metrics_child`)."""

    def __init__(self, reactor: IReactorProcess, target: SQLiteTarget | MySQLTarget) -> None:
        self.reactor = reactor
        self.target = target
        self._child: _Child | None = None
        #: Children started so far (tests and logs).
        self.started = 0

    def _spawn(self) -> _Child:
        child = _Child()
        self.reactor.spawnProcess(
            child, sys.executable, [sys.executable, "-m", "overc.web.metrics_child"],
            env=dict(os.environ), childFDs={0: "w", 1: "r", 2: "r"})
        child.process.writeToChild(0, frame(json.dumps(
            {"target": target_to_json(self.target)}).encode()))
        if self.started == 0:
            self.reactor.addSystemEventTrigger(  # type: ignore[attr-defined]
                "before", "shutdown", self.stop)
        self.started += 1
        return child

    async def build(self, now: float, counters: CounterValues, compressed: bool = False
                    ) -> bytes:
        """The exposition at ``now`` with this process's ``counters`` (gzip-compressed when
        ``compressed``)."""
        request = frame(json.dumps({"now": now, "counters": counters_to_json(counters),
                                    "gzip": compressed}).encode())
        for attempt in (1, 2):
            fresh = self._child is None or not self._child.alive
            if fresh:
                self._child = self._spawn()
            child = self._child
            assert child is not None and child.pending is None, "one build at a time"
            child.pending = Deferred()
            answer = child.pending
            child.process.writeToChild(0, request)
            try:
                reply = await answer
            except MetricsProcessFailed:
                if fresh or attempt == 2:
                    raise
                continue  # it had died since the last build: once more with a new one
            status, body = reply[:1], reply[1:]
            if status == b"T":
                return body
            message = body.decode("utf-8", "replace")
            if status == b"U":
                raise DatabaseUnavailable(message)
            raise MetricsProcessFailed(message)
        raise AssertionError("unreachable")

    def stop(self) -> Deferred[None] | None:
        """Close the child's stdin and wait for it to end (it stops when it reads EOF)."""
        child, self._child = self._child, None
        if child is None or not child.alive:
            return None
        child.process.closeStdin()

        def kill() -> None:
            if child.alive:
                child.process.signalProcess("KILL")

        # It ends within milliseconds of EOF; kill it before a supervisor (ProcessMonitor
        # gives a worker 5 s) kills this process and leaves it behind.
        timer = self.reactor.callLater(STOP_TIMEOUT, kill)  # type: ignore[attr-defined]
        child.ended.addBoth(lambda _: timer.cancel() if timer.active() else None)
        return child.ended
