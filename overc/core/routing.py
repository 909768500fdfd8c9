"""Which channels get an alert, how alerts group into notifications, and when to retry.

Plain values in, plain values out (``now`` included), so the rules that decide whether
somebody gets paged are tested exhaustively without a reactor or database.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Iterable, Sequence

from overc.core.alerts import INTERNAL, SERVER_KINDS, Alert, severity_rank

#: Delay before retry n (1-based); later retries reuse the last step.
BACKOFF = (10.0, 30.0, 120.0, 600.0, 1800.0)


def backoff_delay(failed_attempts: int) -> float:
    """Seconds to wait after the ``failed_attempts``-th failure (1-based): 10 s, 30 s, ..."""
    index = max(1, failed_attempts) - 1
    return BACKOFF[min(index, len(BACKOFF) - 1)]


def next_attempt(now: float, failed_attempts: int, retries: int) -> float | None:
    """When to try again after a failure, or None when the channel has failed for good.

    ``retries`` counts retries, so a notification is tried at most ``1 + retries`` times.
    """
    if failed_attempts > retries:
        return None
    return now + backoff_delay(failed_attempts)


@dataclass(frozen=True)
class Route:
    """What the dispatcher needs to know of a channel: its filters, its repeat period and how
    long a service problem must last unacknowledged before it is told (``after``, SPEC 10.5;
    None: at once)."""

    name: str
    min_severity: str = "WARN"
    servers: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    repeat: float | None = None
    after: float | None = None

    def matches_names(self, alert: Alert) -> bool:
        if alert.kind == INTERNAL:
            return True  # OverC's own trouble reaches every other channel, whatever its filters
        if self.servers and not _glob_any(alert.server_name, self.servers):
            return False
        # A server's own alerts (SPEC 10.3) speak for all its services, whose offline alerts
        # they hold: a channel filtered to some services must still hear its host died.
        if (self.services and alert.kind not in SERVER_KINDS
                and not _glob_any(alert.service_name or "", self.services)):
            return False
        return True


def _glob_any(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def parse_globs(text: str) -> tuple[str, ...]:
    """``web*, db1``: the comma-separated name patterns of a channel filter."""
    return tuple(p.strip() for p in text.split(",") if p.strip())


def route_alert(
    routes: Sequence[Route], alert: Alert, told: frozenset[str] | set[str] = frozenset()
) -> list[str]:
    """Names of the channels that get ``alert``.

    ``told`` holds the channels already told about a problem of this service: a recovery
    (severity OK) goes to them even though it is below their ``min-severity``.
    """
    out = []
    for route in routes:
        if alert.skip_channel == route.name or not route.matches_names(alert):
            continue
        if severity_rank(alert.severity) >= severity_rank(route.min_severity):
            out.append(route.name)
        elif not alert.is_problem and route.name in told:
            out.append(route.name)
    return out


def group_by_server(
    alerts: Iterable[Alert], channels_of: dict[int, list[str]]
) -> dict[tuple[int, str], list[Alert]]:
    """Storm control: the alerts of one server pending together make one notification per
    channel. ``channels_of`` maps alert id to its routed channels. Order is kept."""
    groups: dict[tuple[int, str], list[Alert]] = {}
    for alert in alerts:
        for channel in channels_of.get(alert.id, ()):
            groups.setdefault((alert.server_id, channel), []).append(alert)
    return groups
