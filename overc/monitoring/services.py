"""The one entry point of the composition root into monitoring: :func:`make_services`.

It validates the ``[alert:*]`` channels (a :class:`overc.config.ConfigError` stops the start),
and returns the services that run in every OverC process: the watchdog (with restart
awareness), the notification dispatcher and the retention timer. The watchdog wakes the
dispatcher when services expire, so an ``offline`` alert is not delayed by a second tick.
"""
from __future__ import annotations

from typing import Any, Callable

from twisted.application.service import IService

from overc.config import ServerConfig
from overc.metrics import Counters
from overc.monitoring.retention import Retention
from overc.monitoring.watchdog import Watchdog
from overc.notify.channels import build_channel, parse_channels
from overc.notify.dispatcher import Dispatcher
from overc.storage.alerting import AlertingStore
from overc.storage.db import Database


def make_services(config: ServerConfig, db: Database, reactor: Any, *,
                  ready: Callable[[], bool] | None = None,
                  http_client: Any = None,
                  counters: Counters | None = None) -> list[IService]:
    """``[watchdog, dispatcher, retention]``; the watchdog's ``status()`` is for ``/healthz``.

    ``ready`` (optional) says whether the schema is in place; runs wait for it quietly.
    """
    store = AlertingStore(db)
    channels = [
        build_channel(spec, reactor=reactor, public_url=config.public_url,
                      http_client=http_client)
        for spec in parse_channels(config)
    ]
    dispatcher = Dispatcher(store, reactor, channels, interval=min(1.0, config.watchdog_interval),
                            counters=counters)
    watchdog = Watchdog(
        store, reactor, interval=config.watchdog_interval, grace=config.grace,
        on_expired=lambda result: dispatcher.kick(), counters=counters,
    )
    retention = Retention(store, reactor, retention=config.retention)
    for job in (watchdog, dispatcher, retention):
        job.ready = ready
    return [watchdog, dispatcher, retention]
