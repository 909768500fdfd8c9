"""SPEC 10 rules where they meet, as pure functions driven by a ``task.Clock``: a soft problem on
a flapping service, a dependency whose parent goes stale, server offline during a maintenance
window, escalation of an acknowledged problem, an acknowledgement that expires, and the
repeats and escalations of a child whose parent is down. No reactor, no database (the parts
decided in the storage layer are tested on both databases in tests/monitoring/)."""
from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from overc.core.dependencies import ChildNow, Parent, catch_up, hold, parent_down
from overc.core.durations import Grace
from overc.core.escalation import (
    MAINTENANCE_RECHECK, Ack, EscalationAction as E, ack_active, ack_after_report,
    decide_escalation,
)
from overc.core.maintenance import HeldAlert, ServiceNow, decide_catch_up
from overc.core.repeats import RepeatAction as R, decide_repeat
from overc.core.server_offline import Verdict, server_deadline, service_verdict
from overc.core.snapshot import ServiceSnapshot, apply_report

GRACE = Grace()
PERIOD = 60


def fold(clock: Clock, states, *, attempts=1, flapping="30/25", start=None):
    """One report a minute on ``clock``; per report (alerts as (kind, severity, held), service)."""
    service = start or ServiceSnapshot(state="OK", period=PERIOD, last_time=clock.seconds())
    steps = []
    for n, state in enumerate(states):
        clock.advance(PERIOD)
        out = apply_report(service, state, f"try {n}", PERIOD, clock.seconds(), GRACE,
                           attempts=attempts, flapping=flapping)
        service = out.service
        steps.append(([(a.kind, a.severity, a.held) for a in out.alerts], service))
    return steps


def kinds(steps):
    return [alert for alerts, _ in steps for alert in alerts]


# -- a soft problem on a flapping service ----------------------------------------------------

@pytest.mark.parametrize("tail, attempts, after_flapping", [
    # While it flaps, a problem that becomes hard is recorded, held.
    (["FAIL", "FAIL", "FAIL"], 3, [("state", "FAIL", "flapping")]),
    # A soft problem that goes away while flapping: nothing at all, not even held.
    (["FAIL", "OK"], 3, []),
    # With one attempt the same FAIL is hard at once, and held too.
    (["FAIL"], 1, [("state", "FAIL", "flapping")]),
])
def test_a_soft_problem_on_a_flapping_service(tail, attempts, after_flapping):
    clock = Clock()
    clock.advance(1000)
    # Hard FAIL/OK changes until it flaps (attempts 1), then the tail with ``attempts``.
    steps = fold(clock, ["FAIL", "OK"] * 3)
    assert kinds(steps)[-1] == ("flapping", "WARN", None) and steps[-1][1].flapping
    held = fold(clock, tail, attempts=attempts, start=steps[-1][1])
    assert kinds(held) == after_flapping
    assert all(s.flapping for _, s in held)


def test_soft_reports_count_as_changes_for_flapping():
    """Icinga counts every reported state: a service that blips OK/FAIL and never becomes
    hard still flaps (one WARN `flapping`), though it never raised a `state` alert."""
    clock = Clock()
    steps = fold(clock, ["FAIL", "OK"] * 4, attempts=3)
    assert kinds(steps) == [("flapping", "WARN", None)]
    assert {s.state for _, s in steps} == {"OK"}


def test_flapping_that_ends_on_a_soft_problem_tells_both_states():
    """Flapping can end on a report that is still a soft problem: the severity is the hard
    state (it counts), and the message says the soft one too, since the output is the
    problem's; the hard problem is then notified as usual (no longer flapping)."""
    clock = Clock()
    states = (["OK", "OK", "FAIL", "FAIL", "FAIL", "FAIL", "FAIL", "FAIL", "OK", "OK", "OK"]
              + ["FAIL"] * 6 + ["OK"] * 5 + ["FAIL"] * 3 + ["OK"] * 2 + ["FAIL"] * 4
              + ["OK"] * 4 + ["FAIL"] * 4)
    service = ServiceSnapshot(state="OK", period=PERIOD, last_time=0.0)
    messages = []
    for n, state in enumerate(states):
        clock.advance(PERIOD)
        out = apply_report(service, state, f"try {n}", PERIOD, clock.seconds(), GRACE,
                           attempts=4)
        service = out.service
        messages += [(a.kind, a.severity, a.message, a.held) for a in out.alerts]
    end = [m for m in messages if m[0] == "flapping-end"]
    assert end[-1] == ("flapping-end", "OK", "Stopped flapping; now OK, FAIL (soft 3/4): try 37",
                       None)
    assert end[0][2] == "Stopped flapping; now FAIL: try 30"  # a hard state: as before
    assert messages[-1] == ("state", "FAIL", 'State changed: "OK" -> "FAIL"', None)


