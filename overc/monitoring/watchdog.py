"""The watchdog (SPEC 2): finds services whose deadline passed, marks them stale, raises one
``offline`` alert each, and gives overdue services a fresh period when OverC was away.

It runs in every OverC process; the store serializes ticks through the database, so each stale
transition happens once however many processes share it. Each tick reads the ``(stale,
deadline)`` index, so its cost follows the services that expire, not the services that exist.
"""
from __future__ import annotations

from typing import Any, Callable

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from overc.core.counters import Counters
from overc.core.durations import Grace
from overc.core.watchdog_rules import away_threshold
from overc.runtime.repeating import RepeatingJob
from overc.storage.watchdog_store import TickResult, WatchdogStore

log = Logger()


class Watchdog(RepeatingJob):
    def __init__(self, store: WatchdogStore, clock: IReactorTime, *, counters: Counters,
                 interval: float = 1.0, grace: Grace = Grace(), batch: int = 5000,
                 on_expired: Callable[[TickResult], None] | None = None) -> None:
        super().__init__("watchdog", self.tick, clock, interval)
        self.store = store
        self.grace = grace
        self.batch = batch
        self.on_expired = on_expired
        self.counters = counters
        self.expired_total = 0
        self.refreshed_total = 0
        self.timeouts_total = 0
        #: Pushes this process answered 503 (database unavailable) as of its last good tick.
        self._refused_seen = self._refused()

    def _refused(self) -> float:
        return self.counters.value("push_requests", status="503")

    async def tick(self) -> TickResult:
        """One tick; a full batch means a storm: go on until the backlog is gone."""
        while True:
            now = self.clock.seconds()
            # A failed tick before this one, or pushes turned away meanwhile: this process lost
            # its database, however briefly, and agents that got a 503 are on their backoff.
            # Asked inside the transaction (a pool thread; Counters is thread-safe): a tick
            # that retried through a short outage must see the pushes refused meanwhile.
            seen: list[tuple[float, bool]] = []

            def turned_away() -> bool:
                refused = self._refused()
                verdict = self.last_error is not None or refused > self._refused_seen
                seen.append((refused, verdict))
                return verdict

            result = await self.store.watchdog_tick(
                now, interval=self.interval, grace=self.grace, limit=self.batch,
                turned_away=turned_away,
            )
            turned = bool(seen) and seen[-1][1]
            if seen:
                self._refused_seen = seen[-1][0]
            if result.away_since is not None and result.away_since > 0:
                log.info(
                    "Nobody watched for {gap:.0f} s (OverC or its database was down"
                    "{refused}): {count} overdue services get a fresh period",
                    gap=now - result.away_since, count=result.refreshed,
                    refused=", pushes were turned away" if turned else "",
                )
                self.refreshed_total += result.refreshed
            elif result.away_since is not None:  # a new database: never watched before
                if result.refreshed:
                    log.info("First watch of this database: {count} overdue services get a"
                             " fresh period", count=result.refreshed)
                self.refreshed_total += result.refreshed
            if result.expired:
                self.expired_total += len(result.expired)
                self.counters.inc("alerts", len(result.expired))  # committed offline alerts
                log.info("{count} services missed their period", count=len(result.expired))
                if self.on_expired is not None:
                    self.on_expired(result)
            if result.timeouts:
                self._timed_out(result)
            servers = result.servers
            if servers.alerts:
                self.counters.inc("alerts", servers.alerts)  # committed server alerts
                if servers.offline or servers.online:
                    log.info("{down} servers went offline, {up} came back",
                             down=len(servers.offline), up=len(servers.online))
                if self.on_expired is not None and not result.expired and not result.timeouts:
                    self.on_expired(result)
            if (len(result.expired) < self.batch and len(result.timeouts) < self.batch
                    and max(len(servers.offline), len(servers.online),
                            len(servers.rechecked)) < self.batch):
                return result

    def _timed_out(self, result: TickResult) -> None:
        """Runs that did not report within timeout + grace: one `timeout` alert each."""
        self.timeouts_total += len(result.timeouts)
        self.counters.inc("alerts", len(result.timeouts))  # committed timeout alerts
        log.info("{count} runs did not finish in time", count=len(result.timeouts))
        if self.on_expired is not None and not result.expired:
            self.on_expired(result)

    def status(self) -> dict[str, Any]:
        """For ``/healthz``: ok while ticks succeed; the time of the last successful one."""
        now = self.clock.seconds()
        since = self.last_ok if self.last_ok is not None else self.started_at
        ok = since is not None and now - since <= away_threshold(self.interval)
        return {
            "ok": ok,
            "last_tick": self.last_ok,
            "last_error": self.last_error,
            "interval": self.interval,
            "expired": self.expired_total,
        }
