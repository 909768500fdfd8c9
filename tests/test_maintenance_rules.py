"""The pure rules of maintenance windows (SPEC 11), driven by a ``task.Clock``: when a window
runs, its recurrences across daylight-saving changes, who it covers, the catch-up at its end,
and the validation of windows as callers send them."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from twisted.internet.task import Clock

from overc.core.maintenance import (
    HeldAlert, ServiceNow, Window, WindowIndex, decide_catch_up, told_status,
)
from overc.core.maintenance_input import parse_push_maintenance, parse_window
from overc.core.payload import ValidationError

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def at(zone: ZoneInfo, *parts: int) -> float:
    return datetime(*parts, tzinfo=zone).timestamp()


def test_one_off_window_runs_from_start_to_end_exclusive():
    clock = Clock()
    clock.advance(1000)
    window = Window(1, start=1100.0, end=1200.0, server_id=1)
    assert not window.active(clock.seconds())
    assert window.current_or_next(clock.seconds()) == (1100.0, 1200.0)
    clock.advance(100)
    assert window.active(clock.seconds())
    clock.advance(99.9)
    assert window.active(clock.seconds())
    clock.advance(0.1)
    assert not window.active(clock.seconds())
    assert window.current_or_next(clock.seconds()) is None


def test_recurring_window_every_sunday_two_hours():
    clock = Clock()
    window = Window(1, schedule="0 2 * * sun", tz="UTC", duration=7200.0)
    clock.advance(at(ZoneInfo("UTC"), 2026, 6, 7, 1, 59))  # a Sunday
    assert not window.active(clock.seconds())
    assert window.current_or_next(clock.seconds())[0] == at(ZoneInfo("UTC"), 2026, 6, 7, 2, 0)
    clock.advance(60)
    assert window.occurrence(clock.seconds()) == (clock.seconds(), clock.seconds() + 7200)
    clock.advance(7199)
    assert window.active(clock.seconds())
    clock.advance(1)
    assert not window.active(clock.seconds())
    assert window.current_or_next(clock.seconds())[0] == at(ZoneInfo("UTC"), 2026, 6, 14, 2, 0)


@pytest.mark.parametrize("zone, spring, fall", [
    (BERLIN, (2026, 3, 29), (2026, 10, 25)),
    (NEW_YORK, (2026, 3, 8), (2026, 11, 1)),
])
def test_recurrence_across_daylight_saving_changes(zone, spring, fall):
    window = Window(1, schedule="30 2 * * *", tz=zone.key, duration=3600.0)
    # Spring forward: 02:30 does not exist that night; cron runs it at 03:00 (Debian cron).
    start, end = window.current_or_next(at(zone, *spring, 0, 0))
    assert datetime.fromtimestamp(start, zone).hour == 3
    assert end - start == 3600
    # Fall back: 02:30 happens twice; the window starts once, at the first one.
    first, _ = window.current_or_next(at(zone, *fall, 0, 0))
    assert datetime.fromtimestamp(first, zone).strftime("%H:%M") == "02:30"
    following, _ = window.current_or_next(first + 3600)
    assert following - first > 23 * 3600  # the next day, not an hour later
    # The window still lasts its duration in real time across the change.
    assert window.active(first + 3599) and not window.active(first + 3600)


def test_recurring_window_in_local_time_keeps_local_hour_over_the_year():
    window = Window(1, schedule="0 2 * * sun", tz="Europe/Berlin", duration=7200.0)
    winter, _ = window.current_or_next(at(BERLIN, 2026, 1, 1))
    summer, _ = window.current_or_next(at(BERLIN, 2026, 7, 1))
    assert datetime.fromtimestamp(winter, BERLIN).hour == 2
    assert datetime.fromtimestamp(summer, BERLIN).hour == 2


@pytest.mark.parametrize("window, target, covered", [
    (Window(1, server_id=1), (1, "web1", 5, "app"), True),
    (Window(1, server_id=1), (1, "web1", None, None), True),
    (Window(1, server_id=1), (2, "web2", 6, "app"), False),
    (Window(1, server_id=1, services=("app",)), (1, "web1", 5, "app"), True),
    (Window(1, server_id=1, services=("app",)), (1, "web1", 6, "db"), False),
    (Window(1, server_id=1, services=("app",)), (1, "web1", None, None), False),
    (Window(1, server_id=1, service_id=5), (1, "web1", 5, "app"), True),
    (Window(1, server_id=1, service_id=5), (1, "web1", 6, "db"), False),
    (Window(1, servers=("web*",)), (3, "web9", 1, "x"), True),
    (Window(1, servers=("web*",)), (3, "db1", 1, "x"), False),
    (Window(1, servers=("db*",), services=("backup", "disk*")), (3, "db1", 1, "disk /"), True),
    (Window(1, servers=("db*",), services=("backup", "disk*")), (3, "db1", 1, "app"), False),
    (Window(1), (3, "any", None, None), True),
])
def test_scope(window, target, covered):
    assert window.covers(*target) is covered


def test_index_checks_only_the_windows_that_apply():
    now = 1000.0
    windows = [Window(i, start=0.0, end=2000.0, server_id=i) for i in range(1, 1001)]
    windows.append(Window(5000, start=0.0, end=500.0, server_id=7))  # over
    windows.append(Window(6000, start=0.0, end=2000.0, servers=("db*",)))
    index = WindowIndex(windows, now)
    assert len(index.by_server[7]) == 1 and len(index.globs) == 1
    assert index.covering(7, "web7", 1, "app").id == 7
    assert index.covering(2000, "db3", 1, "app").id == 6000
    assert index.covering(2000, "web3", 1, "app") is None


# -- The catch-up rule ----------------------------------------------------------------------

def catch_up(held, **services):
    return decide_catch_up([HeldAlert(i, s) for i, s in held],
                           {int(k[1:]): v for k, v in services.items()})


def test_problem_before_the_window_still_there_is_not_sent_again():
    # FAIL told before the window; a WARN->FAIL flap inside ends where the channels left it.
    d = catch_up([(10, 1), (11, 1)], s1=ServiceNow("FAIL", False, told="FAIL"))
    assert d.notify == [] and d.supersede == [10, 11]


def test_problem_inside_the_window_is_sent_once_at_its_end():
    d = catch_up([(10, 1), (11, 1)], s1=ServiceNow("FAIL", False, told=None))
    assert d.notify == [11] and d.supersede == [10]


def test_problem_before_changed_inside_is_sent():
    d = catch_up([(10, 1)], s1=ServiceNow("WARN", False, told="FAIL"))
    assert d.notify == [10]


def test_recovery_inside_after_a_problem_told_before():
    d = catch_up([(10, 1)], s1=ServiceNow("OK", False, told="FAIL"))
    assert d.notify == [10]


def test_problem_and_recovery_both_inside_send_nothing():
    d = catch_up([(10, 1), (11, 1)], s1=ServiceNow("OK", False, told=None))
    assert d.notify == [] and d.supersede == [10, 11]


def test_flapping_in_and_out():
    # OK before; FAIL, OK, FAIL, OK inside: nothing. FAIL, OK, FAIL: the last FAIL, once.
    d = catch_up([(1, 1), (2, 1), (3, 1), (4, 1)], s1=ServiceNow("OK", False))
    assert d.notify == []
    d = catch_up([(1, 1), (2, 1), (3, 1)], s1=ServiceNow("FAIL", False))
    assert d.notify == [3] and d.supersede == [1, 2]


def test_stale_in_the_window_is_sent_unless_channels_were_told_offline():
    assert catch_up([(5, 1)], s1=ServiceNow("OK", True)).notify == [5]
    assert catch_up([(5, 1)], s1=ServiceNow("OK", True, told=told_status("offline", "OK",
                                                                            "FAIL"))).notify == []


def test_acknowledged_problems_and_api_alerts_are_not_sent_late():
    d = catch_up([(5, 1), (6, None)], s1=ServiceNow("FAIL", False, acked=True))
    assert d.notify == [] and d.supersede == [5, 6]


def test_several_services_decided_apart():
    d = catch_up([(1, 1), (2, 2), (3, 3)], s1=ServiceNow("FAIL", False),
                 s2=ServiceNow("OK", False, told="WARN"), s3=ServiceNow("OK", False))
    assert d.notify == [1, 2] and d.supersede == [3]


# -- Validation ---------------------------------------------------------------------------

@pytest.mark.parametrize("body, field", [
    ({}, "duration"),
    ({"duration": -5}, "duration"),
    ({"duration": "soon"}, "duration"),
    ({"duration": 400 * 86400}, "duration"),
    ({"duration": 60, "start": "now"}, "start"),
    ({"duration": 60, "services": "app"}, "services"),
    ({"duration": 60, "services": [""]}, "services"),
    ({"duration": 60, "reason": 5}, "reason"),
    ({"end": 1}, "end"),
    ({"duration": 60, "color": "red"}, "color"),
])
def test_push_maintenance_errors_name_the_field(body, field):
    with pytest.raises(ValidationError) as caught:
        parse_push_maintenance({"server": {}, **body}, 1000.0)
    assert caught.value.field == field


def test_push_maintenance_accepts_durations_and_ends():
    request = parse_push_maintenance({"duration": "30m", "reason": "deploy 4.2",
                                      "services": ["app"]}, 1000.0)
    assert (request.start, request.until, request.services) == (1000.0, 2800.0, ("app",))
    assert parse_push_maintenance({"end": True}, 1000.0).end


@pytest.mark.parametrize("body, field", [
    ({"schedule": "bad cron", "duration": 60}, "schedule"),
    ({"schedule": "0 2 * * *", "tz": "Mars/Base", "duration": 60}, "tz"),
    ({"schedule": "0 2 * * *"}, "duration"),
    ({"end": 500}, "end"),
    ({"service_id": 3}, "server_id"),
    ({"server_id": "x", "duration": 5}, "server_id"),
    ({"start": 1000.0 + 400 * 86400, "duration": 5}, "start"),
    ({"duration": float("nan")}, "duration"),
    ({"services": ["x"] * 101, "duration": 5}, "services"),
])
def test_window_errors_name_the_field(body, field):
    with pytest.raises(ValidationError) as caught:
        parse_window(body, 1000.0, source="api")
    assert caught.value.field == field


def test_window_requests():
    one_off = parse_window({"server_id": "3", "duration": 600, "reason": "x"}, 1000.0,
                           source="ui", created_by="alice")
    assert (one_off.start, one_off.end, one_off.server_id, one_off.created_by) == (
        1000.0, 1600.0, 3, "alice")
    recurring = parse_window({"servers": "db*, web1", "schedule": "0 2 * * sun",
                              "tz": "Europe/Berlin", "duration": "2h"}, 1000.0, source="api")
    assert recurring.servers == ("db*", "web1") and recurring.duration == 7200.0


# -- [maintenance:<name>] config sections ---------------------------------------------------

def test_config_windows_load():
    from overc.config import load_config

    config = load_config("[maintenance:backups]\nservers = db*, backup1\nservices = backup\n"
                         "schedule = 0 2 * * sun\ntz = Europe/Berlin\nduration = 2h\n"
                         "reason = weekly backups\n", source="s.ini", environ={})
    (window,) = config.maintenance
    assert (window.name, window.servers, window.services, window.schedule, window.tz,
            window.duration, window.reason) == ("backups", ("db*", "backup1"), ("backup",),
                                                "0 2 * * sun", "Europe/Berlin", 7200.0,
                                                "weekly backups")


@pytest.mark.parametrize("body, key, message", [
    ("schedule = 0 2 * * *\nduration = 1h\ncolor = red\n", "color", "unknown key"),
    ("duration = 1h\n", "schedule", "schedule is required"),
    ("schedule = 0 2 * * *\n", "duration", "duration is required"),
    ("schedule = 0 25 * * *\nduration = 1h\n", "schedule", "is not a cron schedule"),
    ("schedule = 0 2 * * *\ntz = Mars/Base\nduration = 1h\n", "tz", "is not a time zone"),
    ("schedule = 0 2 * * *\nduration = soon\n", "duration", "is not a duration"),
])
def test_config_window_errors_name_file_section_and_key(body, key, message):
    from overc.config import ConfigError, load_config

    with pytest.raises(ConfigError) as caught:
        load_config("[maintenance:nightly]\n" + body, source="/etc/overc.ini", environ={})
    assert str(caught.value).startswith(f"/etc/overc.ini [maintenance:nightly] {key}: ")
    assert message in str(caught.value)
