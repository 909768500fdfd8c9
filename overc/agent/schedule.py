"""When a service runs next: pure arithmetic, so the rules are tested without a clock.

A report must reach the server before the service's deadline (``last report + period + grace``).
The agent therefore runs each plugin every ``0.8 x period - reserve``: 20 % of the period is
margin for delivery, and the reserve covers the plugin's own run time. The reserve is the
service's ``max-lag`` when configured, else three times the last measured run time (OverC 1.x
behaviour). An interval below one second would spin, so one second is the floor.
"""
from __future__ import annotations

PERIOD_FACTOR = 0.8
LAG_FACTOR = 3.0
MIN_INTERVAL = 1.0


def reserve(max_lag: float | None, last_run_time: float) -> float:
    """Seconds kept free for the plugin's run: ``max-lag`` if set, else 3 x the last run."""
    if max_lag is not None:
        return max_lag
    return LAG_FACTOR * max(last_run_time, 0.0)


def interval(period: float, max_lag: float | None, last_run_time: float) -> float:
    """Seconds between two starts of a service's plugin (never less than one second)."""
    return max(PERIOD_FACTOR * period - reserve(max_lag, last_run_time), MIN_INTERVAL)


def next_start(started: float, finished: float, period: float, max_lag: float | None) -> float:
    """Absolute time of the next run, given when the last run started and finished.

    Runs of one service never overlap: if the plugin took longer than the interval, the next
    run starts as soon as this one finished.
    """
    run_time = max(finished - started, 0.0)
    return max(started + interval(period, max_lag, run_time), finished)
