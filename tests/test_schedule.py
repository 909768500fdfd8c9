"""SPEC 9 rules without a database: cron deadlines across DST, L and #, grace defaults, runs
(start -> report, start -> timeout -> late report), the schedule in words, 400s naming fields."""
from __future__ import annotations

from datetime import datetime

import pytest

from overc.core.alerts import TIMEOUT, channel_event
from overc.core.durations import Grace
from overc.core.payload import ValidationError, parse_start, parse_status
from overc.core.runs import run_deadline, timeout_message
from overc.core.schedule import (
    check_schedule,
    describe,
    interval_after,
    next_time,
    schedule_grace,
    scheduled_deadline,
    typical_interval,
    zone,
)
from overc.core.snapshot import ServiceSnapshot, apply_report, apply_start


def at(tz: str, *parts: int) -> float:
    return datetime(*parts, tzinfo=zone(tz)).timestamp()


def local(tz: str, t: float) -> str:
    return datetime.fromtimestamp(t, zone(tz)).strftime("%Y-%m-%d %H:%M %z")


# (zone, schedule, report time (local), next scheduled time (local, with offset))
DST = [
    # Europe/Berlin springs forward 2024-03-31 02:00 -> 03:00: a job at 02:30 runs at 03:00
    ("Europe/Berlin", "30 2 * * *", (2024, 3, 30, 12, 0), "2024-03-31 03:00 +0200"),
    ("Europe/Berlin", "30 2 * * *", (2024, 3, 31, 3, 5), "2024-04-01 02:30 +0200"),
    ("Europe/Berlin", "0 3 * * *", (2024, 3, 30, 3, 30), "2024-03-31 03:00 +0200"),
    # ... and falls back 2024-10-27 03:00 -> 02:00: a job at 02:30 runs once, the first time
    ("Europe/Berlin", "30 2 * * *", (2024, 10, 26, 12, 0), "2024-10-27 02:30 +0200"),
    ("Europe/Berlin", "30 2 * * *", (2024, 10, 27, 2, 45), "2024-10-28 02:30 +0100"),
    # America/New_York: forward 2024-03-10 02:00 -> 03:00, back 2024-11-03 02:00 -> 01:00
    ("America/New_York", "30 2 * * *", (2024, 3, 9, 23, 0), "2024-03-10 03:00 -0400"),
    ("America/New_York", "30 1 * * *", (2024, 11, 2, 23, 0), "2024-11-03 01:30 -0400"),
    ("America/New_York", "30 1 * * *", (2024, 11, 3, 1, 45), "2024-11-04 01:30 -0500"),
    # L: the last day of the month; #: the first Monday
    ("UTC", "0 3 L * *", (2024, 2, 10, 0, 0), "2024-02-29 03:00 +0000"),
    ("UTC", "0 3 L * *", (2024, 2, 29, 3, 0), "2024-03-31 03:00 +0000"),
    ("Europe/Berlin", "0 9 * * mon#1", (2024, 6, 4, 0, 0), "2024-07-01 09:00 +0200"),
    ("America/New_York", "0 9 * * 1#1", (2024, 9, 1, 0, 0), "2024-09-02 09:00 -0400"),
    ("UTC", "*/5 * * * *", (2024, 1, 1, 0, 4), "2024-01-01 00:05 +0000"),
]


@pytest.mark.parametrize("tz, schedule, report, expected", DST)
def test_next_scheduled_time(tz, schedule, report, expected):
    assert local(tz, next_time(schedule, tz, at(tz, *report))) == expected


def test_next_time_is_strictly_after_the_report():
    t = at("UTC", 2024, 1, 1, 3, 0)
    assert next_time("0 3 * * *", "UTC", t) == t + 86400
    assert next_time("0 3 * * *", "UTC", t - 0.5) == t


def test_spring_forward_shortens_the_interval_grace_applies_to():
    # next two times after Sat noon: Sun 03:00 (+02:00, the skipped 02:30) and Mon 02:30
    t = at("Europe/Berlin", 2024, 3, 30, 12, 0)
    assert interval_after("30 2 * * *", "Europe/Berlin", t) == 86400 - 1800
    # fall back: Sun 02:30 (+02:00) to Mon 02:30 (+01:00) is 25 hours
    t = at("Europe/Berlin", 2024, 10, 26, 12, 0)
    assert interval_after("30 2 * * *", "Europe/Berlin", t) == 90000


