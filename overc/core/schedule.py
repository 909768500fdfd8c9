"""Cron schedules (SPEC 9.1): the next scheduled time, the typical interval, and the schedule
in words. Pure functions: the time is an argument.

Expressions are evaluated by cronsim (Debian cron's rules: a job at a fixed time in a missing
hour runs when the clock jumps, in a repeated hour once; ``L`` and ``#``), never by hand.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from overc.core.durations import Grace

MAX_SCHEDULE = 100
MAX_ZONE = 64
DEFAULT_ZONE = "UTC"
#: How many intervals :func:`typical_interval` looks at.
_SAMPLES = 9
_FIXED = re.compile(r"^(\d{1,2}) (\d{1,2}) \* \* \*$")
_EVERY_MINUTES = re.compile(r"^\*/(\d{1,2}) \* \* \* \*$")
_EVERY_HOURS = re.compile(r"^(\d{1,2}) \*/(\d{1,2}) \* \* \*$")


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ValueError with a reason when there is none."""
    if not name or len(name) > MAX_ZONE or name != name.strip():
        raise ValueError(f"{name!r} is not an IANA time zone (like Europe/Berlin or UTC)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"{name!r} is not an IANA time zone (like Europe/Berlin or UTC)"
        ) from None


@lru_cache(maxsize=1024)
def check_schedule(expression: str) -> str:
    """The expression with its whitespace normalised; ValueError saying what is wrong.

    Five fields (minute hour day-of-month month day-of-week); cronsim's six-field form with
    seconds is not cron and is refused. An expression that never fires is refused too.
    """
    if len(expression) > MAX_SCHEDULE:
        raise ValueError(f"a cron expression of at most {MAX_SCHEDULE} characters")
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"{expression!r} is not a cron expression: five fields "
            "(minute hour day-of-month month day-of-week), like \"0 3 * * *\""
        )
    normal = " ".join(fields)
    try:
        next(CronSim(normal, datetime(2000, 1, 1, tzinfo=timezone.utc)))
    except CronSimError as error:
        raise ValueError(f"{normal!r} is not a valid cron expression: {error}") from None
    except StopIteration:
        raise ValueError(f"{normal!r} never fires") from None
    return normal


def _times(expression: str, tz: str, after: float) -> CronSim:
    start = datetime.fromtimestamp(after, zone(tz))
    return CronSim(expression, start)


def next_time(expression: str, tz: str, after: float) -> float:
    """The first scheduled time strictly after ``after`` (Unix seconds), in zone ``tz``."""
    return next(_times(expression, tz, after)).timestamp()


def next_times(expression: str, tz: str, after: float, count: int) -> list[float]:
    """The first ``count`` scheduled times strictly after ``after``."""
    times = _times(expression, tz, after)
    return [next(times).timestamp() for _ in range(count)]


def interval_after(expression: str, tz: str, after: float) -> float:
    """The interval between the next two scheduled times after ``after``: what the config's
    grace applies to (SPEC 9.1)."""
    first, second = next_times(expression, tz, after, 2)
    return second - first


def typical_interval(expression: str, tz: str, after: float) -> int:
    """The median of the next few intervals, in whole seconds (at least 1): the ``period`` an
    agent sends with a schedule, which a 1.x server reads as the promise."""
    times = next_times(expression, tz, after, _SAMPLES + 1)
    gaps = sorted(b - a for a, b in zip(times, times[1:]))
    return max(1, int(round(gaps[len(gaps) // 2])))


def schedule_grace(expression: str, tz: str, after: float, grace: Grace,
                   report_grace: float | None) -> float:
    """The report's own grace if it gave one, else the config's grace applied to the interval
    between the next two scheduled times (at least 1 s either way)."""
    if report_grace is not None:
        return max(1.0, report_grace)
    return grace.for_period(interval_after(expression, tz, after))


def scheduled_deadline(expression: str, tz: str, report_time: float, grace: Grace,
                       report_grace: float | None = None) -> float:
    """The first scheduled time after the report's time, plus grace."""
    first = next_time(expression, tz, report_time)
    return first + schedule_grace(expression, tz, report_time, grace, report_grace)


def describe(expression: str, tz: str = DEFAULT_ZONE) -> str:
    """The schedule in words: ``at 03:00, Europe/Berlin``, ``every 5 minutes``."""
    words = _words(expression)
    if expression.split()[:2] == ["*", "*"] or _EVERY_MINUTES.match(expression):
        return words  # the zone makes no difference to "every N minutes"
    return f"{words}, {tz}"


def _words(expression: str) -> str:
    fixed = _FIXED.match(expression)
    if fixed:
        return f"at {int(fixed.group(2)):02d}:{int(fixed.group(1)):02d}"
    if expression == "* * * * *":
        return "every minute"
    every = _EVERY_MINUTES.match(expression)
    if every:
        n = int(every.group(1))
        return "every minute" if n == 1 else f"every {n} minutes"
    hours = _EVERY_HOURS.match(expression)
    if hours:
        n, minute = int(hours.group(2)), int(hours.group(1))
        unit = "every hour" if n == 1 else f"every {n} hours"
        return f"{unit} at minute {minute}"
    try:
        text = CronSim(expression, datetime(2000, 1, 1, tzinfo=timezone.utc)).explain()
    except Exception:  # explain() is best effort; the expression itself is valid
        return expression
    return text[:1].lower() + text[1:]
