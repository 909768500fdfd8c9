"""The composition root: ``twistd overc server`` options and the service tree.

The twistd plugin, ``overc.tac`` and the tests all build the server through :func:`makeService`
(or :func:`build_server`), so there is one place that wires config, database, API and timers.
"""
from __future__ import annotations

import atexit
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from twisted.application import service
from twisted.application.internet import StreamServerEndpointService
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet import endpoints
from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from twisted.python import usage

from overc import __version__
from overc.api.push import PushAPI
from overc.config import ConfigError, ServerConfig, load_config_file
from overc.groupcommit import GroupCommit
from overc.loglevel import apply_loglevel
from overc.metrics import Counters
from overc.monitoring.services import make_services  # watchdog, notifications, retention
from overc.notify.channels import parse_channels
from overc.serverkeys import ServerKeys
from overc.site import make_web_resources  # UI, read API + OpenAPI, /metrics
from overc.storage.db import Database, DatabaseUnavailable
from overc.storage.store import Store
from overc.web.health import Health
from overc.web.root import Root
from overc.web.site import make_site
from overc.workers import WORKER_ENV, ReusePortService, worker_monitor

log = Logger()


def version_text() -> str:
    from twisted import version as twisted_version

    return (f"OverC {__version__} (Twisted {twisted_version.short()},"
            f" Python {sys.version.split()[0]})")


class _VersionOption:
    def opt_version(self) -> None:
        """Display OverC's version and exit."""
        print(version_text())
        sys.exit(0)


class ServerOptions(_VersionOption, usage.Options):
    synopsis = "[--config FILE] [--listen ENDPOINT] [--database URL]"
    optParameters = [
        ["config", "c", None, "the INI config file (default: none, or $OVERC_CONFIG)"],
        ["listen", "l", None, "a Twisted endpoint, e.g. tcp:5000:interface=127.0.0.1"],
        ["database", "d", None, "sqlite:///overc.db or mysql://user:password@host:3306/overc"],
    ]

    def postOptions(self) -> None:
        try:
            self["server_config"] = config_from_options(self, dict(os.environ))
            parse_channels(self["server_config"])  # [alert:*] errors are one line too
        except ConfigError as error:
            # One line, before twistd daemonizes or opens anything.
            raise SystemExit(f"overc: config error: {error}") from None


class Options(_VersionOption, usage.Options):
    synopsis = "server [options]"
    subCommands = [["server", None, ServerOptions, "Run the OverC server"]]

    def getSynopsis(self) -> str:
        synopsis = super().getSynopsis()
        if self.subCommand is not None:  # the subcommand's usage line adds "server ..." itself
            synopsis = synopsis.removesuffix(" " + self.synopsis)
        return synopsis

    def postOptions(self) -> None:
        if self.subCommand is None:
            raise usage.UsageError("say what to run: twistd -n overc server")


def config_from_options(options: dict, environ: dict) -> ServerConfig:
    path = options.get("config") or environ.get("OVERC_CONFIG") or None
    return load_config_file(
        path,
        environ=environ,
        overrides={"listen": options.get("listen"), "database": options.get("database")},
    )


def failure_text(error: BaseException) -> str:
    """One line naming the cause of a start-up failure (no traceback: the cause is known)."""
    if isinstance(error, CannotListenError):
        reason = error.socketError
        text = getattr(reason, "strerror", None) or str(reason)
        return f"cannot listen on {error.interface or '*'}:{error.port}: {text}"
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


@dataclass
class ServerParts:
    """What tests and the tac file may want to reach inside a built server."""

    config: ServerConfig
    db: Database
    database_service: DatabaseService
    store: Store
    keys: ServerKeys
    push: PushAPI
    health: Health
    root: Root
    site: Any
    service: service.MultiService
    extra: dict = field(default_factory=dict)


def build_server(config: ServerConfig, reactor: Any = None,
                 exit_on_failure: bool = False) -> ServerParts:
    """Wire every part of a server for ``config`` (the listening port included).

    ``exit_on_failure``: a start-up failure ends the process with status 1 (entry points only).
    """
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    fail = StartupFailure(reactor, exit_process=exit_on_failure)
    top = ServerService(fail)
    db = Database(config.database_target(), reactor)
    database_service = DatabaseService(db, reactor, fail=fail)
    database_service.setServiceParent(top)

    def ready() -> bool:
        return database_service.ready

    counters = Counters()  # this process's own counts, exposed by /metrics
    store = Store(db, config.grace, counters)
    keys = ServerKeys(store, reactor, registration_open=config.registration_open)
    # SQLite has one connection: one transaction at a time. MariaDB: two, so one batch is
    # being committed (waiting on the disk) while the next is written (bench/ingest.py).
    in_flight = 1 if db.dialect.name == "sqlite" else 2
    writer = GroupCommit(store.ingest, reactor, max_in_flight=in_flight)
    push = PushAPI(keys, writer, reactor, ready, counters)
    health = Health(db, ready)
    for part in make_services(config, db, reactor, ready=ready, counters=counters):
        part.setServiceParent(top)
    health.checks["watchdog"] = top.getServiceNamed("watchdog").status
    health.checks["ingest"] = writer.status
    # Other parts plug in here: extra maps a top-level path segment ("ui", "metrics") or
    # "api" (the read API: every /api/* path that is not push) to a resource.
    extra: dict = make_web_resources(config, db, reactor, counters=counters,
                                     forget_keys=keys.forget)
    root = Root(push.resource(), health, extra)
    site = make_site(root, config.access_log)
    if config.processes > 1:
        AnnouncedReusePortService(config.listen, site, reactor, database_service.when_ready,
                                  fail=fail).setServiceParent(top)
    else:
        listening = ListeningService(endpoints.serverFromString(reactor, config.listen), site)
        listening._raiseSynchronously = True  # as strports.service: a busy port fails at once
        listening.setServiceParent(top)
    if config.loglevel != "debug":
        reactor.callWhenRunning(apply_loglevel, config.loglevel)
    return ServerParts(config, db, database_service, store, keys, push, health, root, site,
                       top, extra)


def makeService(options: Options, reactor: Any = None) -> service.IService:
    server_options = options.subOptions
    config = server_options["server_config"]
    top = build_server(config, reactor, exit_on_failure=True).service
    if config.processes > 1 and os.environ.get(WORKER_ENV) != "1":
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        argv = ["overc", "server"]
        for key in ("config", "listen", "database"):
            if server_options[key]:
                argv += [f"--{key}", server_options[key]]
        worker_monitor(config.processes - 1, argv, reactor).setServiceParent(top)
    return top


def main() -> None:  # pragma: no cover - convenience for `python -m overc.tap`
    from twisted.scripts.twistd import run

    sys.argv = ["twistd", "-n", "overc", *sys.argv[1:]]
    run()