def test_deadline_is_next_time_plus_grace():
    t = at("Europe/Berlin", 2024, 6, 1, 3, 20)  # the 03:00 backup reported at 03:20
    nxt = at("Europe/Berlin", 2024, 6, 2, 3, 0)
    # config grace 10 % of the interval (one day): 8640 s
    assert scheduled_deadline("0 3 * * *", "Europe/Berlin", t, Grace()) == nxt + 8640
    # config grace in seconds, and the report's own grace (which wins)
    assert scheduled_deadline("0 3 * * *", "Europe/Berlin", t, Grace(seconds=600)) == nxt + 600
    assert scheduled_deadline("0 3 * * *", "Europe/Berlin", t, Grace(), 900) == nxt + 900
    assert schedule_grace("*/5 * * * *", "UTC", t, Grace(), None) == 30.0
    assert schedule_grace("*/5 * * * *", "UTC", t, Grace(), 0) == 1.0  # at least 1 s


def test_typical_interval_is_what_overcli_sends_as_period():
    t = at("UTC", 2024, 1, 1, 0, 0)
    assert typical_interval("0 3 * * *", "Europe/Berlin", t) == 86400
    assert typical_interval("*/5 * * * *", "UTC", t) == 300
    assert typical_interval("0 9 * * 1-5", "UTC", t) == 86400  # weekends are the exception
    assert typical_interval("0 0 1 1 *", "UTC", t) == 31_536_000 or \
        typical_interval("0 0 1 1 *", "UTC", t) == 31_622_400


def test_schedule_in_words():
    assert describe("0 3 * * *", "Europe/Berlin") == "at 03:00, Europe/Berlin"
    assert describe("*/5 * * * *", "UTC") == "every 5 minutes"
    assert describe("* * * * *", "Asia/Tokyo") == "every minute"
    assert describe("15 */2 * * *", "UTC") == "every 2 hours at minute 15, UTC"
    assert describe("0 3 L * *", "UTC") == "at 03:00 on the last day of every month, UTC"
    assert describe("0 9 * * 1#1", "America/New_York") == \
        "at 09:00 on the first Monday of the month, America/New_York"


@pytest.mark.parametrize("expression", [
    "0 3 * *", "0 0 3 * * *", "61 * * * *", "x * * * *", "0 0 30 2 *", "", "0 3 * * * " * 30,
])
def test_invalid_schedules_are_refused(expression):
    with pytest.raises(ValueError):
        check_schedule(expression)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../../etc/passwd", " UTC", "x" * 100])
def test_invalid_zones_are_refused(name):
    with pytest.raises(ValueError, match="IANA"):
        zone(name)


# -- the same rules through a report (apply_report) and a push body (parse_status) ----------

def test_report_with_schedule_sets_the_deadline_and_a_plain_report_turns_it_back():
    t = at("UTC", 2024, 1, 1, 3, 10)
    first = apply_report(ServiceSnapshot(), "OK", "", 86400, t, Grace(),
                         schedule="0 3 * * *", tz="UTC")
    assert first.service.deadline == at("UTC", 2024, 1, 2, 3, 0) + 8640
    assert (first.service.schedule, first.service.tz) == ("0 3 * * *", "UTC")
    with_grace = apply_report(first.service, "OK", "", 86400, t + 60, Grace(),
                              schedule="0 3 * * *", tz="UTC", report_grace=120)
    assert with_grace.service.deadline == at("UTC", 2024, 1, 2, 3, 0) + 120
    assert with_grace.service.grace == 120
    plain = apply_report(with_grace.service, "OK", "", 60, t + 120, Grace())
    assert plain.service.deadline == t + 120 + 60 + 6  # period + 10 % again, own grace gone
    assert (plain.service.schedule, plain.service.tz, plain.service.grace) == (None, None, None)
    own = apply_report(plain.service, "OK", "", 60, t + 180, Grace(), report_grace=30)
    assert own.service.deadline == t + 180 + 60 + 30


def test_run_start_then_report_stores_the_duration():
    t = 1_000_000.0
    s = apply_report(ServiceSnapshot(), "OK", "", 86400, t, Grace()).service
    running = apply_start(s, t + 100, 3600, Grace(seconds=5))
    assert (running.run_started, running.run_timeout, running.run_deadline) == \
        (t + 100, 3600, t + 100 + 3605)
    assert running.deadline == s.deadline and running.state == "OK"  # only the run changes
    done = apply_report(running, "OK", "", 86400, t + 1300, Grace())
    assert done.duration == 1200.0 and done.service.duration == 1200.0
    assert (done.service.run_started, done.service.run_deadline, done.service.run_late) == \
        (None, None, False)
    # a duration the report carries wins (the agent measured it)
    sent = apply_report(apply_start(done.service, t + 2000, 60, Grace()), "OK", "", 86400,
                        t + 2030, Grace(), duration=27.5)
    assert sent.duration == 27.5
    # a report without a run and without a duration stores none, the last one stays
    plain = apply_report(sent.service, "OK", "", 86400, t + 3000, Grace())
    assert plain.duration is None and plain.service.duration == 27.5


