"""The agent's log level, its quiet defaults, its version and its plurals.

``[overc] loglevel`` (default ``info``) and ``overcli -v`` choose what the agent logs:

- ``debug``: one line per plugin run, and Twisted's routine lines (the HTTP connection pool's
  ``Starting factory``/``Stopping factory``, the reactor's ``Main loop terminated.``);
- ``info``: start-up, state changes, spool and backoff transitions;
- ``warn``/``error``: only what needs a look.

The server has the same setting (``overc.runtime.loglevel``); the agent stands apart from the
server's layers (it may only use ``overc.core``), so it carries its own small copy.
"""
from __future__ import annotations

import importlib
from typing import Any

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    LogPublisher,
    globalLogPublisher,
)

LEVELS = {
    "debug": LogLevel.debug,
    "info": LogLevel.info,
    "warn": LogLevel.warn,
    "warning": LogLevel.warn,
    "error": LogLevel.error,
    "critical": LogLevel.critical,
}

#: Namespaces that speak at info level about routine work; shown only at ``debug``. (A
#: namespace string is how twisted.logger addresses a class's or module's events.)
QUIET_NAMESPACES = (
    "twisted.web.client._HTTP11ClientFactory",  # "Starting factory <...HTTP11ClientFactory...>"
    "twisted.internet.base",  # "Main loop terminated."
)


def version() -> str:
    """OverC's version: ``overc.__version__`` when the package has one, else its metadata."""
    found = getattr(importlib.import_module("overc"), "__version__", None)
    if found:
        return str(found)
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as metadata_version

    try:
        return metadata_version("overc")
    except PackageNotFoundError:
        return "unknown"


def plural(count: int, one: str, many: str | None = None) -> str:
    """``1 service``, ``2 services``, ``0 reports``."""
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def level_for(verbose: int, configured: str | None = None, default: LogLevel = LogLevel.warn) -> LogLevel:
    """The more talkative of ``-v`` (info), ``-vv`` (debug) and the configured level."""
    level = LEVELS[configured] if configured else default
    if verbose >= 2:
        return LogLevel.debug
    if verbose == 1:
        return min(level, LogLevel.info)
    return level


class LogFilter:
    """One level filter for the agent; its level can change once the config has been read."""

    def __init__(self, level: LogLevel = LogLevel.info) -> None:
        self.predicate = LogLevelFilterPredicate(defaultLogLevel=level)
        self.level = level
        self.set_level(level)

    def set_level(self, level: LogLevel) -> None:
        self.level = level
        self.predicate.setLogLevelForNamespace("", level)  # the empty namespace is the default
        for namespace in QUIET_NAMESPACES:
            self.predicate.setLogLevelForNamespace(namespace, max(level, LogLevel.warn) if level > LogLevel.debug else level)

    def wrap(self, observer: ILogObserver) -> FilteringLogObserver:
        return FilteringLogObserver(observer, [self.predicate])

    def install(self, publisher: LogPublisher = globalLogPublisher) -> int:
        """Filter every observer the publisher has now (twistd's); returns how many.

        twistd installs its observer after the service is made, so the tap calls this when the
        reactor starts. ``LogPublisher`` keeps its observers in a private list: there is no
        public way to list them (the server's ``apply_loglevel`` does the same).
        """
        observers: list[Any] = list(getattr(publisher, "_observers", []))
        for observer in observers:
            if isinstance(observer, FilteringLogObserver):
                continue
            publisher.removeObserver(observer)
            publisher.addObserver(self.wrap(observer))
        return len(observers)


#: The filter of this process (``overcli`` and ``twistd overcli-monitor`` install it).
AGENT_LOG = LogFilter()
