"""Group commit: many concurrent requests, one transaction.

Each push request submits its work and waits; while a transaction is in flight, new work
queues up and goes into the next one together. Every waiter is answered only after the
transaction holding its work has committed, so a 200 still means "committed", but N requests
cost one commit (one fsync) instead of N.

A batch that meets a write conflict (1213: a deadlock, or Galera's certification failure at
COMMIT, which no request causes) is not the fault of any of its requests: the database layer
runs the whole transaction again with a backoff, and if the conflicts outlast every retry the
batch fails as one 503 (DatabaseUnavailable), never split into single commits that would only
conflict more. Only an error a request can cause (bad data) splits the batch to find it.
"""
from __future__ import annotations

from typing import Awaitable, Callable, Generic, TypeVar

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from overc.core.errors import DatabaseUnavailable

Item = TypeVar("Item")
log = Logger()


class GroupCommit(Generic[Item]):
    """Batch ``submit``\\ ted items into calls of ``commit(items) -> [error or None per item]``.

    ``gather``: seconds each batch waits for more items before it starts (:meth:`_schedule`);
    with ``gather_share``, it waits that share of a recent transaction's duration instead, but
    never longer than ``gather``.
    """

    def __init__(
        self,
        commit: Callable[[list[Item]], Awaitable[list[Exception | None]]],
        clock: IReactorTime | None = None,
        *,
        max_batch: int = 1000,
        max_in_flight: int = 1,
        gather: float = 0.0,
        gather_share: float = 0.0,
    ) -> None:
        self._commit = commit
        self._clock = clock
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._gather = gather
        self._gather_share = gather_share
        #: A moving average of the transactions' durations (seconds), for ``gather_share``.
        self.duration = gather
        self._queue: list[tuple[Item, Deferred[None]]] = []
        self._in_flight = 0
        self._scheduled = False
        self.batches = 0
        self.items = 0

    def status(self) -> dict:
        """For /healthz: how well requests are being grouped."""
        average = self.items / self.batches if self.batches else 0.0
        return {"ok": True, "batches": self.batches, "reports_per_batch": round(average, 1),
                "queued": len(self._queue)}

    def submit(self, item: Item) -> Deferred[None]:
        """Fires with None once ``item`` is committed, or fails with its error."""
        waiter: Deferred[None] = Deferred()
        self._queue.append((item, waiter))
        self._schedule()
        return waiter

    def _schedule(self) -> None:
        """Start the next batch ``gather`` seconds from now, once the reactor has read what is
        waiting and what arrives meanwhile.

        Starting at once would commit the first request alone while the others that arrived
        in the same reactor iteration wait for a second transaction: even ``gather = 0`` (one
        ``callLater(0)``) lets them all in. A few milliseconds more after every transaction,
        as PostgreSQL's ``commit_delay`` waits for more commits to share a WAL flush, pay
        for themselves under load: the reactor parses requests without the pool thread taking
        the GIL from it at every round trip, and a larger batch costs less per request in
        the process and in the database (bench/RESULTS.md). A lone push waits that long.
        With ``gather_share`` the wait follows the transactions (a moving average of their
        durations): a wait sized for a slow disk idled half of every cycle on a fast one.
        Counting from the first queued item instead, as ``commit_delay`` does, gained nothing
        here: under load that item has waited out the delay during the previous transaction.
        Without a clock (tests) the batch starts at once.
        """
        if self._clock is None:
            self._pump()
        elif not self._scheduled and self._in_flight < self._max_in_flight:
            self._scheduled = True
            delay = self._gather
            if self._gather_share:
                delay = min(delay, self._gather_share * self.duration)
            self._clock.callLater(delay, self._scheduled_pump)

    def _scheduled_pump(self) -> None:
        self._scheduled = False
        self._pump()

    def _pump(self) -> None:
        while self._queue and self._in_flight < self._max_in_flight:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            self._in_flight += 1
            ensureDeferred(self._run(batch))

    async def _run(self, batch: list[tuple[Item, Deferred[None]]]) -> None:
        started = self._clock.seconds() if self._clock is not None else 0.0
        try:
            outcomes = await self._settle([item for item, _ in batch])
            if self._clock is not None:
                self.duration += 0.2 * (self._clock.seconds() - started - self.duration)
        finally:
            self._in_flight -= 1
            self.batches += 1
            self.items += len(batch)
        for (_, waiter), outcome in zip(batch, outcomes):
            if outcome is None:
                waiter.callback(None)
            else:
                waiter.errback(outcome)
        self._schedule()

    async def _settle(self, items: list[Item]) -> list[Exception | None]:
        """Commit the batch; if it fails as a whole, find out which items are to blame."""
        try:
            return list(await self._commit(items))
        except Exception as error:
            if len(items) == 1 or not _worth_splitting(error):
                return [error] * len(items)
            log.warn("A batch of {n} failed ({error!r}); committing its items one by one",
                     n=len(items), error=error)
            outcomes: list[Exception | None] = []
            for item in items:
                try:
                    outcomes.extend(await self._commit([item]))
                except Exception as single:
                    outcomes.append(single)
            return outcomes


def _worth_splitting(error: Exception) -> bool:
    """Unavailable, busy (conflicts beyond every retry), in doubt: no item is to blame."""
    return not isinstance(error, DatabaseUnavailable)