def test_run_start_then_timeout_then_late_report():
    t = 2_000_000.0
    running = apply_start(ServiceSnapshot(), t, 3600, Grace(seconds=5))
    assert running.run_deadline == t + 3605
    assert timeout_message(t + 3605.4, t, 3600) == \
        "Started 3605 s ago and not finished (timeout 3600 s)"
    late = ServiceSnapshot(run_started=t, run_timeout=3600, run_late=True)  # the watchdog's
    done = apply_report(late, "OK", "", 86400, t + 4000, Grace())
    assert done.duration == 4000.0 and not done.service.run_late
    assert done.service.run_started is None
    # grace of a run: the service's own report grace, else the config's applied to the timeout
    assert run_deadline(t, 3600, Grace()) == t + 3600 + 360
    assert run_deadline(t, 3600, Grace(), report_grace=60) == t + 3660
    assert channel_event(TIMEOUT, "FAIL") == ("plugin", "timeout")


def test_a_report_from_before_the_start_does_not_end_the_run():
    t = 3_000_000.0
    s = apply_report(ServiceSnapshot(), "OK", "", 60, t - 10, Grace()).service
    running = apply_start(s, t, 60, Grace())
    old = apply_report(running, "OK", "", 60, t - 5, Grace())
    assert old.service.run_started == t and old.duration is None


SERVER = {"name": "db1", "key": "k"}


def status(service: dict) -> dict:
    return {"server": SERVER, "period": 60, "services": [{"name": "backup", "state": "OK",
                                                          **service}]}


def test_status_body_with_schedule_tz_grace_duration():
    _, [report] = parse_status(status({"schedule": " 0  3 * * * ", "tz": "Europe/Berlin",
                                       "grace": 600, "duration": 12.5}), 0.0)
    assert (report.schedule, report.tz, report.grace, report.duration) == \
        ("0 3 * * *", "Europe/Berlin", 600.0, 12.5)
    _, [report] = parse_status(status({"schedule": "0 3 * * *"}), 0.0)
    assert report.tz == "UTC"
    _, [report] = parse_status(status({}), 0.0)
    assert (report.schedule, report.tz, report.grace, report.duration) == (None,) * 4


@pytest.mark.parametrize("service, field", [
    ({"schedule": "0 3 * *"}, "services[0].schedule"),
    ({"schedule": 3}, "services[0].schedule"),
    ({"schedule": "0 25 * * *"}, "services[0].schedule"),
    ({"schedule": "0 3 * * *", "tz": "Mars/Base"}, "services[0].tz"),
    ({"tz": "Europe/Berlin"}, "services[0].tz"),
    ({"grace": -1}, "services[0].grace"),
    ({"grace": 31_536_001}, "services[0].grace"),
    ({"grace": "10"}, "services[0].grace"),
    ({"grace": True}, "services[0].grace"),
    ({"duration": -0.5}, "services[0].duration"),
    ({"duration": float("nan")}, "services[0].duration"),
])
def test_bad_schedule_fields_name_the_field(service, field):
    with pytest.raises(ValidationError) as error:
        parse_status(status(service), 0.0)
    assert error.value.field == field


def test_start_body():
    _, starts = parse_start({"server": SERVER, "services": [
        {"name": "backup", "timeout": 3600}, {"name": "sync", "timeout": "60", "time": 5.0}]},
        100.0)
    assert [(s.service, s.timeout, s.time) for s in starts] == \
        [("backup", 3600, None), ("sync", 60, 5.0)]


@pytest.mark.parametrize("service, field", [
    ({"name": "backup"}, "services[0].timeout"),
    ({"name": "backup", "timeout": 0}, "services[0].timeout"),
    ({"name": "backup", "timeout": 31_536_001}, "services[0].timeout"),
    ({"name": "backup", "timeout": "soon"}, "services[0].timeout"),
    ({"timeout": 10}, "services[0].name"),
    ({"name": "backup", "timeout": 10, "time": 10_000.0}, "services[0].time"),
])
def test_bad_start_bodies_name_the_field(service, field):
    with pytest.raises(ValidationError) as error:
        parse_start({"server": SERVER, "services": [service]}, 100.0)
    assert error.value.field == field
