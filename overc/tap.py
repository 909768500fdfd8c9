"""The composition root: ``twistd overc server`` options and the service tree.

The twistd plugin, ``overc.tac`` and the tests all build the server through :func:`makeService`
(or :func:`build_server`), so there is one place that wires config, database, API and timers.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from twisted.application import service
from twisted.internet import endpoints
from twisted.logger import Logger
from twisted.python import usage

from overc import __version__
from overc.api.push import PushAPI
from overc.config import ConfigError, ServerConfig, load_config_file
from overc.core.counters import Counters
from overc.core.errors import StartupRefused
from overc.ingest.groupcommit import GroupCommit
from overc.ingest.serverkeys import ServerKeys
from overc.runtime.heap import freeze_startup_heap
from overc.runtime.loglevel import apply_loglevel
from overc.monitoring.retention import Retention
from overc.monitoring.watchdog import Watchdog
from overc.notify.base import ChannelSpec
from overc.notify.channel_config import parse_channels
from overc.notify.channel_sets import ChannelSetRegistry, channel_set
from overc.notify.dispatcher import Dispatcher
from overc.notify.factory import build_channel
from overc.storage.channel_set_store import ChannelSetStore
from overc.storage.db import Database
from overc.storage.delivery_store import DeliveryStore
from overc.storage.dispatch_store import DispatchStore
from overc.storage.maintenance_store import MaintenanceStore
from overc.storage.retention_store import RetentionStore
from overc.storage.ingest_store import Store
from overc.storage.watchdog_store import WatchdogStore
from overc.site import make_web_resources  # UI, read API + OpenAPI, /metrics
from overc.web.health import Health
from overc.web.root import Root
from overc.web.site import connection_limit, make_site
from overc.startup import (
    AnnouncedReusePortService,
    DatabaseService,
    ListeningService,
    ServerService,
    StartupFailure,
)
from overc.workers import WORKER_ENV, worker_monitor

#: Seconds each ingest batch waits at most for more requests before its transaction starts.
COMMIT_GATHER = 0.005
#: ... and the share of a recent transaction's duration it waits, below that cap.
GATHER_SHARE = 0.3

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
            self["server_config"] = config_from_options(self, os.environ)
            # [alert:*] errors are one line too; parsed once, the specs go on to the dispatcher.
            self["channel_specs"] = parse_channels(self["server_config"])
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


def config_from_options(options: Mapping[str, Any], environ: Mapping[str, str]) -> ServerConfig:
    path = options.get("config") or environ.get("OVERC_CONFIG") or None
    return load_config_file(
        path,
        environ=environ,
        overrides={"listen": options.get("listen"), "database": options.get("database")},
    )


@dataclass
class BackgroundJobs:
    """The jobs every OverC process runs, each reachable by name (``/healthz`` asks the
    watchdog directly)."""

    watchdog: Watchdog
    dispatcher: Dispatcher
    retention: Retention

    def all(self) -> list[service.Service]:
        return [self.watchdog, self.dispatcher, self.retention]


def make_background_jobs(
    config: ServerConfig, db: Database, reactor: Any, channels: Sequence[ChannelSpec],
    counters: Counters, *, ready: Callable[[], bool] | None = None, http_client: Any = None,
) -> BackgroundJobs:
    """The watchdog (with restart awareness), the notification dispatcher and retention.

    The watchdog wakes the dispatcher when services expire, so an ``offline`` alert is not
    delayed by a second tick. ``ready`` (optional) says whether the schema is in place; runs
    wait for it quietly.
    """
    live = [build_channel(spec, reactor=reactor, public_url=config.public_url,
                          http_client=http_client) for spec in channels]
    dispatcher = Dispatcher(DispatchStore(db, config.maintenance), DeliveryStore(db), reactor,
                            live,
                            counters=counters, interval=min(1.0, config.watchdog_interval))
    watchdog = Watchdog(
        WatchdogStore(db), reactor, counters=counters, interval=config.watchdog_interval,
        grace=config.grace, on_expired=lambda result: dispatcher.kick(),
    )
    retention = Retention(RetentionStore(db), reactor, retention=config.retention)
    for job in (watchdog, dispatcher, retention):
        job.ready = ready
    return BackgroundJobs(watchdog, dispatcher, retention)


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
    jobs: BackgroundJobs
    counters: Counters
    extra: dict = field(default_factory=dict)
    channel_sets: ChannelSetRegistry | None = None


def build_server(config: ServerConfig, reactor: Any = None,
                 channels: Sequence[ChannelSpec] | None = None,
                 exit_on_failure: bool = False) -> ServerParts:
    """Wire every part of a server for ``config`` (the listening port included).

    ``channels`` are the parsed ``[alert:*]`` specs (parsed here when not given).
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
    store = Store(db, config.grace, counters, config.policies)
    keys = ServerKeys(store, reactor, registration_open=config.registration_open)
    # SQLite has one connection: one transaction at a time. MariaDB with one process: two, so
    # one batch is being committed (waiting on the disk) while the next is written. With
    # several processes the others' transactions fill that wait: one each makes batches twice
    # as large, and a request cheaper for both processes and mariadbd (bench/RESULTS.md).
    in_flight = 2 if db.dialect.name != "sqlite" and config.processes == 1 else 1
    # Each batch first gathers requests for a share of a recent transaction's duration, at
    # most 5 ms (overc.ingest.groupcommit: fewer, larger transactions). A fixed 5 ms measured
    # +25-30 % pushes/s with 2 processes on a host whose transactions took ~9 ms; on one
    # whose took a few ms, this share gave 1.20-1.21x the fixed wait's (bench/RESULTS.md).
    writer = GroupCommit(store.ingest, reactor, max_in_flight=in_flight, gather=COMMIT_GATHER,
                         gather_share=GATHER_SHARE)
    push = PushAPI(keys, writer, reactor, ready, counters, MaintenanceStore(db))
    health = Health(db, ready)
    specs = parse_channels(config) if channels is None else channels
    jobs = make_background_jobs(config, db, reactor, specs, counters, ready=ready)
    for job in jobs.all():
        job.setServiceParent(top)
    # Processes on one database must have the same channels, or one would dispatch alerts
    # for channels it lacks: register ours before the dispatcher may run (docs/operations.md).
    channel_sets = ChannelSetRegistry(
        ChannelSetStore(db), reactor, channel_set(specs), jobs.dispatcher.owner,
        on_conflict=lambda line: fail("", StartupRefused(line)),
        on_registered=jobs.dispatcher.kick)
    channel_sets.ready = ready
    channel_sets.setServiceParent(top)
    jobs.dispatcher.ready = lambda: ready() and channel_sets.registered
    database_service.when_ready().addCallback(lambda _: channel_sets.kick())
    health.checks["watchdog"] = jobs.watchdog.status
    health.checks["ingest"] = writer.status
    # Other parts plug in here: extra maps a top-level path segment ("ui", "metrics") or
    # "api" (the read API: every /api/* path that is not push) to a resource.
    extra: dict = make_web_resources(config, db, reactor, forget_keys=keys.forget,
                                     counters=counters)
    root = Root(push.resource(), health, extra)
    site = make_site(root, config.access_log, request_timeout=config.request_timeout,
                     max_connections=connection_limit(config.max_connections))
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
                       top, jobs, counters, extra, channel_sets)


def makeService(options: Options, reactor: Any = None) -> service.IService:
    server_options = options.subOptions
    config = server_options["server_config"]
    top = build_server(config, reactor, server_options["channel_specs"],
                       exit_on_failure=True).service
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    # A process of its own (twistd), unlike build_server's callers in tests: what it built to
    # start lives until exit, so later collections need not walk it (overc.runtime.heap).
    reactor.callWhenRunning(freeze_startup_heap)
    if config.processes > 1 and os.environ.get(WORKER_ENV) != "1":
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
