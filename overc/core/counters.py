"""OverC's own per-process counters (reports, alerts, notifications) for ``/metrics``.

One instance is made by the composition root and injected into whoever does the work; there is
no module-level instance, so tests and several servers in one process never share counts.
"""
from __future__ import annotations

import threading
from collections import defaultdict

LabelKey = tuple[tuple[str, str], ...]


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
        self._values: dict[str, dict[LabelKey, float]] = defaultdict(dict)

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._values[name]
            series[key] = series.get(key, 0) + amount

    def value(self, name: str, **labels: str) -> float:
        """One series' current value (0 when it was never counted)."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            return self._values[name].get(key, 0) if name in self._values else 0

    def snapshot(self) -> dict[str, dict[LabelKey, float]]:
        with self._lock:
            return {name: dict(series) for name, series in self._values.items()}
