"""What a report changes (SPEC section 2), as pure functions over a service snapshot.

The ingest store folds a batch of reports through :func:`apply_report` inside one transaction;
the rules stay here so they are tested without a database or a clock.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from overc.core.alerts import FLAPPING, FLAPPING_END, ONLINE, STATE
from overc.core.durations import Grace
from overc.core.escalation import NO_ACK, Ack, ack_after_report
from overc.core.policy import (
    DEFAULT_FLAPPING, flapping_thresholds, flapping_value, push_transition,
)
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
    # SPEC 10: ``state`` above is the hard state; a problem not yet confirmed by ``attempts``
    # reports in a row is ``soft_state`` after ``soft_count`` reports. ``flap_bits`` holds the
    # last 20 transitions (newest in bit 0), ``flapping`` whether the service flaps now.
    soft_state: str | None = None
    soft_count: int = 0
    flap_bits: int = 0
    flapping: bool = False
    # SPEC 10.5: a sticky acknowledgement lasts until OK; one with an expiry ends then.
    ack_sticky: bool = False
    ack_expires: float | None = None


@dataclass(frozen=True)
class RaisedAlert:
    kind: str
    severity: str
    message: str
    #: Recorded but not notified, and why (``flapping``); None: notified as usual.
    held: str | None = None


@dataclass(frozen=True)
class Outcome:
    """The service after a report, whether its current state moved, and the alerts raised."""

    service: ServiceSnapshot
    current_changed: bool
    alerts: tuple[RaisedAlert, ...]
    late: bool
    #: Stored with the report: what it carried, or the time since the run it ended started.
    duration: float | None = None


def _evolve(before: ServiceSnapshot, **changes: object) -> ServiceSnapshot:
    """``dataclasses.replace`` for the ingest hot path: a copy of every field, whatever fields
    the snapshot has, with ``changes`` (field names only) applied. ``replace`` cost as much
    as the rest of :func:`apply_report` together."""
    assert changes.keys() <= before.__dict__.keys(), set(changes) - set(before.__dict__)
    after = object.__new__(ServiceSnapshot)
    after.__dict__.update(before.__dict__)
    after.__dict__.update(changes)
    return after


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


def soft_step(hard: str | None, soft_count: int, state: str, attempts: int
              ) -> tuple[str | None, str | None, int]:
    """SPEC 10.1: ``(hard state, soft state, soft count)`` after a report of ``state``.

    From OK (or no state yet) a problem stays soft until ``attempts`` problem reports in a row;
    the last of them makes it hard with the latest state. A return to OK, and a change between
    problem states once hard, are immediate.
    """
    if state == OK or (hard is not None and hard != OK):
        return state, None, 0
    count = soft_count + 1
    if count >= attempts:
        return state, None, 0
    return hard, state, count


def flap_step(before: ServiceSnapshot, state: str, flapping: str
              ) -> tuple[int, bool, float]:
    """SPEC 10.2: ``(flap bits, flapping now, flapping value)`` after a report of ``state``.

    Every reported state counts, soft ones included; flapping starts above the high threshold
    and ends at the low one or below (and when detection is turned off).
    """
    previous = before.soft_state or before.state
    bits = push_transition(before.flap_bits, previous is not None and state != previous)
    if not bits and not before.flapping:
        return 0, False, 0.0  # steady for 20 reports: the common case, kept cheap
    value = flapping_value(bits)
    thresholds = flapping_thresholds(flapping)
    if thresholds is None:
        return bits, False, value
    high, low = thresholds
    if not before.flapping:
        return bits, value > high, value
    return bits, value > low, value


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
    attempts: int = 1,
    flapping: str = DEFAULT_FLAPPING,
) -> Outcome:
    """Fold one report into a service.

    A report older than the current state is history only (no state change, no deadline move,
    no alert). The first report alerts only when it is not OK. A stale service that reports is
    fresh again with an ``online`` alert; a changed hard state raises a ``state`` alert and
    ends an acknowledgement, unless it is sticky and the new state is a problem (the alert is
    then held: ``acknowledged``; :func:`overc.core.escalation.ack_after_report`). A problem is soft for its first ``attempts - 1`` reports (no alert;
    :func:`soft_step`); while the service flaps its ``state`` alerts are held (:func:`flap_step`). ``arrival`` is when the server received the report (its own clock): the
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
    hard, soft_state, soft_count = soft_step(before.state, before.soft_count, state, attempts)
    bits, now_flapping, value = flap_step(before, state, flapping)
    changed = before.state is not None and hard is not None and hard != before.state
    ack = NO_ACK if not before.acked else ack_after_report(  # the hot path: no ack
        Ack(before.acked, before.ack_sticky, before.ack_expires), changed=changed, hard=hard,
        now=arrival if arrival is not None else report_time)
    # A sticky acknowledgement that lasts over WARN -> FAIL holds that alert: its owner knows.
    held = ("flapping" if before.flapping or now_flapping
            else "acknowledged" if changed and ack.acked else None)
    if hard is None:
        pass  # the first report is a soft problem: nothing is known for sure yet
    elif before.state is None:
        if hard != OK:
            alerts.append(RaisedAlert(STATE, hard, f'First report: "{hard}"', held))
    elif hard != before.state:
        alerts.append(RaisedAlert(STATE, hard, f'State changed: "{before.state}" -> "{hard}"',
                                  held))
    if now_flapping and not before.flapping:
        alerts.append(RaisedAlert(FLAPPING, "WARN", f"Flapping: {value:.0f} % state changes"))
    elif before.flapping and not now_flapping:
        truth = hard or OK
        # Ending on a soft problem: the hard state counts, but this report's output is the
        # problem's, so the message says both (``now OK, FAIL (soft 2/3): refused``).
        now = (truth if soft_state is None
               else f"{truth}, {soft_state} (soft {soft_count}/{attempts})")
        alerts.append(RaisedAlert(FLAPPING_END, truth, f"Stopped flapping; now {now}: {info}"))
    ends_run = before.run_started is not None and report_time >= before.run_started
    took = run_duration(before.run_started if ends_run else None, report_time, duration)
    after = _evolve(
        before,
        state=hard,
        info=info,
        period=period,
        last_time=report_time,
        deadline=report_deadline(report_time, period, grace, schedule=schedule, tz=tz,
                                 report_grace=report_grace, arrival=arrival),
        stale=False,
        acked=ack.acked,
        ack_sticky=ack.sticky,
        ack_expires=ack.expires,
        schedule=schedule,
        tz=(tz or DEFAULT_ZONE) if schedule is not None else None,
        grace=report_grace,
        duration=took if took is not None else before.duration,
        soft_state=soft_state,
        soft_count=soft_count,
        flap_bits=bits,
        flapping=now_flapping,
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
