"""Runs (SPEC 9.3): a start signal, its timeout, and the duration a report ends it with.

Pure functions over plain numbers; the ingest store and the watchdog store call them.
"""
from __future__ import annotations

from dataclasses import dataclass

from overc.core.durations import Grace


@dataclass(frozen=True)
class RunStart:
    """One service of a ``/api/set/service/start`` request; ``time`` None means now."""

    service: str
    timeout: int
    time: float | None = None


def run_grace(timeout: float, grace: Grace, report_grace: float | None) -> float:
    """The slack after a run's timeout: the service's own report grace if its latest report
    gave one, else the config's grace applied to the timeout (at least 1 s)."""
    if report_grace is not None:
        return max(1.0, report_grace)
    return grace.for_period(timeout)


def run_deadline(started: float, timeout: float, grace: Grace,
                 report_grace: float | None = None) -> float:
    """When a run that has not reported counts as timed out: start + timeout + grace."""
    return started + timeout + run_grace(timeout, grace, report_grace)


def run_duration(started: float | None, report_time: float, sent: float | None) -> float | None:
    """The duration stored with a report: the one the report carries (the agent measured it),
    else report time minus the start of the run it ends, else none."""
    if sent is not None:
        return sent
    if started is not None and report_time >= started:
        return report_time - started
    return None


def timeout_message(now: float, started: float, timeout: float) -> str:
    """``Started 3605 s ago and not finished (timeout 3600 s)``."""
    return (f"Started {max(0, round(now - started))} s ago and not finished"
            f" (timeout {int(timeout)} s)")
