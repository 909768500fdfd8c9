"""The monitor service: runs every configured plugin on its schedule and forwards the results.

It is a plain ``twisted.application.service.Service`` so ``twistd overcli-monitor`` and
``overcli monitor`` run the very same object; both build it through :func:`build_monitor`.
Each service has its own timer (no global tick): a run is scheduled from the previous run's
start and duration (``overc.agent.schedule``), waits for a concurrency slot in the
``PluginRunner``, and its report goes to the ``Forwarder`` which batches and spools.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Mapping

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from overc.agent import schedule
from overc.agent.client import Endpoint, OvercClient, Refused, Unreachable
from overc.agent.config import MonitorConfig, ServiceConfig
from overc.agent.forwarder import Forwarder
from overc.agent.logs import plural, version
from overc.agent.plugin_runner import PluginRunner
from overc.agent.results import Report
from overc.agent.spool import FileSpool, InThread, MemorySpool, SpoolError, run_here
from overc.core.schedule import next_time

log = Logger()

#: Seconds the fatal-error alert may take; the monitor is going down anyway.
ALERT_TIMEOUT = 10.0


def failure_message(failure: Failure) -> str:
    """``Monitoring failure: ValueError: ...``: the ``api`` alert text for a fatal error."""
    value = failure.value
    text = str(value).strip()
    return f"Monitoring failure: {type(value).__name__}" + (f": {text}" if text else "")


class Monitor(Service):
    """Schedules plugin runs per service and hands their reports to the forwarder."""

    name = "overcli-monitor"

    def __init__(
        self,
        config: MonitorConfig,
        client: OvercClient,
        clock,
        runner: PluginRunner,
        forwarder: Forwarder,
        on_fatal: Callable[[Failure], None] | None = None,
        chdir: bool = False,
        log_runs: bool = True,
    ) -> None:
        self.config = config
        self.chdir = chdir
        self.log_runs = log_runs
        self.client = client
        self.clock = clock
        self.runner = runner
        self.forwarder = forwarder
        self.on_fatal = on_fatal
        self.forwarder.on_fatal = self.fatal
        self.timers: dict[str, IDelayedCall] = {}
        self.runs = 0
        self.states: dict[str, str] = {}
        self.failed: Failure | None = None

    def startService(self) -> None:
        super().startService()
        if self.chdir:
            # Plugins run in the config file's folder. When that is our own working folder,
            # Twisted can use posix_spawn instead of fork + exec: far cheaper per run. Entry
            # points ask for this; it changes the whole process, so a library user need not.
            os.chdir(self.config.folder)
        log.info(
            "OverC monitor {version}: {services} from {path} as {name!r}, reporting to {url}",
            version=version(),
            services=plural(len(self.config.services), "service"),
            count=len(self.config.services),
            path=self.config.path,
            name=self.client.endpoint.name,
            url=self.client.endpoint.base_url,
        )
        defer.Deferred.fromCoroutine(self._hello()).addErrback(self.fatal)
        now = self.clock.seconds()
        for svc in self.config.services:
            # A scheduled service (a nightly backup) waits for its time; the others run now.
            first = 0.0 if svc.schedule is None else next_time(svc.schedule, svc.tz or "UTC", now) - now
            self._schedule(svc, first)

    async def _hello(self) -> None:
        """Ping once at start, only to tell the log whether the server is there and takes our key."""
        try:
            await self.client.ping()
            log.info("Server {url} answers and accepts our key", url=self.client.endpoint.base_url)
        except Unreachable as e:
            log.warn("Server not reachable yet ({reason}); plugins keep running, reports are spooled", reason=e.message)
        except Refused as e:
            log.error("Server refuses us: {reason}; reports will be refused too", reason=str(e))

    async def _stop(self) -> None:
        for call in self.timers.values():
            if call.active():
                call.cancel()
        self.timers.clear()
        await self.forwarder.stop()
        self.runner.close()
        log.info(
            "Monitor stopped after {runs}; {queued} in the spool for the next start",
            runs=plural(self.runs, "plugin run"),
            queued=plural(len(self.forwarder.spool), "report"),
        )

    def stopService(self) -> defer.Deferred[None]:
        super().stopService()
        return defer.Deferred.fromCoroutine(self._stop())

    def _schedule(self, svc: ServiceConfig, delay: float) -> None:
        self.timers[svc.name] = self.clock.callLater(max(delay, 0.0), self._fire, svc)

    def _fire(self, svc: ServiceConfig) -> None:
        self.timers.pop(svc.name, None)
        defer.Deferred.fromCoroutine(self.run_service(svc)).addErrback(self.fatal)

    async def run_service(self, svc: ServiceConfig) -> None:
        """Run one service's plugin once, forward its report, schedule its next run."""
        result = await self.runner.run(svc.plugin_spec())
        if not self.running:
            return  # stopping: the spool is closed, the next run will report
        self.runs += 1
        outcome = result.outcome
        if self.log_runs:  # even a debug event nobody shows goes through every observer
            log.debug(
                "{service}: {state} in {duration:.3f} s: {info}",
                service=svc.name,
                state=outcome.state,
                duration=result.finished - result.started,
                info=outcome.info[:200],
            )
        self._note_state(svc.name, outcome.state, outcome.info)
        self.forwarder.submit([Report(svc.name, outcome.state, outcome.info, svc.period, result.finished,
                                      svc.schedule, svc.tz, result.finished - result.started)])
        if svc.schedule is not None:
            at = next_time(svc.schedule, svc.tz or "UTC", max(result.finished, self.clock.seconds()))
        else:
            at = schedule.next_start(result.started, result.finished, svc.period, svc.max_lag)
        self._schedule(svc, at - self.clock.seconds())

    def _note_state(self, service: str, state: str, info: str) -> None:
        """Log a service's state at info level when it changes (and a first state that is not OK)."""
        before = self.states.get(service)
        if before == state:
            return
        self.states[service] = state
        first_line = info.split("\n", 1)[0][:200]
        detail = f": {first_line}" if first_line else ""
        if before is None:
            if state != "OK":
                log.info("{service} is {state}{detail}", service=service, state=state, detail=detail, info=first_line)
        else:
            log.info("{service}: {before} -> {state}{detail}", service=service, before=before, state=state, detail=detail, info=first_line)

    def fatal(self, failure: Failure) -> None:
        """A bug or a broken environment: log it, tell the server, stop."""
        if self.failed is not None:
            return
        self.failed = failure
        log.failure("Fatal error in the monitor", failure)
        d = defer.Deferred.fromCoroutine(send_failure_alert(self.client, failure_message(failure)))
        on_fatal = self.on_fatal
        if on_fatal is not None:

            def alert_sent(_: object) -> None:
                on_fatal(failure)

            d.addBoth(alert_sent)


