"""Store-and-forward delivery of reports: batching, ordering, spooling and backoff.

One sender loop owns the connection to the server, so reports arrive in the order they were
made. While the server takes reports, they wait only in memory for a short batching window
(results that finish close together share one POST). When a POST cannot be delivered
(:class:`~overc.agent.client.Unreachable`) that batch and everything behind it goes to the
spool, and from then on new reports are appended to the spool too, until the loop has drained
it with exponential backoff. Invariant: while the spool holds anything, the memory queue is
empty, which is what keeps the order.

A refusal (:class:`~overc.agent.client.Refused`, a 4xx other than 429) cannot be fixed by
retrying: the batch is logged and dropped, except that when the server names one offending
report (``field = services[i]...``) only that report is dropped and the rest is resent.
"""
from __future__ import annotations

import re
from collections import deque
from typing import Callable, Iterable, Iterator

from twisted.internet import defer, task
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from overc.agent.client import OvercClient, Refused, Unreachable
from overc.agent.logs import plural
from overc.agent.results import Report
from overc.agent.spool import MemorySpool
from overc.core.retry import AGENT_BACKOFF_MAX

log = Logger()

#: Seconds results wait for others before a POST (SPEC 7: close results share one POST).
BATCH_WINDOW = 0.2

#: Reports per POST: the server takes up to 1,000 services per request and 1 MiB of body.
MAX_BATCH = 500
MAX_BATCH_BYTES = 512 * 1024

BACKOFF_START = 1.0
BACKOFF_MAX = AGENT_BACKOFF_MAX  # the server's watchdog counts on it (overc.core.retry)


def backoff_delays(start: float = BACKOFF_START, cap: float = BACKOFF_MAX) -> Iterator[float]:
    """1, 2, 4, ... capped at 60 seconds: the wait after each consecutive failure."""
    delay = start
    while True:
        yield delay
        delay = min(delay * 2, cap)


def take_batch(reports: Iterable[Report], max_count: int = MAX_BATCH, max_bytes: int = MAX_BATCH_BYTES) -> int:
    """How many of the leading reports fit in one POST (at least one)."""
    count = size = 0
    for report in reports:
        size += len(report.info.encode("utf-8", "replace")) + len(report.name) + 64
        if count and (count >= max_count or size > max_bytes):
            break
        count += 1
    return count


_FIELD_INDEX = re.compile(r"^services\[(\d+)\]")


def offending_index(refusal: Refused, batch_size: int) -> int | None:
    """Which report of the batch the server blamed, if it named exactly one."""
    match = _FIELD_INDEX.match(refusal.field or "")
    if match and int(match.group(1)) < batch_size:
        return int(match.group(1))
    return None


