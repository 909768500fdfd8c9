"""SPEC 10.5 pure rules with a clock: escalation decisions, the end of acknowledgements (sticky,
expiring), what a report does to an acknowledgement, and the `after` / `sticky` / `expires`
inputs. No reactor, no database."""
from __future__ import annotations

from pathlib import Path

import pytest
from twisted.internet.task import Clock

from overc.config import ConfigError, load_config
from overc.core.durations import Grace
from overc.core.escalation import (
    MAINTENANCE_RECHECK, NO_ACK, Ack, EscalationAction as E, ack_active, ack_after_report,
    decide_escalation, escalation_due,
)
from overc.core.routing import Route
from overc.core.snapshot import ServiceSnapshot, apply_report
from overc.notify.channel_config import parse_channel, parse_channels
from overc.web.numbers import BadRequest, flag

GRACE = Grace()


@pytest.mark.parametrize("state, stale, acked, maintenance, action", [
    ("FAIL", False, False, False, E.SEND),
    ("WARN", False, False, False, E.SEND),
    ("OK", True, False, False, E.SEND),  # stale is a problem whatever the last state
    ("OK", False, False, False, E.DROP),  # recovered before `after`: never told
    ("OK", False, True, True, E.DROP),
    ("FAIL", False, True, False, E.PARK),  # acknowledged: waits for the ack's end
    ("FAIL", False, True, True, E.PARK),
    ("FAIL", False, False, True, E.LATER),  # maintenance: escalations pause
])
def test_escalation_decisions(state, stale, acked, maintenance, action):
    clock = Clock()
    clock.advance(5000)
    decision = decide_escalation(clock.seconds(), state=state, stale=stale, acked=acked,
                                 in_maintenance=maintenance)
    assert decision.action == action
    expected = 5000 + MAINTENANCE_RECHECK if action == E.LATER else None
    assert decision.next_due == expected


def test_escalation_is_due_after_the_problem_became_hard():
    assert escalation_due(1000.0, 600.0) == 1600.0


def test_an_ack_with_an_expiry_holds_until_then_with_a_clock():
    clock = Clock()
    clock.advance(1000)
    assert ack_active(True, 1100.0, clock.seconds())
    assert ack_active(True, None, clock.seconds())
    assert not ack_active(False, None, clock.seconds())
    clock.advance(100)
    assert not ack_active(True, 1100.0, clock.seconds())  # expired at 1100 exactly


@pytest.mark.parametrize("ack, changed, hard, now, after", [
    (Ack(True), False, "WARN", 1000.0, Ack(True)),  # no change: it holds
    (Ack(True), True, "FAIL", 1000.0, NO_ACK),  # a plain ack ends at WARN -> FAIL
    (Ack(True, sticky=True), True, "FAIL", 1000.0, Ack(True, sticky=True)),  # sticky lasts
    (Ack(True, sticky=True), True, "UNK", 1000.0, Ack(True, sticky=True)),
    (Ack(True, sticky=True), True, "OK", 1000.0, NO_ACK),  # ...until OK
    (Ack(True, True, 2000.0), True, "FAIL", 1000.0, Ack(True, True, 2000.0)),
    (Ack(True, True, 2000.0), True, "FAIL", 2000.0, NO_ACK),  # expired: ends at a change
    # Expired, no change: left to the dispatcher, which ends it and resumes what it parked.
    (Ack(True, True, 2000.0), False, "FAIL", 2000.0, Ack(True, True, 2000.0)),
    (Ack(True, False, 2000.0), False, "FAIL", 1999.0, Ack(True, False, 2000.0)),
    (NO_ACK, True, "FAIL", 1000.0, NO_ACK),
])
def test_what_a_report_does_to_an_acknowledgement(ack, changed, hard, now, after):
    assert ack_after_report(ack, changed=changed, hard=hard, now=now) == after


def _acked(state: str, sticky: bool, expires: float | None = None) -> ServiceSnapshot:
    return ServiceSnapshot(state=state, period=60, last_time=1000.0, acked=True,
                           ack_sticky=sticky, ack_expires=expires)


