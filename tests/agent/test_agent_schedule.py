"""Scheduling arithmetic: 0.8 x period - reserve, reserve = max-lag or 3 x last run, >= 1 s."""
import pytest
from hypothesis import given, strategies as st

from overc.agent import schedule


def test_interval_without_lag():
    assert schedule.interval(60, None, 0.0) == pytest.approx(48.0)


def test_reserve_is_three_times_last_run():
    assert schedule.interval(60, None, 2.0) == pytest.approx(48.0 - 6.0)


def test_max_lag_replaces_measured_run_time():
    assert schedule.interval(60, 5.0, 2.0) == pytest.approx(43.0)
    assert schedule.interval(60, 0.0, 10.0) == pytest.approx(48.0)  # max-lag = 0 is "set"


def test_never_below_one_second():
    assert schedule.interval(1, None, 0.0) == 1.0
    assert schedule.interval(60, None, 100.0) == 1.0
    assert schedule.interval(10, 9.0, 0.0) == 1.0


def test_next_start_counts_from_the_last_start():
    assert schedule.next_start(100.0, 101.0, 60, None) == pytest.approx(100.0 + 48.0 - 3.0)


def test_next_start_never_overlaps_a_slow_run():
    # the run took longer than its interval: the next starts as soon as it finished
    assert schedule.next_start(100.0, 200.0, 60, 5.0) == 200.0


@given(
    period=st.integers(1, 31_536_000),
    max_lag=st.none() | st.floats(0, 1e6),
    run=st.floats(0, 1e5),
)
def test_interval_properties(period, max_lag, run):
    value = schedule.interval(period, max_lag, run)
    assert value >= 1.0
    assert value <= max(0.8 * period, 1.0)


@given(period=st.integers(2, 100_000), run=st.floats(0, 10))
def test_report_reaches_server_before_deadline_when_runs_are_steady(period, run):
    # With a steady run time, start + interval + run (the next report) stays within the period.
    nxt = schedule.next_start(0.0, run, period, None)
    if schedule.interval(period, None, run) > 1.0:
        assert nxt + run <= period
