"""What a report changes (SPEC section 2), as pure functions over a service snapshot.

The ingest store folds a batch of reports through :func:`apply_report` inside one transaction;
the rules stay here so they are tested without a database or a clock.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from overc.core.alerts import ONLINE, STATE
from overc.core.durations import Grace
from overc.core.runs import run_deadline, run_duration
from overc.core.schedule import DEFAULT_ZONE, scheduled_deadline
from overc.core.states import OK
from overc.core.watchdog_rules import fresh_deadline


@dataclass(frozen=True)
class ServiceSnapshot:
    """What the database knows of a service, as far as the rules need it."""

    state: str | None = None
    info: str | None = None
    period: int | None = None
    last_time: float | None = None
    deadline: float | None = None
    stale: bool = False
    acked: bool = False
    # SPEC 9: the latest report's promise (schedule, zone, own grace) and the current run.
    schedule: str | None = None
    tz: str | None = None
    grace: float | None = None
    run_started: float | None = None
    run_timeout: int | None = None
    run_deadline: float | None = None
    run_late: bool = False
    duration: float | None = None


@dataclass(frozen=True)
class RaisedAlert:
    kind: str
    severity: str
    message: str


@dataclass(frozen=True)
class Outcome:
    """The service after a report, whether its current state moved, and the alerts raised."""

    service: ServiceSnapshot
    current_changed: bool
    alerts: tuple[RaisedAlert, ...]
    late: bool
    #: Stored with the report: what it carried, or the time since the run it ended started.
    duration: float | None = None


def compute_deadline(report_time: float, period: float, grace: Grace,
                     report_grace: float | None = None, arrival: float | None = None
                     ) -> float:
    """``last report time + period + grace`` (grace at least 1 s); the report's own grace
    replaces the config's (SPEC 9.2).

    A report that arrives later than its grace after its own time was resent from an agent's
    spool: its agent was cut off and is flushing now, so the deadline is at least the fresh
    window from the arrival (:func:`overc.core.watchdog_rules.fresh_deadline`); otherwise a
    watchdog tick between two resent POSTs would declare a service offline that is reporting.
    """
    own = max(1.0, report_grace) if report_grace is not None else grace.for_period(period)
    return _not_before_window(report_time + period + own, report_time, period, grace, own,
                              arrival)


def _not_before_window(deadline: float, report_time: float, period: float, grace: Grace,
                       own_grace: float, arrival: float | None, *, scheduled: bool = False
                       ) -> float:
    if arrival is not None and arrival - report_time > own_grace:
        return max(deadline, fresh_deadline(arrival, period, grace, scheduled=scheduled,
                                            own_grace=own_grace))
    return deadline


def report_deadline(report_time: float, period: float, grace: Grace, *,
                    schedule: str | None = None, tz: str | None = None,
                    report_grace: float | None = None, arrival: float | None = None) -> float:
    """A scheduled service is due at the first scheduled time after its report plus grace;
    any other after its period plus grace (SPEC 9.1). Either way a late arrival gets at least
    the fresh window (:func:`compute_deadline`)."""
    if schedule is not None:
        deadline = scheduled_deadline(schedule, tz or DEFAULT_ZONE, report_time, grace,
                                      report_grace)
        own = max(1.0, report_grace) if report_grace is not None else grace.for_period(period)
        return _not_before_window(deadline, report_time, period, grace, own, arrival,
                                  scheduled=True)
    return compute_deadline(report_time, period, grace, report_grace, arrival)


def _seconds(value: float) -> str:
    return f"{int(round(value))} s"


def apply_report(
    before: ServiceSnapshot,
    state: str,
    info: str,
    period: int,
    report_time: float,
    grace: Grace,
    arrival: float | None = None,
    *,
    schedule: str | None = None,
    tz: str | None = None,
    report_grace: float | None = None,
    duration: float | None = None,
) -> Outcome:
    """Fold one report into a service.

    A report older than the current state is history only (no state change, no deadline move,
    no alert). The first report alerts only when it is not OK. A stale service that reports is
    fresh again with an ``online`` alert; a changed state raises a ``state`` alert and ends an
    acknowledgement. ``arrival`` is when the server received the report (its own clock): the
    ``online`` alert says how long the server heard nothing (arrival minus the previous
    report's time), and a late report gets at least the fresh window (:func:`compute_deadline`).

    Each report states its whole promise (``schedule``/``tz``/``report_grace``: none means
    period-based with the config's grace). A report at or after the start of a run ends it;
    its duration is the one it carries, else the time since the start.
    """
    if before.last_time is not None and report_time < before.last_time:
        return Outcome(before, False, (), True, duration)
    alerts: list[RaisedAlert] = []
    if before.stale:
        heard = arrival if arrival is not None else report_time
        silent_for = heard - before.last_time if before.last_time is not None else 0.0
        alerts.append(RaisedAlert(
            ONLINE, OK, f"Reporting again after {_seconds(silent_for)} without a report"
        ))
    if before.state is None:
        if state != OK:
            alerts.append(RaisedAlert(STATE, state, f'First report: "{state}"'))
    elif state != before.state:
        alerts.append(RaisedAlert(STATE, state, f'State changed: "{before.state}" -> "{state}"'))
    changed = before.state is not None and state != before.state
    ends_run = before.run_started is not None and report_time >= before.run_started
    took = run_duration(before.run_started if ends_run else None, report_time, duration)
    after = replace(
        before,
        state=state,
        info=info,
        period=period,
        last_time=report_time,
        deadline=report_deadline(report_time, period, grace, schedule=schedule, tz=tz,
                                 report_grace=report_grace, arrival=arrival),
        stale=False,
        acked=before.acked and not changed,
        schedule=schedule,
        tz=(tz or DEFAULT_ZONE) if schedule is not None else None,
        grace=report_grace,
        duration=took if took is not None else before.duration,
    )
    if ends_run:
        after = replace(after, run_started=None, run_timeout=None, run_deadline=None,
                        run_late=False)
    return Outcome(after, True, tuple(alerts), False, took)



def apply_start(before: ServiceSnapshot, started: float, timeout: int, grace: Grace
                ) -> ServiceSnapshot:
    """A start signal (SPEC 9.3): the service is running since ``started``; a run already in
    progress is replaced. State, deadline and staleness are untouched."""
    return replace(
        before,
        run_started=started,
        run_timeout=timeout,
        run_deadline=run_deadline(started, timeout, grace, before.grace),
        run_late=False,
    )
