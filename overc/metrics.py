"""OverC's own per-process counters (reports, alerts, notifications, push requests).

Whoever does the work counts it; ``/metrics`` (:mod:`overc.web.metrics`) exposes them and
Prometheus sums them across processes. The composition root creates one :class:`Counters` and
injects it everywhere.
"""
from __future__ import annotations

import threading
from collections import defaultdict


class Counters:
    """Monotonic per-process counters: ``counters.inc("reports")``, ``inc("notifications",
    result="sent")``. Thread-safe (the storage layer may count from pool threads)."""

    HELP = {
        "reports": "Service reports accepted by the push API",
        "alerts": "Alerts raised",
        "notifications": "Notification deliveries by result",
        "push_requests": "Push API requests by status code",
    }

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._values[name]
            series[key] = series.get(key, 0) + amount

    def snapshot(self) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        with self._lock:
            return {name: dict(series) for name, series in self._values.items()}


#: Only the defaults of the watchdog, the notifier and the ingest store still use this (their
#: owners switch them to the injected counters); the web side never does.
counters = Counters()