async def send_failure_alert(client: OvercClient, message: str, quiet: bool = False) -> None:
    """Send ``Monitoring failure: ...`` as an ``api`` alert if the server can be reached.

    ``quiet``: failing to send it is logged at info level, not as an error (the caller reports
    the failure itself).
    """
    quick = OvercClient(client.http, client.clock, client.endpoint, min(client.timeout, ALERT_TIMEOUT))
    try:
        await quick.set_alerts([{"message": message[:65536]}])
        log.info("Sent alert: {message}", message=message)
    except (Unreachable, Refused) as e:
        log.emit(
            LogLevel.info if quiet else LogLevel.error,
            "Could not send alert {message!r}: {reason}",
            message=message,
            reason=str(e),
        )


def open_spool(config: MonitorConfig, env: Mapping[str, str] | None = None, reactor: Any = None) -> MemorySpool:
    """The spool for this config: a file when possible.

    An explicit ``spool`` that cannot be written is an error (the user asked for it); the
    default location (systemd's ``$STATE_DIRECTORY``, else beside the config file) falls back to
    memory with a warning, so a 1.x config in a read-only folder keeps working. With a
    ``reactor`` the file is written on its thread pool (:class:`~overc.agent.spool.InThread`).
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    state_dir = (environ.get("STATE_DIRECTORY") or "").split(":")[0] or None
    path = config.spool_path(state_dir)
    try:
        return FileSpool(path, config.spool_size, run_here if reactor is None else InThread(reactor))
    except SpoolError as e:
        if config.spool is not None:
            raise
        log.warn("{error}; undelivered reports are kept in memory only (set [overc] spool)", error=str(e))
        return MemorySpool(config.spool_size)


def build_monitor(
    config: MonitorConfig,
    endpoint: Endpoint,
    reactor: Any,
    http: Any,
    spool: MemorySpool | None = None,
    on_fatal: Callable[[Failure], None] | None = None,
    chdir: bool = False,
    log_runs: bool = True,
) -> Monitor:
    """The composition root of the agent: client, runner, spool, forwarder, monitor."""
    client = OvercClient(http, reactor, endpoint)
    runner = PluginRunner(reactor, concurrency=config.concurrency)
    forwarder = Forwarder(client, reactor, spool if spool is not None else open_spool(config, reactor=reactor))
    return Monitor(config, client, reactor, runner, forwarder, on_fatal, chdir, log_runs)
