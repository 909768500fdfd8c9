"""What a report changes (SPEC section 2), as pure functions over a service snapshot.

The ingest store folds a batch of reports through :func:`apply_report` inside one transaction;
the rules stay here so they are tested without a database or a clock.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from overc.core.alerts import ONLINE, STATE
from overc.core.durations import Grace
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


def compute_deadline(report_time: float, period: float, grace: Grace,
                     arrival: float | None = None) -> float:
    """``last report time + period + grace`` (grace at least 1 s).

    A report that arrives later than its grace after its own time was resent from an agent's
    spool: its agent was cut off and is flushing now, so the deadline is at least the fresh
    window from the arrival (:func:`overc.core.watchdog_rules.fresh_deadline`); otherwise a
    watchdog tick between two resent POSTs would declare a service offline that is reporting.
    """
    deadline = report_time + period + grace.for_period(period)
    if arrival is not None and arrival - report_time > grace.for_period(period):
        deadline = max(deadline, fresh_deadline(arrival, period, grace))
    return deadline


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
) -> Outcome:
    """Fold one report into a service.

    A report older than the current state is history only (no state change, no deadline move,
    no alert). The first report alerts only when it is not OK. A stale service that reports is
    fresh again with an ``online`` alert; a changed state raises a ``state`` alert and ends an
    acknowledgement. ``arrival`` is when the server received the report (its own clock): the
    ``online`` alert says how long the server heard nothing (arrival minus the previous
    report's time), and a late report gets at least the fresh window (:func:`compute_deadline`).
    """
    if before.last_time is not None and report_time < before.last_time:
        return Outcome(before, False, (), True)
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
    after = replace(
        before,
        state=state,
        info=info,
        period=period,
        last_time=report_time,
        deadline=compute_deadline(report_time, period, grace, arrival),
        stale=False,
        acked=before.acked and not changed,
    )
    return Outcome(after, True, tuple(alerts), False)