# -- a dependency whose parent goes stale ----------------------------------------------------

@pytest.mark.parametrize("parent_state, parent_stale, child_state, held", [
    ("OK", True, "FAIL", "depends on mysql"),  # its last state was fine, but it went silent
    (None, True, "FAIL", "depends on mysql"),
    ("FAIL", True, "FAIL", "depends on mysql"),
    ("OK", False, "FAIL", None),  # reporting and OK
    # A parent with a soft problem is not down: its hard state is OK.
    ("OK", False, "WARN", None),
])
def test_a_parent_that_goes_stale_holds_its_child(parent_state, parent_stale, child_state,
                                                    held):
    assert hold("app", "mysql", Parent(parent_state, parent_stale)) == held


def test_a_parent_soft_problem_does_not_hold_but_its_hard_one_does():
    clock = Clock()
    steps = fold(clock, ["FAIL", "FAIL", "FAIL"], attempts=3)
    downs = [parent_down(Parent(s.state, s.stale)) for _, s in steps]
    assert downs == [False, False, True]


@pytest.mark.parametrize("child, told, alert", [
    # The child went stale while its parent was stale (its own offline was held).
    (ChildNow("FAIL", True), None, ("offline", "FAIL",
                                    "Still not reporting now that mysql is back")),
    # Its channels were told it was stale before the parent went stale: nothing new.
    (ChildNow("FAIL", True), "STALE", None),
    (ChildNow("FAIL", False, "refused"), None,
     ("state", "FAIL", "Still FAIL now that mysql is back: refused")),
    (ChildNow("OK", False, "fine"), "FAIL",
     ("state", "OK", "OK again; held while mysql was down: fine")),
    (ChildNow("FAIL", False, acked=True), None, None),
    (ChildNow("FAIL", False, flapping=True), None, None),
])
def test_the_catch_up_when_a_stale_parent_reports_again(child, told, alert):
    child = ChildNow(child.state, child.stale, child.info, child.acked, child.flapping, told)
    got = catch_up("mysql", child)
    assert (None if got is None else (got.kind, got.severity, got.message)) == alert


# -- server offline during a maintenance window ----------------------------------------------

@pytest.mark.parametrize("offline, last_seen, due, verdict", [
    (True, 1000.0, 1060.0, Verdict.HELD),  # the server is offline: held, window or not
    (False, 1061.0, 1060.0, Verdict.NOTIFY),  # its server spoke after it was due: hung plugin
    (False, 1030.0, 1060.0, Verdict.WAIT),  # silent since it was due: wait for the server
    (False, 1000.0, 1060.0, Verdict.NOTIFY),  # the server's deadline passed, not yet decided
])
def test_a_services_verdict_under_its_server(offline, last_seen, due, verdict):
    """The verdict is the same inside a maintenance window (it makes the service stale or not);
    the window holds the alerts at dispatch."""
    clock = Clock()
    clock.advance(1067)
    deadline = server_deadline(last_seen, PERIOD, GRACE)
    assert service_verdict(server_offline=offline, server_deadline=deadline,
                           server_last_seen=last_seen, service_due=due, now=clock.seconds(),
                           service_deadline=due + 6, max_wait=66.0) == verdict


def test_a_window_end_never_sends_a_services_offline_held_by_its_dead_server():
    """At a window's end, only services' held alerts are caught up; alerts without a service
    are superseded here (a dead server's `server-offline` is owed by the store: it checks the
    server is still offline, tests/monitoring/test_server_offline_store.py)."""
    held = [HeldAlert(1, None), HeldAlert(2, 7), HeldAlert(3, 8)]
    services = {7: ServiceNow("FAIL", False, told=None), 8: ServiceNow("OK", False)}
    decision = decide_catch_up(held, services)
    assert (decision.notify, decision.supersede) == ([2], [1, 3])


# -- escalation of an acknowledged problem, and an acknowledgement that expires --------------

@pytest.mark.parametrize("ack, now, action", [
    (Ack(True), 2000.0, E.PARK),  # acknowledged: parked until the ack ends
    (Ack(True, sticky=True), 2000.0, E.PARK),
    (Ack(True, expires=3000.0), 2999.0, E.PARK),
    (Ack(True, expires=3000.0), 3000.0, E.SEND),  # expired at that very second
    (Ack(True, expires=3000.0), 3500.0, E.SEND),
    (Ack(False), 2000.0, E.SEND),
])
def test_escalation_of_an_acknowledged_problem(ack, now, action):
    clock = Clock()
    clock.advance(now)
    acked = ack_active(ack.acked, ack.expires, clock.seconds())
    decision = decide_escalation(clock.seconds(), state="FAIL", stale=False, acked=acked,
                                 in_maintenance=False)
    assert decision.action == action


