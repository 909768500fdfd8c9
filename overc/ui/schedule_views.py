"""What the service page shows of SPEC 9: the schedule in words, the next expected time, the
current run ("running for 3 min", "running late") and a chart of durations.

Pure shaping of rows the page already read; kept apart from ``views`` so each stays small.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from overc.core.schedule import DEFAULT_ZONE, describe, next_time
from overc.storage.read_service import PerfPoint
from overc.ui import views


def run_time_text(seconds: float | None) -> str:
    """``0.4 s``, ``42 s``, ``3 min``, ``2 h 5 min``, ``1 d 3 h``: a run's length, in words."""
    if seconds is None:
        return "—"
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{int(seconds)} s"
    minutes = int(seconds // 60)
    if minutes < 90:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@dataclass
class Timing:
    schedule: str | None  # in words: "at 03:00, Europe/Berlin"
    next_expected: float | None  # the next scheduled time (its deadline adds grace)
    running: str | None  # "running for 3 min", "running late (started 2 h 5 min ago, ...)"
    late: bool
    last_duration: str | None
    chart: views.Chart | None  # the durations in the page's range


def service_timing(svc: Any, states: Sequence[Any], start: float, now: float) -> Timing:
    """The schedule, run and duration facts of a service (``ServiceRow``) for its page."""
    words = expected = None
    if svc.schedule:
        tz = svc.tz or DEFAULT_ZONE
        words = describe(svc.schedule, tz)
        try:
            expected = next_time(svc.schedule, tz, svc.last_time or now)
        except (ValueError, StopIteration):  # a zone the system lost since the report
            expected = None
    running = None
    if svc.run_started is not None:
        took = run_time_text(now - svc.run_started)
        if svc.run_late:
            running = f"running late: started {took} ago (timeout {svc.run_timeout} s)"
        else:
            running = f"running for {took}"
    return Timing(words, expected, running, bool(svc.run_late),
                  run_time_text(svc.duration) if svc.duration is not None else None,
                  duration_chart(states, start, now))


def duration_chart(states: Sequence[Any], start: float, now: float) -> views.Chart | None:
    """The durations stored with the reports in [start, now] as a chart, or None without any."""
    points = [PerfPoint(s.time, "duration", s.duration, "s", None, None, 0.0, None)
              for s in states if s.duration is not None and s.time >= start]
    if not points:
        return None
    return views.chart(points, start, now)