class Forwarder:
    """Accepts reports with :meth:`submit` and delivers each once, in order, eventually."""

    def __init__(
        self,
        client: OvercClient,
        clock,
        spool: MemorySpool | None = None,
        batch_window: float = BATCH_WINDOW,
        on_fatal: Callable[[Failure], None] | None = None,
    ) -> None:
        self.client = client
        self.on_fatal = on_fatal
        self.clock = clock
        self.spool = spool if spool is not None else MemorySpool()
        self.batch_window = batch_window
        self.memory: deque[Report] = deque()
        self.delivered = 0
        self.refused = 0
        self.posts = 0
        self._loop: defer.Deferred | None = None
        self._wake: defer.Deferred | None = None
        self._delays = backoff_delays()
        self._stopping = False
        self._down: str | None = None  # why the server cannot be reached, while it cannot
        self._failures = 0

    # -- public --------------------------------------------------------------------------
    def submit(self, reports: Iterable[Report]) -> None:
        reports = list(reports)
        if not reports:
            return
        if len(self.spool) or self._stopping:
            self._spool(reports)
        else:
            self.memory.extend(reports)
        self._start()

    async def stop(self) -> None:
        """Finish the POST in flight, keep everything else in the spool for the next run."""
        self._stopping = True
        if self._wake is not None and not self._wake.called:
            self._wake.cancel()
        if self._loop is not None:
            await self._loop
        if self.memory:
            self._spool(list(self.memory))
            self.memory.clear()
        await self.spool.close()  # every report is on disk before the agent goes

    # -- the sender loop -----------------------------------------------------------------
    def _spool(self, reports: list[Report]) -> None:
        # Queued at once; the spool writes its file off the reactor thread, and a disk that
        # cannot take it only costs the restart-safety of these reports (the spool logs it).
        self.spool.extend(reports)

    def _start(self) -> None:
        if self._loop is None and not self._stopping:
            self._loop = defer.Deferred.fromCoroutine(self._run())
            self._loop.addErrback(self._crashed)
            self._loop.addBoth(self._loop_ended)

    def _crashed(self, failure: Failure) -> None:
        """A bug in the loop: restarting it could spin, so it is the monitor's fatal error."""
        log.failure("Report sender crashed", failure)
        self._stopping = True
        if self.on_fatal is not None:
            self.on_fatal(failure)

    def _loop_ended(self, result: object) -> None:
        self._loop = None
        if (self.memory or len(self.spool)) and not self._stopping:
            self._start()

    async def _sleep(self, seconds: float) -> None:
        if self._stopping:
            return
        self._wake = task.deferLater(self.clock, seconds, lambda: None)
        try:
            await self._wake
        except defer.CancelledError:
            pass
        finally:
            self._wake = None

    async def _run(self) -> None:
        if not len(self.spool) and self.batch_window > 0:
            await self._sleep(self.batch_window)
        while not self._stopping:
            from_spool = bool(len(self.spool))
            if from_spool:
                candidates = self.spool.peek(MAX_BATCH)
            else:
                candidates = list(self.memory)[:MAX_BATCH]
            if not candidates:
                return
            batch = candidates[: take_batch(candidates)]
            if not from_spool:
                for _ in batch:
                    self.memory.popleft()
            took_all = not from_spool and not self.memory
            try:
                self.posts += 1
                # Reports sent late carry their original time; fresh ones take the server's clock.
                await self.client.set_service_status(batch, with_time=from_spool)
            except Unreachable as e:
                if not from_spool:
                    self._spool(batch + list(self.memory))
                    self.memory.clear()
                delay = next(self._delays)
                if e.retry_after is not None:
                    delay = min(max(delay, e.retry_after), 300.0)
                self._failures += 1
                # The first failure, or a new reason, is news; the same one again is debug detail.
                log.emit(
                    LogLevel.warn if e.message != self._down else LogLevel.debug,
                    "Cannot deliver {reports} ({reason}); {queued} in the spool, retrying in {delay:g} s",
                    reports=plural(len(batch), "report"),
                    count=len(batch),
                    reason=e.message,
                    queued=plural(len(self.spool), "report"),
                    delay=delay,
                )
                self._down = e.message
                await self._sleep(delay)
                continue
            except Refused as refusal:
                self._delays = backoff_delays()
                self._back_up()
                bad = offending_index(refusal, len(batch))
                if bad is not None and len(batch) > 1:
                    self._drop_one(batch, bad, from_spool, refusal)
                    continue
                self.refused += len(batch)
                log.error(
                    "Server refused {reports} ({reason}); dropped: retrying cannot help",
                    reports=plural(len(batch), "report"),
                    count=len(batch),
                    reason=str(refusal),
                )
                if from_spool:
                    self.spool.remove(len(batch))
                continue
            self._delays = backoff_delays()
            self._back_up()
            self.delivered += len(batch)
            if from_spool:
                self.spool.remove(len(batch))
                if not len(self.spool):
                    log.info("Spool drained: every queued report is delivered")
            elif took_all and self.memory and self.batch_window > 0:
                # These reports arrived while the POST was in flight: they get a batching window
                # of their own. During a burst of runs that makes one POST per window instead
                # of one per round trip (a POST costs the agent far more CPU than a report).
                await self._sleep(self.batch_window)

    def _back_up(self) -> None:
        """The server answered: end of an outage, if there was one."""
        if self._down is not None:
            log.info("Server answers again after {failures}", failures=plural(self._failures, "failed attempt"))
            self._down, self._failures = None, 0

    def _drop_one(self, batch: list[Report], index: int, from_spool: bool, refusal: Refused) -> None:
        """Drop the one report the server blamed; put the others back at the front."""
        self.refused += 1
        log.error("Server refused report {name!r} ({reason}); dropped", name=batch[index].name, reason=str(refusal))
        rest = batch[:index] + batch[index + 1 :]
        if from_spool:
            # Rewrite the head of the spool: remove the batch, then the survivors go first.
            tail = list(self.spool.pending)[len(batch) :]
            self.spool.remove(len(self.spool))
            self._spool(rest + tail)
        else:
            self.memory.extendleft(reversed(rest))