def test_sticky_ack_holds_warn_to_fail_and_ends_at_ok():
    out = apply_report(_acked("WARN", True), "FAIL", "x", 60, 1060.0, GRACE, arrival=1060.0)
    (alert,) = out.alerts
    assert (alert.severity, alert.held) == ("FAIL", "acknowledged")
    assert (out.service.acked, out.service.ack_sticky) == (True, True)
    ok = apply_report(out.service, "OK", "x", 60, 1120.0, GRACE, arrival=1120.0)
    (recovery,) = ok.alerts
    assert (recovery.severity, recovery.held) == ("OK", None)
    assert (ok.service.acked, ok.service.ack_sticky, ok.service.ack_expires) == (
        False, False, None)


def test_plain_ack_ends_at_the_change_and_the_alert_is_notified():
    out = apply_report(_acked("WARN", False), "FAIL", "x", 60, 1060.0, GRACE, arrival=1060.0)
    assert [a.held for a in out.alerts] == [None]
    assert not out.service.acked


def test_an_expired_sticky_ack_no_longer_holds():
    out = apply_report(_acked("WARN", True, 1050.0), "FAIL", "x", 60, 1060.0, GRACE,
                       arrival=1060.0)
    assert [a.held for a in out.alerts] == [None]
    assert (out.service.acked, out.service.ack_expires) == (False, None)
    same = apply_report(_acked("WARN", False, 1100.0), "WARN", "x", 60, 1060.0, GRACE,
                        arrival=1060.0)
    assert (same.alerts, same.service.acked, same.service.ack_expires) == ((), True, 1100.0)


def test_flapping_is_the_reason_before_a_sticky_ack():
    before = ServiceSnapshot(state="WARN", period=60, last_time=1000.0, acked=True,
                             ack_sticky=True, flapping=True, flap_bits=(1 << 20) - 1)
    out = apply_report(before, "FAIL", "x", 60, 1060.0, GRACE, arrival=1060.0)
    assert [a.held for a in out.alerts if a.kind == "state"] == ["flapping"]


def test_channel_after_is_parsed_into_its_route(tmp_path: Path):
    spec = parse_channel("pager", {"url": "https://pager.example.com/x", "after": "10m",
                                   "repeat": "1h"}, source="s.ini", base_dir=tmp_path)
    assert spec.route == Route("pager", "WARN", (), (), 3600.0, 600.0)
    at_once = parse_channel("chat", {"url": "https://chat.example.com/x"}, source="s.ini",
                            base_dir=tmp_path)
    assert at_once.route.after is None
    assert parse_channel("c", {"url": "https://c.example.com/", "after": "0"},
                         source="s.ini", base_dir=tmp_path).after is None


@pytest.mark.parametrize("value, fragment", [
    ("soon", "is not a duration"), ("-5m", "is not a duration"), ("0.5", "at least 1 s"),
])
def test_bad_after_names_file_section_and_key(tmp_path: Path, value, fragment):
    config = load_config(f"[alert:pager]\nurl = https://p.example.com/\nafter = {value}\n",
                         source="/etc/overc/server.ini", base_dir=tmp_path)
    with pytest.raises(ConfigError) as caught:
        parse_channels(config)
    assert (caught.value.section, caught.value.key) == ("alert:pager", "after")
    assert fragment in caught.value.message
    assert str(caught.value).startswith("/etc/overc/server.ini [alert:pager]")


@pytest.mark.parametrize("value, expected", [
    (None, False), (True, True), (False, False), ("on", True), ("1", True), ("true", True),
    ("", False), ("0", False), ("off", False), ("No", False),
])
def test_sticky_flag_values(value, expected):
    assert flag(value, "sticky") is expected


@pytest.mark.parametrize("value", ["maybe", 1, 0, [], {}, 2.5])
def test_sticky_flag_refuses_what_is_not_yes_or_no(value):
    with pytest.raises(BadRequest) as caught:
        flag(value, "sticky")
    assert caught.value.field == "sticky"
