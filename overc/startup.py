"""Starting a server for real: listening, opening the database, and failing in one line.

A start-up failure (a busy port, a wrong database password) is a known cause, not a bug: it
gets one log line naming it and exit status 1 (supervisors restart on failure), never a
traceback. The composition root (:mod:`overc.tap`) builds its service tree from these parts.
"""
from __future__ import annotations

import atexit
import os
import sys
from typing import Any, Callable

from twisted.application import service
from twisted.application.internet import StreamServerEndpointService
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.error import CannotListenError
from twisted.logger import Logger

from overc import __version__
from overc.core.errors import DatabaseUnavailable, StartupRefused
from overc.storage.db import Database
from overc.workers import ReusePortService

log = Logger()


def failure_text(error: BaseException) -> str:
    """One line naming the cause of a start-up failure (no traceback: the cause is known)."""
    if isinstance(error, CannotListenError):
        reason = error.socketError
        text = getattr(reason, "strerror", None) or str(reason)
        return f"cannot listen on {error.interface or '*'}:{error.port}: {text}"
    if isinstance(error, StartupRefused):
        return str(error)  # a known reason, in its own words
    args: tuple[Any, ...] = tuple(getattr(error, "args", ()))
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        return f"{args[1]} (error {args[0]})"  # the database driver's (code, message)
    if isinstance(error, OSError) and error.strerror:
        return error.strerror + (f": {error.filename}" if error.filename else "")
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _exit_now(status: int) -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # noqa: BLE001 - exiting anyway
            pass
    os._exit(status)


class StartupFailure:
    """How the server ends when it cannot start: one log line naming the cause, exit status 1.

    twistd has no exit status of its own (a stopped reactor exits 0), so with
    ``exit_process`` (the entry points: the twistd plugin and ``overc.tac``) the process ends
    with status 1 once twistd has cleaned up; tests that build a server in-process keep theirs.
    """

    def __init__(self, reactor: Any, exit_process: bool = False) -> None:
        self.reactor = reactor
        self.exit_process = exit_process
        self.failed: str | None = None

    def record(self, what: str, error: BaseException) -> str:
        self.failed = f"{what}: {failure_text(error)}" if what else failure_text(error)
        log.critical("overc: {reason}; stopping", reason=self.failed)
        if self.exit_process:
            atexit.register(_exit_now, 1)
        return self.failed

    def __call__(self, what: str, error: BaseException) -> None:
        """A failure once the reactor runs (or is about to): record it and stop."""
        self.record(what, error)

        def stop() -> None:
            try:
                self.reactor.stop()
            except Exception:  # noqa: BLE001 - already stopping
                pass

        self.reactor.callWhenRunning(stop)


class ServerService(service.MultiService):
    """The server's top service: failing to listen is one line and a non-zero exit."""

    def __init__(self, fail: StartupFailure) -> None:
        super().__init__()
        self.fail = fail

    def privilegedStartService(self) -> None:
        try:
            super().privilegedStartService()
        except CannotListenError as error:
            self.fail.record("", error)
            if self.fail.exit_process:
                raise SystemExit(1) from None
            raise


def serving_url(address: Any, tls: bool = False) -> str:
    """``http://127.0.0.1:5000/`` for a listening port's address (``unix:PATH`` for a socket)."""
    host, port = getattr(address, "host", None), getattr(address, "port", None)
    if host is None or port is None:
        return f"unix:{getattr(address, 'name', address)}"
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}/"


def announce(address: Any, tls: bool = False) -> None:
    log.info("OverC {version} serving {url}", version=__version__,
             url=serving_url(address, tls))


class ListeningService(StreamServerEndpointService):
    """``strports.service`` that logs the version and the URL once the port is open."""

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        waiting = getattr(self, "_waitingForPort", None)
        if waiting is not None:
            tls = self.endpoint.__class__.__name__.startswith("SSL")

            def listening(port: Any) -> Any:
                announce(port.getHost(), tls)
                return port

            waiting.addCallback(listening)


class AnnouncedReusePortService(ReusePortService):
    """[overc] processes: joins the port once the database is ready; a bind error is fatal."""

    def __init__(self, *args: Any, fail: StartupFailure, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fail = fail

    def _listen(self) -> None:
        try:
            super()._listen()
        except OSError as error:
            self.fail(f"cannot listen on {self.host}:{self.port}", error)  # names the port
            return
        if self.listening is not None:
            announce(self.listening.getHost())


class DatabaseService(service.Service):
    """Opens the database, migrates it (retrying while it is unreachable), then says ready.

    Any other failure (a wrong password, a missing privilege, a failed migration) is fatal:
    ``fail`` logs it in one line and stops the server.
    """

    def __init__(self, db: Database, reactor: Any, retry_every: float = 2.0,
                 fail: Callable[[str, BaseException], None] | None = None) -> None:
        self.db = db
        self.reactor = reactor
        self.retry_every = retry_every
        self.fail = fail or StartupFailure(reactor)
        self.ready = False
        self._waiters: list[Deferred[None]] = []
        self._stopping = False

    def when_ready(self) -> Deferred[None]:
        """Fires once the schema is in place (at once if it already is)."""
        waiter: Deferred[None] = Deferred()
        if self.ready:
            waiter.callback(None)
        else:
            self._waiters.append(waiter)
        return waiter

    def startService(self) -> None:
        super().startService()
        ensureDeferred(self._open())

    async def _open(self) -> None:
        from twisted.internet.task import deferLater

        while not self._stopping:
            try:
                version = await self.db.migrate()
            except DatabaseUnavailable as error:
                if self.db.dialect.will_not_open(error.__cause__ or error):
                    self.fail(f"cannot open the database {self.db.target.describe()}"
                              " (does its folder exist, and may this user write there?)", error)
                    return
                log.warn("Database {db} unreachable ({error}); retrying in {s} s",
                         db=self.db.target.describe(), error=error, s=self.retry_every)
                await deferLater(self.reactor, self.retry_every, lambda: None)
                continue
            except Exception as error:
                self.fail(f"cannot open the database {self.db.target.describe()}", error)
                return
            self.ready = True
            log.info("Database {db} ready (schema version {v})",
                     db=self.db.target.describe(), v=version)
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                waiter.callback(None)
            return

    def stopService(self) -> None:
        self._stopping = True
        super().stopService()
        self.db.close()
