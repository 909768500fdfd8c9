"""Pure rules of SPEC 10.3, server offline: one alert for a dead host instead of one per service.

Every accepted push call is a sign of life of its server. The server's deadline is its last
sign of life + the shortest period among its live services + the configured grace on that
period. When it passes, the server is offline: one ``server-offline`` alert, and the ``offline``
alerts of its services are recorded but held (``server offline``). The next push raises one
``server-online``; services still stale a fresh window after it are notified one by one.

No clock, no database: the watchdog store calls these with plain values.
"""
from __future__ import annotations

from enum import Enum
from typing import Iterable

from overc.core.durations import Grace
from overc.core.watchdog_rules import fresh_window

#: ``alerts.held`` of a service's ``offline`` alert raised while its server was offline.
HELD_SERVER_OFFLINE = "server offline"


def allowance(period: float, grace: Grace) -> float:
    """How long a server may be silent: its shortest period + the config's grace on it."""
    return float(period) + grace.for_period(float(period))


def server_deadline(last_seen: float, period: float | None, grace: Grace) -> float | None:
    """``last sign of life + period + grace``; None while no service stated a period (a
    server that only pings is never declared offline: nothing says how often it speaks)."""
    if period is None:
        return None
    return last_seen + allowance(period, grace)


def fresh_server_deadline(now: float, period: float, grace: Grace) -> float:
    """After a gap in watching (restart, database back): the earliest deadline a server may
    have, the same fresh window its services get (:func:`~overc.core.watchdog_rules.fresh_window`),
    since its agent was turned away too and is on its own backoff."""
    return now + fresh_window(period) + grace.for_period(float(period))


def shortest_period(live: Iterable[float | None], known: float | None) -> float | None:
    """The period a server is held to when its deadline passed: the shortest among its live
    (not stale) services. A stale service does not count (a hung plugin with a short period
    must not make a server that keeps pushing look dead); with none live, the stored one."""
    periods = [float(p) for p in live if p is not None]
    return min(periods) if periods else known


def offline_message(now: float, last_seen: float | None, services: int) -> str:
    """``No contact for 75 s; 12 services affected``."""
    silent = max(0, round(now - last_seen)) if last_seen is not None else 0
    noun = "service" if services == 1 else "services"
    return f"No contact for {silent} s; {services} {noun} affected"


def online_message(back: float, last_seen_before: float | None) -> str:
    """``Back after 312 s without contact``: the true gap, from the last sign of life before
    the outage to the first push after it."""
    if last_seen_before is None:
        return "Back in contact"
    return f"Back after {max(0, round(back - last_seen_before))} s without contact"


class Verdict(Enum):
    """What the watchdog does with a service whose deadline passed (SPEC 10.3)."""

    NOTIFY = "notify"  # stale, `offline` alert notified as usual
    HELD = "held"  # stale, `offline` alert recorded but held: its server is offline
    WAIT = "wait"  # not yet: its server has been silent since it was due; the server decides


def service_verdict(*, server_offline: bool, server_deadline: float | None,
                    server_last_seen: float | None, service_due: float, now: float,
                    service_deadline: float | None = None, max_wait: float = 0.0) -> Verdict:
    """Decide for one overdue service.

    A service whose server has pushed something since the service was due (``service_due``:
    its deadline without grace) is a hung plugin on a live host: notified alone. A service
    whose server has been silent since then waits for its server's deadline (at most the
    server's shortest period + grace): an agent runs its plugins on their own timers, so on a
    dead host the services that were due just before it died would otherwise go stale, one
    notification each, before the server's deadline; this way they go stale with it, held.
    The wait is bounded by ``max_wait`` past the service's own deadline (its period + grace,
    the most an agent's timers spread it from its server's last push; 0 for a scheduled
    service, whose cron time is its own and whose server may speak once a day).
    """
    if server_offline:
        return Verdict.HELD
    if server_deadline is None or server_deadline < now:
        return Verdict.NOTIFY  # no server deadline to wait for (or one not yet decided)
    if server_last_seen is not None and server_last_seen >= service_due:
        return Verdict.NOTIFY
    if service_deadline is not None and server_deadline - service_deadline > max_wait:
        return Verdict.NOTIFY
    return Verdict.WAIT
