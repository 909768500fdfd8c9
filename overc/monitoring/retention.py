"""Retention (SPEC 4): history, alerts and finished notifications older than ``retention`` are
deleted in small batches, one short transaction each, so ingest never waits behind a purge.
"""
from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from overc.runtime.repeating import RepeatingJob
from overc.storage.retention_store import HISTORY, RetentionStore

log = Logger()


class Retention(RepeatingJob):
    def __init__(self, store: RetentionStore, clock: IReactorTime, *, retention: float,
                 interval: float = 60.0, batch: int = 1000, max_batches: int = 50,
                 pause: float = 0.05) -> None:
        super().__init__("retention", self.purge, clock, interval)
        self.store = store
        self.retention = retention
        self.batch = batch
        self.max_batches = max_batches
        self.pause = pause
        self.deleted_total = 0

    async def purge(self) -> dict[str, int]:
        """One run: up to ``max_batches`` batches per table, a short pause between batches."""
        cutoff = self.clock.seconds() - self.retention
        deleted: dict[str, int] = {}
        for table in HISTORY:
            total = 0
            for _ in range(self.max_batches):
                count = await self.store.purge(cutoff, table, self.batch)
                total += count
                if count < self.batch:
                    break
                await _sleep(self.clock, self.pause)
            deleted[table] = total
        if any(deleted.values()):
            self.deleted_total += sum(deleted.values())
            log.info("Retention deleted {deleted}", deleted=deleted)
        return deleted


def _sleep(clock: IReactorTime, seconds: float) -> Deferred[None]:
    d: Deferred[None] = Deferred()
    clock.callLater(seconds, d.callback, None)
    return d
