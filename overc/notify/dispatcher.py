"""The dispatcher: turns alerts into notifications and delivers them, in every OverC process.

Each run (1) dispatches new alerts in one transaction (grouping, silences, repeats: see
:mod:`overc.storage.dispatch_store`), then (2) leases as many due notifications as it has free
delivery slots and delivers them in parallel. Leases live in the database, so two processes
never deliver the same notification, and one killed mid-delivery only delays it until its
lease expires. Failures are retried on the backoff schedule; a channel that fails for good
raises an ``internal`` alert that goes to the other channels.
"""
from __future__ import annotations

import os
import socket
import uuid
from typing import Any, Sequence

from twisted.internet.defer import Deferred, DeferredList, ensureDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from overc.core.alerts import INTERNAL
from overc.core.counters import Counters
from overc.core.routing import next_attempt
from overc.notify.base import Channel
from overc.runtime.repeating import RepeatingJob
from overc.storage.delivery_store import Claimed, DeliveryStore
from overc.storage.dispatch_store import DispatchStore

log = Logger()


def process_owner() -> str:
    """A name for this process in lease columns: readable, and unique across restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Dispatcher(RepeatingJob):
    def __init__(self, dispatch: DispatchStore, delivery: DeliveryStore, clock: IReactorTime,
                 channels: Sequence[Channel], *, counters: Counters, interval: float = 1.0,
                 max_in_flight: int = 16, batch: int = 1000, owner: str | None = None,
                 stop_grace: float = 5.0) -> None:
        super().__init__("notifications", self.run_once, clock, interval)
        self.dispatch_store = dispatch
        self.delivery_store = delivery
        self.channels = {channel.spec.name: channel for channel in channels}
        self.routes = [channel.spec.route for channel in channels]
        self.leases = {channel.spec.name: channel.spec.lease for channel in channels}
        self.max_in_flight = max_in_flight
        self.batch = batch
        self.owner = owner or process_owner()
        self.stop_grace = stop_grace
        self.metrics = counters
        self.in_flight: dict[int, Deferred] = {}
        self.peak_in_flight = 0
        self.counts = {"sent": 0, "retry": 0, "failed": 0, "lost": 0}
        self._reserved = 0  # slots promised to a claim that is still in the database
        self._refill: IDelayedCall | None = None

    async def run_once(self) -> int:
        """Dispatch what is new, then start deliveries; return how many were started."""
        for _ in range(20):
            result = await self.dispatch_store.dispatch(self.clock.seconds(), self.routes,
                                               limit=self.batch)
            if not result.more:
                break
        return await self._fill()

    async def _fill(self) -> int:
        """Lease due notifications for the free delivery slots and start them."""
        free = self.max_in_flight - len(self.in_flight) - self._reserved
        if free <= 0:
            return 0
        self._reserved += free
        try:
            claimed = await self.delivery_store.claim(self.clock.seconds(), self.owner,
                                                      self.leases, free)
        finally:
            self._reserved -= free
        for item in claimed:
            self.in_flight[item.id] = ensureDeferred(self._deliver(item))
        self.peak_in_flight = max(self.peak_in_flight, len(self.in_flight))
        return len(claimed)

    def _schedule_fill(self) -> None:
        """A slot came free: claim more soon (coalesced), without a whole dispatch run."""
        if not self.running or (self._refill is not None and self._refill.active()):
            return

        def fill() -> None:
            d = ensureDeferred(self._fill())
            d.addErrback(lambda f: log.failure("Could not claim notifications", f))

        self._refill = self.clock.callLater(0, fill)

    async def _deliver(self, item: Claimed) -> None:
        channel = self.channels[item.channel]
        spec = channel.spec
        error: str | None = None
        try:
            await channel.send(item.alerts, item.kind, item.id)
        except Exception as e:
            error = str(e) or type(e).__name__
        try:
            now = self.clock.seconds()
            retry_at = None if error is None else next_attempt(now, item.attempts, spec.retries)
            internal = None
            if error is not None and retry_at is None:
                if not all(a.kind == INTERNAL for a in item.alerts):
                    internal = (
                        f'Channel "{spec.name}" failed for good after {item.attempts} attempts:'
                        f" {error} ({len(item.alerts)} alert(s) of {item.alerts[0].server_name}"
                        " not delivered through it)"
                    )
            kept = await self.delivery_store.finish(item, self.owner, now, error=error,
                                           retry_at=retry_at, internal_message=internal)
            result = ("lost" if not kept else "sent" if error is None
                      else "retry" if retry_at is not None else "failed")
            self.metrics.inc("notifications", result=result, channel=spec.name)
            if internal is not None and kept:
                self.metrics.inc("alerts")
            if not kept:
                self.counts["lost"] += 1
                log.warn("Lost the lease of notification {id} on {channel} before it finished",
                         id=item.id, channel=spec.name)
            elif error is None:
                self.counts["sent"] += 1
            elif retry_at is not None:
                self.counts["retry"] += 1
                log.warn("Channel {channel} failed (attempt {n}): {error}; retry in {delay:.0f} s",
                         channel=spec.name, n=item.attempts, error=error, delay=retry_at - now)
            else:
                self.counts["failed"] += 1
                log.error("Channel {channel} failed for good after {n} attempts: {error}",
                          channel=spec.name, n=item.attempts, error=error)
        except Exception:
            # The lease expires and another attempt follows: nothing is lost.
            log.failure("Could not record the outcome of notification {id}", id=item.id)
        finally:
            self.in_flight.pop(item.id, None)
            self._schedule_fill()

    def stopService(self) -> Deferred[Any] | None:
        """Give running deliveries a few seconds to finish and be recorded; whatever is still
        running keeps its lease and is delivered again by a process that runs on."""
        if self._refill is not None and self._refill.active():
            self._refill.cancel()
        stopping = super().stopService()
        waits = [d for d in self.in_flight.values()]
        if stopping is not None:
            waits.append(stopping)
        if not waits:
            return None
        done = DeferredList(waits, consumeErrors=True)
        done.addTimeout(self.stop_grace, self.clock)
        done.addErrback(lambda f: log.warn(
            "Stopping with {n} deliveries unfinished; their leases will expire", n=len(waits)))
        return done

    def status(self) -> dict:
        return {
            "ok": self.last_error is None,
            "last_run": self.last_ok,
            "last_error": self.last_error,
            "in_flight": len(self.in_flight),
            **self.counts,
        }
