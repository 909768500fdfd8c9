"""A repeating job on an injected clock that survives its own failures.

An unhandled error stops a ``LoopingCall`` for good, and a watchdog that silently stopped is
the worst failure a monitoring system can have: every run is caught and logged here, and the
loop goes on. Runs never overlap (the loop waits for the previous one).
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable

from twisted.application.service import Service
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from overc.core.errors import DatabaseUnavailable


class RepeatingJob(Service):
    """Run ``job()`` every ``interval`` seconds from start; remember the last success."""

    log = Logger()

    def __init__(self, name: str, job: Callable[[], Awaitable[Any]], clock: IReactorTime,
                 interval: float, ready: Callable[[], bool] | None = None) -> None:
        self.setName(name)
        #: While this says False (database not migrated yet) runs are skipped quietly.
        self.ready = ready
        self.job = job
        self.clock = clock
        self.interval = interval
        self.last_ok: float | None = None
        self.last_error: str | None = None
        self.failures = 0
        self._loop: LoopingCall | None = None
        self._running: Deferred[None] | None = None
        self._kicked: IDelayedCall | None = None
        self.started_at: float | None = None

    def startService(self) -> None:
        super().startService()
        self.started_at = self.clock.seconds()
        self._loop = LoopingCall(self._run)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=True)

    def stopService(self) -> Deferred | None:
        super().stopService()
        if self._kicked is not None and self._kicked.active():
            self._kicked.cancel()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._running is not None:
            waiting: Deferred[None] = Deferred()

            def release(result: object) -> object:
                waiting.callback(None)
                return result

            self._running.addBoth(release)
            return waiting
        return None

    def kick(self) -> None:
        """Run again soon (coalesced), e.g. because new work just appeared."""
        if self.running and (self._kicked is None or not self._kicked.active()):
            self._kicked = self.clock.callLater(0, self._run)

    def _run(self) -> Deferred[None]:
        if self._running is not None:
            return self._running
        d = ensureDeferred(self._guarded())
        self._running = d

        def done(result: object) -> object:
            self._running = None
            return result

        d.addBoth(done)
        return d

    async def _guarded(self) -> None:
        if self.ready is not None and not self.ready():
            return
        try:
            await self.job()
        except DatabaseUnavailable as e:
            self.failures += 1
            self.last_error = f"database unavailable: {e}"
            self.log.warn("{job}: database unavailable ({error}); retrying next tick",
                          job=self.name, error=str(e))
        except Exception as e:
            self.failures += 1
            self.last_error = f"{type(e).__name__}: {e}"
            self.log.failure("{job} failed; retrying next tick", job=self.name)
        else:
            self.last_ok = self.clock.seconds()
            self.last_error = None