@pytest.mark.parametrize("acked, maintenance, parent, action, due", [
    (True, True, False, E.PARK, None),  # the ack parks it; its end re-arms it
    (False, True, False, E.LATER, MAINTENANCE_RECHECK),
    (False, False, True, E.LATER, MAINTENANCE_RECHECK),  # the child of a parent that is down
    (True, False, True, E.PARK, None),
    (False, False, False, E.SEND, None),
])
def test_escalation_when_ack_maintenance_and_a_down_parent_meet(acked, maintenance, parent,
                                                                   action, due):
    clock = Clock()
    clock.advance(5000)
    decision = decide_escalation(clock.seconds(), state="FAIL", stale=False, acked=acked,
                                 in_maintenance=maintenance, parent_down=parent)
    assert decision.action == action
    assert decision.next_due == (None if due is None else clock.seconds() + due)


@pytest.mark.parametrize("acked, silenced, parent, action", [
    (False, False, False, R.SEND),
    (False, False, True, R.LATER),  # a child's reminder waits while its parent is down
    (False, True, True, R.LATER),
    (True, False, True, R.STOP),  # acknowledged: no reminders at all until it ends
])
def test_a_childs_repeat_while_its_parent_is_down(acked, silenced, parent, action):
    clock = Clock()
    clock.advance(5000)
    decision = decide_repeat(clock.seconds(), repeat=300.0, state="FAIL", stale=False,
                             acked=acked, silenced=silenced, parent_down=parent)
    assert decision.action == action
    if action == R.LATER:
        assert decision.next_due == clock.seconds() + 300.0


@pytest.mark.parametrize("ack, changed, hard, at, after", [
    # An expiring ack lasts until its expiry, over reports without a change.
    (Ack(True, expires=3000.0), False, "FAIL", 2999.0, Ack(True, expires=3000.0)),
    # Expired: a change ends it (its alert re-arms repeats and escalations)...
    (Ack(True, sticky=True, expires=3000.0), True, "WARN", 3001.0, Ack()),
    # ...a report without one leaves it to the dispatcher, which ends it and resumes what it
    # parked (ended by the ingest, nothing would resume them).
    (Ack(True, expires=3000.0), False, "FAIL", 3000.0, Ack(True, expires=3000.0)),
    # Sticky and not yet expired: survives WARN -> FAIL, ends on OK.
    (Ack(True, sticky=True, expires=3000.0), True, "FAIL", 2500.0,
     Ack(True, sticky=True, expires=3000.0)),
    (Ack(True, sticky=True, expires=3000.0), True, "OK", 2500.0, Ack()),
    # Plain: ends at the first change of the hard state, expiry or not.
    (Ack(True, expires=3000.0), True, "FAIL", 2500.0, Ack()),
])
def test_an_ack_that_expires(ack, changed, hard, at, after):
    clock = Clock()
    clock.advance(at)
    assert ack_after_report(ack, changed=changed, hard=hard, now=clock.seconds()) == after


def test_an_expiring_ack_over_soft_reports_and_its_expiry():
    """A sticky ack of a hard WARN, expiring at 1300, with ``attempts = 3``: once hard,
    problem changes are immediate (never soft), so the sticky ack holds WARN -> FAIL and
    FAIL -> WARN until it expires; the first change after the expiry ends it and is notified."""
    clock = Clock()
    clock.advance(1000)
    start = ServiceSnapshot(state="WARN", period=PERIOD, last_time=1000.0, acked=True,
                            ack_sticky=True, ack_expires=1300.0)
    steps = fold(clock, ["WARN", "WARN", "FAIL", "WARN", "FAIL", "FAIL"], attempts=3,
                 flapping="off", start=start)
    acks = [(s.acked, s.ack_expires) for _, s in steps]
    assert acks == [(True, 1300.0), (True, 1300.0), (True, 1300.0), (True, 1300.0),
                    (False, None), (False, None)]
    # The sticky ack holds WARN -> FAIL and FAIL -> WARN until 1300; at 1300 it is over.
    assert [alerts for alerts, _ in steps] == [
        [], [], [("state", "FAIL", "acknowledged")], [("state", "WARN", "acknowledged")],
        [("state", "FAIL", None)], []]
