"""``[overc] loglevel``: drop log events below a level, whatever observer twistd installed.

twistd installs its log observer after the service is built and before the reactor runs, so
the filter is applied when the reactor starts, around every observer present then.
"""
from __future__ import annotations

from twisted.logger import (
    FilteringLogObserver,
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


#: Log namespaces that speak at info level about routine work: the HTTP client pool announces
#: every connection it opens or closes ("Starting factory ..."). Shown only at ``debug``.
#: (A namespace string is how twisted.logger addresses a class's events; naming it is public.)
QUIET_NAMESPACES = ("twisted.web.client._HTTP11ClientFactory",)


def apply_loglevel(name: str, publisher: LogPublisher = globalLogPublisher) -> int:
    """Wrap the publisher's observers in a level filter; returns how many were wrapped."""
    level = LEVELS[name]
    if level == LogLevel.debug:
        return 0
    predicate = LogLevelFilterPredicate(defaultLogLevel=level)
    for namespace in QUIET_NAMESPACES:
        predicate.setLogLevelForNamespace(namespace, max(level, LogLevel.warn))
    # LogPublisher keeps its observers in a private list; there is no public way to list them.
    observers = list(getattr(publisher, "_observers", []))
    for observer in observers:
        if isinstance(observer, FilteringLogObserver):
            continue
        publisher.removeObserver(observer)
        publisher.addObserver(FilteringLogObserver(observer, [predicate]))
    return len(observers)
