"""The on-disk spool: reports the server could not take yet, kept across agent restarts.

Format: an append-only file of JSON lines, so a crash can at worst tear the last line.
``{"r": {...report...}}`` adds a report; ``{"done": N}`` says the first N reports ever written
to this file are delivered or dropped. Appending and acknowledging are each one ``write`` and
one ``fsync``: after they return, a restart sees exactly the same queue. When everything is
delivered the file is truncated; when dead lines dominate it is rewritten (temporary file,
fsync, rename), never edited in place.

The queue itself (what to send next) lives in memory and changes at once; the file follows it.
Each change of the file is a job for ``run_blocking``, which in the monitor is
:class:`InThread`: the reactor's thread pool, one job at a time in the order they were made,
so an ``fsync`` (milliseconds, or seconds on a busy disk) never stalls the reactor and the
file sees exactly the sequence of changes the queue saw. A report is spooled (survives a
restart) once its job has run; :meth:`FileSpool.close` fires once every job so far has.
Unit tests pass :func:`run_here`, which does the job at once.
"""
from __future__ import annotations

import json
import os
from collections import deque
from typing import Callable, Iterable

from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from overc.agent.logs import plural
from overc.agent.results import Report

log = Logger()

#: Default bound on queued reports; beyond it the oldest are dropped (and counted in the log).
DEFAULT_MAX_REPORTS = 100_000

#: Runs one blocking job (a change of the spool file); the Deferred fires when it is done.
RunBlocking = Callable[[Callable[[], None]], "defer.Deferred[None]"]


def run_here(job: Callable[[], None]) -> "defer.Deferred[None]":
    """Do the job now, on the calling thread (tests, and one-shot tools with no reactor)."""
    return defer.maybeDeferred(job)


class InThread:
    """Runs jobs on the reactor's thread pool, one at a time, in the order they were given.

    One at a time is what keeps the file's order: two appends must not race each other.
    """

    def __init__(self, reactor, threadpool: ThreadPool | None = None) -> None:
        self.reactor = reactor
        self.threadpool = threadpool
        self._lock = defer.DeferredLock()

    def __call__(self, job: Callable[[], None]) -> "defer.Deferred[None]":
        if self.threadpool is None:  # asked for lazily: the reactor starts it when it runs
            self.threadpool = self.reactor.getThreadPool()
        return self._lock.run(threads.deferToThreadPool, self.reactor, self.threadpool, job)


class MemorySpool:
    """The queue without a file: the same bounded, ordered behaviour, lost on restart.

    Used when no spool file can be written (a 1.x config in a read-only folder) and as the
    base of :class:`FileSpool`.
    """

    def __init__(self, max_reports: int = DEFAULT_MAX_REPORTS) -> None:
        if max_reports < 1:
            raise ValueError("max_reports must be at least 1")
        self.max_reports = max_reports
        self.pending: deque[Report] = deque()
        self.dropped_total = 0

    def __len__(self) -> int:
        return len(self.pending)

    def peek(self, limit: int) -> list[Report]:
        """The oldest ``limit`` reports, in order, still queued."""
        out: list[Report] = []
        for report in self.pending:
            if len(out) >= limit:
                break
            out.append(report)
        return out

    def extend(self, reports: Iterable[Report]) -> None:
        """Queue reports behind the existing ones; drop the oldest beyond the bound."""
        reports = list(reports)
        if not reports:
            return
        self._write_reports(reports)
        self.pending.extend(reports)
        overflow = self._drop_oldest()
        if overflow:
            log.warn(
                "Spool full ({max}): dropped {oldest} ({total} so far)",
                max=plural(self.max_reports, "report"),
                oldest=_oldest(overflow),
                count=overflow,
                total=f"{self.dropped_total:,}",
            )

    def _drop_oldest(self) -> int:
        """Keep at most ``max_reports``: drop (and record as done) the oldest; how many."""
        overflow = len(self.pending) - self.max_reports
        if overflow <= 0:
            return 0
        for _ in range(overflow):
            self.pending.popleft()
        self._write_done(overflow)
        self.dropped_total += overflow
        return overflow

    def remove(self, count: int) -> None:
        """The first ``count`` reports are delivered (or refused for good): forget them."""
        count = min(count, len(self.pending))
        if count <= 0:
            return
        for _ in range(count):
            self.pending.popleft()
        self._write_done(count)

    def close(self) -> "defer.Deferred[None]":
        return defer.succeed(None)

    # Persistence hooks (no-ops in memory).
    def _write_reports(self, reports: list[Report]) -> None:
        pass

    def _write_done(self, count: int) -> None:
        pass


class SpoolError(Exception):
    """The spool file cannot be opened or read (permissions, a directory, ...)."""


