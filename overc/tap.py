"""The composition root: ``twistd overc server`` options and the service tree.

The twistd plugin, ``overc.tac`` and the tests all build the server through :func:`makeService`
(or :func:`build_server`), so there is one place that wires config, database, API and timers.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

from twisted.application import service, strports
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import Logger
from twisted.python import usage

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
from overc.web.site import connection_limit, make_site
from overc.workers import ReusePortService, worker_monitor

log = Logger()


class ServerOptions(usage.Options):
    synopsis = "[--config FILE] [--listen ENDPOINT] [--database URL]"
    optParameters = [
        ["config", "c", None, "the INI config file (default: none, or $OVERC_CONFIG)"],
        ["listen", "l", None, "a Twisted endpoint, e.g. tcp:5000:interface=127.0.0.1"],
        ["database", "d", None, "sqlite:///overc.db or mysql://user:password@host:3306/overc"],
    ]
    optFlags = [
        ["worker", None, "internal: a worker started by the first process ([overc] processes)"],
    ]

    def postOptions(self) -> None:
        try:
            self["server_config"] = config_from_options(self, os.environ)
            parse_channels(self["server_config"])  # [alert:*] errors are one line too
        except ConfigError as error:
            # One line, before twistd daemonizes or opens anything.
            raise SystemExit(f"overc: config error: {error}") from None


class Options(usage.Options):
    synopsis = "server [options]"
    subCommands = [["server", None, ServerOptions, "Run the OverC server"]]

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


class DatabaseService(service.Service):
    """Opens the database, migrates it (retrying while it is unreachable), then says ready."""

    def __init__(self, db: Database, reactor: Any, retry_every: float = 2.0) -> None:
        self.db = db
        self.reactor = reactor
        self.retry_every = retry_every
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
            except Exception:
                log.failure("Cannot prepare the database {db}; stopping",
                            db=self.db.target.describe())
                if self.reactor.running:
                    self.reactor.stop()
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


def build_server(config: ServerConfig, reactor: Any = None) -> ServerParts:
    """Wire every part of a server for ``config`` (the listening port included)."""
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    top = service.MultiService()
    db = Database(config.database_target(), reactor)
    database_service = DatabaseService(db, reactor)
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
    site = make_site(root, config.access_log, request_timeout=config.request_timeout,
                     max_connections=connection_limit(config.max_connections))
    if config.processes > 1:
        ReusePortService(config.listen, site, reactor,
                         database_service.when_ready).setServiceParent(top)
    else:
        strports.service(config.listen, site, reactor=reactor).setServiceParent(top)
    if config.loglevel != "debug":
        reactor.callWhenRunning(apply_loglevel, config.loglevel)
    return ServerParts(config, db, database_service, store, keys, push, health, root, site,
                       top, extra)


def makeService(options: Options, reactor: Any = None) -> service.IService:
    server_options = options.subOptions
    config = server_options["server_config"]
    top = build_server(config, reactor).service
    if config.processes > 1 and not server_options["worker"]:
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
