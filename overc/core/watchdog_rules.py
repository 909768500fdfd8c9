"""Pure decisions of the watchdog: what an `offline` alert says, when OverC counts as having
been away, and the fresh deadline restart awareness gives an overdue service.

No clock, no database: ``now`` is an argument, so every rule is tested without a reactor.
"""
from __future__ import annotations

import re

from overc.core.durations import Grace
from overc.core.retry import AGENT_RETURN_WITHIN


def offline_message(now: float, last_time: float | None, period: float | None) -> str:
    """``No report for 75 s (period 60 s)``: what a person needs to judge a missed period."""
    if last_time is None:
        silent = "No report yet"
    else:
        silent = f"No report for {max(0, round(now - last_time))} s"
    if period:
        return f"{silent} (period {int(period)} s)"
    return silent


_SILENCE = re.compile(r"^No report (for \d+ s|yet)")


def silence_of(message: str) -> str:
    """``no report for 75 s``: the silence an ``offline`` message states, for the
    notification's ``Current:`` line (the service's last state is not its current one)."""
    match = _SILENCE.match(message)
    return f"no report {match.group(1)}" if match else "no report"


def away_threshold(interval: float) -> float:
    """How long without any watchdog tick (in any process) counts as OverC having been down.

    Shorter gaps are ordinary scheduling jitter; longer ones mean nobody could receive reports
    (stopped, crashed, or the database was unreachable), so agents deserve a fresh period.
    """
    return max(5.0, 3.0 * interval)


def was_away(now: float, last_tick: float, interval: float) -> bool:
    return now - last_tick > away_threshold(interval)


def heartbeat_due(now: float, last_tick: float, interval: float) -> bool:
    """Whether an idle tick must write ``last_tick`` (a write costs a commit to disk).

    Writing it twice per away threshold keeps a running OverC from ever looking away (a tick
    may be late by half the threshold); the ticks in between are read-only and cost no disk
    flush: at the default 1 s interval, one tick in three writes.
    """
    return now - last_tick >= away_threshold(interval) / 2.0


def fresh_window(period: float, scheduled: bool = False) -> float:
    """How long after a gap in watching a service is given before it can be declared offline.

    An agent turned away keeps retrying on its own backoff (up to ``AGENT_BACKOFF_MAX``, or the
    push API's ``Retry-After``), so one period is not enough: the window is at least
    ``AGENT_BACKOFF_MAX + PUSH_RETRY_AFTER`` (65 s), or the period when that is longer. A
    scheduled service's next report follows its schedule, not our outage: its window is the
    65 s alone (its ``period``, the schedule's typical interval, would push a nightly job's
    deadline out by a day).
    """
    if scheduled:
        return AGENT_RETURN_WITHIN
    return max(float(period), AGENT_RETURN_WITHIN)


def fresh_deadline(now: float, period: float, grace: Grace, *, scheduled: bool = False,
                   own_grace: float | None = None) -> float:
    """After a gap in watching (process start, database back) or a late report: the earliest
    deadline a service may have, ``now + window + grace`` (:func:`fresh_window`; the grace is
    the service's own when its reports state one). The watchdog store computes the same in
    SQL for every row at once."""
    extra = max(1.0, own_grace) if own_grace is not None else grace.for_period(period)
    return now + fresh_window(period, scheduled) + extra