class FileSpool(MemorySpool):
    """A :class:`MemorySpool` whose every change is appended and fsynced to ``path``."""

    #: Rewrite the file when it holds this many more lines than pending reports.
    COMPACT_SLACK = 10_000

    def __init__(self, path: str, max_reports: int = DEFAULT_MAX_REPORTS, run_blocking: RunBlocking = run_here) -> None:
        super().__init__(max_reports)
        self.path = path
        self.run_blocking = run_blocking
        self._written = 0  # reports ever written to the current file
        self._done = 0  # of those, how many are delivered or dropped
        self._lines = 0
        self._load()
        try:
            self._file = open(self.path, "ab")
        except OSError as e:
            raise SpoolError(f"cannot write spool file {path}: {e.strerror or e}") from None
        overflow = self._drop_oldest()
        if overflow:
            log.warn("Spool holds more than {max}: dropped {oldest}",
                     max=plural(self.max_reports, "report"), count=overflow, oldest=_oldest(overflow))
        if self.pending:
            log.info("Spool {path}: {reports} from an earlier run", path=path, count=len(self.pending),
                     reports=plural(len(self.pending), "undelivered report"))

    def _load(self) -> None:
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return
        except OSError as e:
            raise SpoolError(f"cannot read spool file {self.path}: {e.strerror or e}") from None
        reports: list[Report] = []
        bad = 0
        lines = raw.split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            self._lines += 1
            try:
                record = json.loads(line)
                if "r" in record:
                    reports.append(Report.from_wire(record["r"]))
                elif "done" in record:
                    self._done = max(self._done, int(record["done"]))
                else:
                    raise ValueError("unknown record")
            except (ValueError, KeyError, TypeError):
                # A torn last line after a crash is expected; anything else is worth a warning.
                if number < len(lines) - 1 or raw.endswith(b"\n"):
                    bad += 1
        if bad:
            log.warn("Spool {path}: skipped {bad} unreadable lines", path=self.path, bad=bad)
        self._written = len(reports)
        self._done = min(self._done, self._written)
        self.pending.extend(reports[self._done :])
        if not raw.endswith(b"\n") and raw:
            # Terminate a torn line so the next record starts on its own line.
            with open(self.path, "ab") as f:
                f.write(b"\n")
                f.flush()
                os.fsync(f.fileno())

    # -- on the reactor thread: the bookkeeping, and one job per change of the file --------
    def _submit(self, job: Callable[[], None], records: int) -> None:
        d = self.run_blocking(job)
        d.addErrback(self._write_failed, records)

    def _write_failed(self, failure: Failure, records: int) -> None:
        # A full or broken disk must not stop monitoring: the queue in memory still has them.
        log.error(
            "Cannot write the spool ({error}); {count} records kept in memory only",
            error=failure.getErrorMessage(),
            count=records,
        )

    def _write_reports(self, reports: list[Report]) -> None:
        lines = [_report_line(r) for r in reports]
        self._written += len(lines)
        self._lines += len(lines)
        self._submit(lambda: self._append(lines), len(lines))

    def _write_done(self, count: int) -> None:
        self._done += count
        if self._done >= self._written and not self.pending:
            self._written = self._done = self._lines = 0
            self._submit(self._truncate, 0)
            return
        line = json.dumps({"done": self._done}).encode() + b"\n"
        self._lines += 1
        self._submit(lambda: self._append([line]), 1)
        if self._lines - len(self.pending) > self.COMPACT_SLACK:
            lines = [_report_line(r) for r in self.pending]
            self._written = self._lines = len(lines)
            self._done = 0
            self._submit(lambda: self._compact(lines), len(lines))

    def close(self) -> "defer.Deferred[None]":
        """Fires once every change so far is on disk and the file is closed."""
        return self.run_blocking(self._file.close)

    # -- jobs: blocking, run by ``run_blocking`` one at a time -----------------------------
    def _append(self, lines: list[bytes]) -> None:
        self._file.write(b"".join(lines))
        self._file.flush()
        os.fsync(self._file.fileno())

    def _truncate(self) -> None:
        self._file.truncate(0)
        self._file.flush()
        os.fsync(self._file.fileno())

    def _compact(self, lines: list[bytes]) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(b"".join(lines))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(os.path.dirname(os.path.abspath(self.path)))
        self._file.close()
        self._file = open(self.path, "ab")


def _report_line(report: Report) -> bytes:
    return json.dumps({"r": report.to_wire()}, separators=(",", ":")).encode() + b"\n"


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _oldest(count: int) -> str:
    """``the oldest undelivered report`` / ``the 12 oldest undelivered reports``."""
    return "the oldest undelivered report" if count == 1 else f"the {count:,} oldest undelivered reports"
