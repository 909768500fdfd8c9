"""Alert decisions and deadlines (SPEC 2) as pure functions."""
import pytest

from overc.core.durations import Grace, parse_grace
from overc.core.snapshot import ServiceSnapshot, apply_report, compute_deadline

GRACE = Grace()  # 10 %, at least 1 s


def kinds(outcome):
    return [(a.kind, a.severity, a.message) for a in outcome.alerts]


@pytest.mark.parametrize("period, grace, deadline", [
    (60, "10%", 1000 + 60 + 6),
    (5, "10%", 1000 + 5 + 1),  # at least one second
    (60, "0%", 1000 + 60 + 1),
    (60, "30", 1000 + 60 + 30),
    (60, "2m", 1000 + 60 + 120),
    (3600, "50%", 1000 + 3600 + 1800),
])
def test_deadline(period, grace, deadline):
    assert compute_deadline(1000.0, period, parse_grace(grace)) == deadline


def test_first_ok_report_raises_nothing():
    out = apply_report(ServiceSnapshot(), "OK", "up", 60, 1000.0, GRACE)
    assert kinds(out) == [] and out.current_changed and not out.late
    assert (out.service.state, out.service.deadline) == ("OK", 1066.0)


def test_first_problem_report_alerts():
    out = apply_report(ServiceSnapshot(), "WARN", "91%", 60, 1000.0, GRACE)
    assert kinds(out) == [("state", "WARN", 'First report: "WARN"')]


def test_state_change_alerts_and_equal_state_does_not():
    before = ServiceSnapshot(state="OK", period=60, last_time=900.0)
    assert kinds(apply_report(before, "FAIL", "", 60, 1000.0, GRACE)) == [
        ("state", "FAIL", 'State changed: "OK" -> "FAIL"')]
    assert kinds(apply_report(before, "OK", "", 60, 1000.0, GRACE)) == []


def test_late_report_is_history_only():
    before = ServiceSnapshot(state="OK", period=60, last_time=1000.0, deadline=1066.0)
    out = apply_report(before, "FAIL", "old", 60, 990.0, GRACE)
    assert out.late and not out.current_changed and kinds(out) == []
    assert out.service == before


def test_report_with_equal_time_is_current():
    before = ServiceSnapshot(state="OK", period=60, last_time=1000.0)
    assert apply_report(before, "WARN", "", 60, 1000.0, GRACE).current_changed


def test_stale_service_comes_back_online():
    before = ServiceSnapshot(state="OK", period=60, last_time=900.0, stale=True)
    out = apply_report(before, "OK", "", 60, 1000.0, GRACE)
    assert kinds(out) == [("online", "OK", "Reporting again after 100 s without a report")]
    assert not out.service.stale


def test_stale_service_back_in_another_state_raises_both():
    before = ServiceSnapshot(state="OK", period=60, last_time=900.0, stale=True)
    out = apply_report(before, "FAIL", "", 60, 1000.0, GRACE)
    assert [a.kind for a in out.alerts] == ["online", "state"]


def test_state_change_ends_an_acknowledgement():
    acked = ServiceSnapshot(state="FAIL", period=60, last_time=900.0, acked=True)
    assert apply_report(acked, "FAIL", "", 60, 1000.0, GRACE).service.acked
    assert not apply_report(acked, "OK", "", 60, 1000.0, GRACE).service.acked


def test_period_follows_the_latest_report():
    before = ServiceSnapshot(state="OK", period=60, last_time=900.0)
    out = apply_report(before, "OK", "", 300, 1000.0, GRACE)
    assert (out.service.period, out.service.deadline) == (300, 1000 + 300 + 30)


def test_service_created_by_an_alert_has_no_state_yet():
    out = apply_report(ServiceSnapshot(), "FAIL", "", 60, 1000.0, GRACE)
    assert kinds(out) == [("state", "FAIL", 'First report: "FAIL"')]



def test_online_says_how_long_the_server_heard_nothing():
    # The last report came at 1000; the agent spooled through a 35 s cut and resends a report
    # made at 1001: the server heard nothing from 1000 to its arrival at 1035.
    before = ServiceSnapshot(state="OK", period=5, last_time=1000.0, deadline=1006.0, stale=True)
    out = apply_report(before, "OK", "", 5, 1001.0, GRACE, arrival=1035.0)
    assert kinds(out) == [("online", "OK", "Reporting again after 35 s without a report")]


@pytest.mark.parametrize("period, time, arrival, deadline", [
    (5, 1000.0, 1000.0, 1006.0),     # on time: time + period + grace
    (5, 999.5, 1000.0, 1005.5),      # a little late (within grace): still time-based
    (5, 960.0, 1000.0, 1066.0),      # resent from a spool: the fresh window from the arrival
    (60, 900.0, 1000.0, 1071.0),     # 65 s window + 6 s grace
    (600, 100.0, 1000.0, 1660.0),    # a long period is its own window
    (600, 950.0, 1000.0, 1610.0),    # late, but time + period + grace is later still
])
def test_a_late_report_never_leaves_a_deadline_before_the_fresh_window(period, time, arrival,
                                                                        deadline):
    before = ServiceSnapshot(state="OK", period=period, last_time=0.0, deadline=1.0, stale=True)
    out = apply_report(before, "OK", "", period, time, GRACE, arrival=arrival)
    assert out.service.deadline == pytest.approx(deadline)
