"""Pure notification rules: the 1.x text format byte for byte, routing, grouping, backoff,
repeats, silences, and channel config validation. No reactor, no database."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from overc.config import ConfigError, load_config
from overc.core.alerts import Alert, severity_rank
from overc.core.durations import Grace
from overc.core.notification_text import command_environment, notification_json, notification_text
from overc.core.repeats import decide_repeat
from overc.core.routing import Route, backoff_delay, group_by_server, next_attempt, route_alert
from overc.core.watchdog_rules import fresh_deadline, heartbeat_due, offline_message, was_away
from overc.notify.channel_config import parse_channel, parse_channels


def alert(id=1, kind="state", severity="WARN", server="web1", service="disk",
          message='State changed: "OK" -> "WARN"', state="WARN",
          info="DISK WARNING - /var 91%", server_id=1, service_id=10, skip=None):
    return Alert(id=id, time=1000.0, kind=kind, severity=severity, server_id=server_id,
                 server_name=server, service_id=service_id if service else None,
                 service_name=service, message=message, state=state, info=info,
                 skip_channel=skip)


def test_single_alert_is_exactly_its_1x_block():
    assert notification_text([alert()]) == (
        'web1 disk: [service:state/WARN] State changed: "OK" -> "WARN"\n'
        "Current: WARN: DISK WARNING - /var 91%\n"
    )


def test_other_kinds_use_the_1x_channel_event_pairs():
    assert notification_text([alert(kind="offline", severity="FAIL", message="m")]).startswith(
        "web1 disk: [plugin/offline] m\n")
    assert notification_text([alert(kind="online", severity="OK", message="m")]).startswith(
        "web1 disk: [plugin/online] m\n")
    # a server-level api alert: no service, no Current line
    assert notification_text([alert(kind="api", severity="FAIL", service=None, state=None,
                                    message="System down")]) == "web1: [api/alert] System down\n"
    assert "[overc/internal]" in notification_text(
        [alert(kind="internal", severity="FAIL", service=None, state=None)])


def test_offline_says_what_is_known_not_a_stale_state():
    gone = alert(kind="offline", severity="FAIL", message="No report for 75 s (period 60 s)",
                 state="OK", info="app back")
    assert notification_text([gone]) == (
        "web1 disk: [plugin/offline] No report for 75 s (period 60 s)\n"
        "Current: no report for 75 s; last: OK: app back\n")
    never = alert(kind="offline", severity="FAIL", message="No report yet", state=None)
    assert notification_text([never]).splitlines()[1] == "Current: no report yet"


def test_group_starts_with_summary_line_then_blocks():
    alerts = [alert(id=i, kind="offline", severity="FAIL", service=f"s{i}", message="gone",
                    state="OK", info="fine") for i in range(1, 11)]
    alerts += [alert(id=11), alert(id=12, service="cpu")]
    text = notification_text(alerts)
    lines = text.splitlines()
    assert lines[0] == "web1: 12 alerts (10 offline, 2 state)"
    assert lines[1:3] == ["web1 s1: [plugin/offline] gone", "Current: no report; last: OK: fine"]
    assert len(lines) == 1 + 12 * 2
    assert text.endswith("Current: WARN: DISK WARNING - /var 91%\n")


def test_json_and_environment_name_the_first_alert_and_the_count():
    alerts = [alert(id=1), alert(id=2, service="cpu", service_id=11)]
    env = command_environment(alerts, "https://mon.example.com")
    assert env == {
        "OVERC_SERVER": "web1", "OVERC_SERVICE": "disk", "OVERC_KIND": "state",
        "OVERC_SEVERITY": "WARN", "OVERC_STATE": "WARN",
        "OVERC_MESSAGE": 'State changed: "OK" -> "WARN"',
        "OVERC_URL": "https://mon.example.com/ui/service/10", "OVERC_ALERT_COUNT": "2",
    }
    doc = notification_json(alerts, channel="hook", kind="alert", public_url="")
    assert doc["count"] == 2 and doc["summary"] == "web1: 2 alerts (2 state)"
    assert [a["service"] for a in doc["alerts"]] == ["disk", "cpu"]
    assert doc["alerts"][0]["channel"] == "service:state" and doc["alerts"][0]["event"] == "WARN"


def test_severity_order_is_the_1x_one_and_unknown_is_serious():
    assert [severity_rank(s) for s in ("OK", "WARN", "FAIL", "UNK")] == [0, 1, 2, 3]
    assert severity_rank("bogus") == severity_rank("FAIL")


def test_routing_by_min_severity_and_globs():
    routes = [Route("all", "OK"), Route("warn"), Route("fail", "FAIL"),
              Route("db", "WARN", servers=("db*",)), Route("disk", "WARN", services=("di?k",))]
    assert route_alert(routes, alert(severity="WARN")) == ["all", "warn", "disk"]
    assert route_alert(routes, alert(severity="UNK", server="db1")) == ["all", "warn", "fail",
                                                                         "db", "disk"]
    # a recovery reaches the channels that were told of the problem, and the OK-level ones
    ok = alert(severity="OK", state="OK")
    assert route_alert(routes, ok) == ["all"]
    assert route_alert(routes, ok, {"warn", "fail"}) == ["all", "warn", "fail"]
    # internal alerts ignore name filters but skip the channel that failed
    internal = alert(kind="internal", severity="FAIL", server="x", service=None, skip="warn")
    assert route_alert(routes, internal) == ["all", "fail", "db", "disk"]


def test_grouping_is_per_server_and_channel_keeping_order():
    a1, a2 = alert(id=1), alert(id=2, service="cpu")
    b1 = alert(id=3, server="web2", server_id=2)
    groups = group_by_server([a1, b1, a2], {1: ["x", "y"], 2: ["x"], 3: ["x"]})
    assert groups == {(1, "x"): [a1, a2], (1, "y"): [a1], (2, "x"): [b1]}


def test_backoff_schedule_and_retries():
    assert [backoff_delay(n) for n in range(1, 8)] == [10, 30, 120, 600, 1800, 1800, 1800]
    assert next_attempt(100.0, 1, retries=5) == 110.0
    assert next_attempt(100.0, 5, retries=5) == 1900.0
    assert next_attempt(100.0, 6, retries=5) is None  # 1 + 5 attempts, then failed for good
    assert next_attempt(100.0, 1, retries=0) is None


@given(st.integers(min_value=1, max_value=50), st.integers(min_value=0, max_value=50))
def test_attempts_never_exceed_one_plus_retries(failed, retries):
    assert (next_attempt(0.0, failed, retries) is None) == (failed > retries)


def test_repeat_decisions():
    kw = dict(repeat=600.0, state="FAIL", stale=False, acked=False, silenced=False)
    assert decide_repeat(1000.0, **kw).action == "send"
    assert decide_repeat(1000.0, **kw).next_due == 1600.0
    assert decide_repeat(1000.0, **{**kw, "acked": True}).action == "stop"
    assert decide_repeat(1000.0, **{**kw, "state": "OK"}).action == "drop"
    assert decide_repeat(1000.0, **{**kw, "state": "OK", "stale": True}).action == "send"
    assert decide_repeat(1000.0, **{**kw, "silenced": True}).action == "later"
    assert decide_repeat(1000.0, **{**kw, "repeat": None}).action == "stop"


def test_offline_message_and_away_rules():
    assert offline_message(1075.0, 1000.0, 60) == "No report for 75 s (period 60 s)"
    assert not was_away(100.0, 99.0, 1.0)
    assert was_away(100.0, 94.0, 1.0)
    # idle ticks write the heartbeat often enough that a running OverC never looks away
    assert not heartbeat_due(102.4, 100.0, 1.0) and heartbeat_due(102.5, 100.0, 1.0)
    # after a gap: at least 60 s (agent backoff) + 5 s (Retry-After), or the period, + grace
    assert fresh_deadline(100.0, 60, Grace()) == 171.0
    assert fresh_deadline(100.0, 5, Grace()) == 166.0  # grace at least 1 s
    assert fresh_deadline(100.0, 600, Grace()) == 760.0  # a long period is its own window
    # a nightly job: 65 s to be back, not a day; the report's own grace replaces the config's
    assert fresh_deadline(100.0, 86400, Grace(), scheduled=True, own_grace=600.0) == 765.0


def cfg(text: str) -> str:
    return "[overc]\n" + text


@pytest.mark.parametrize("section, key, fragment", [
    ("[alert:x]\nmin-severity = bad\ncommand = true\n", "min-severity", "not one of"),
    ("[alert:x]\ncommand = true\nurl = http://a/\n", "url", "not command and url"),
    ("[alert:x]\nformat = json\n", None, "needs one of"),
    ("[alert:x]\nurl = ftp://a/\n", "url", "http"),
    ("[alert:x]\ncommand = true\nbogus = 1\n", "bogus", "unknown key"),
    ("[alert:x]\ncomand = true\n", "comand", "unknown key"),  # a typo is named
    ("[alert:x]\nurl = http://a/\nto = a@b\n", "to", "unknown key for a url channel"),
    ("[alert:x]\ncommand = no-such-program-overc\n", "command", "not found on PATH"),
    ("[alert:x]\ncommand = ./nope.sh\n", "command", "command not found: ./nope.sh"),
    ("[alert:x]\nsmtp = smtp://h:25\nfrom = a@b\n", "to", "e-mail"),
    ("[alert:x]\ncommand = true\nretries = many\n", "retries", "whole number"),
    ("[alert:x]\ncommand = 'unclosed\n", "command", "split"),
    ("[alert:x]\nurl = http://a/\ntemplate = nope.j2\n", "template", "no such file"),
    ("[alert:x]\nurl = http://a/\nheaders = broken\n", "headers", "Name: value"),
])
def test_channel_config_errors_name_file_section_and_key(tmp_path, section, key, fragment):
    config = load_config(section, source="/etc/overc/server.ini", base_dir=tmp_path)
    with pytest.raises(ConfigError) as caught:
        parse_channels(config)
    assert caught.value.section == "alert:x" and caught.value.key == key
    assert fragment in caught.value.message
    assert str(caught.value).startswith("/etc/overc/server.ini [alert:x]")


def test_channel_config_parses_every_option(tmp_path: Path):
    (tmp_path / "slack.j2").write_text("{{ text | tojson }}")
    spec = parse_channel("hook", {
        "url": "https://hooks.example.com/x", "template": "slack.j2",
        "headers": "\nAuthorization: Bearer abc\nX-Env: prod", "min-severity": "fail",
        "servers": "web*, db1", "services": "disk", "timeout": "5s", "retries": "2",
        "repeat": "1h",
    }, source="s.ini", base_dir=tmp_path)
    assert spec.kind == "url" and spec.template == tmp_path / "slack.j2"
    assert spec.headers == {"Authorization": "Bearer abc", "X-Env": "prod"}
    assert spec.route == Route("hook", "FAIL", ("web*", "db1"), ("disk",), 3600.0)
    assert (spec.timeout, spec.retries, spec.lease) == (5.0, 2, 15.0)
    (tmp_path / "alert.d").mkdir()
    (tmp_path / "alert.d" / "log.sh").write_text("#!/bin/sh\n")
    (tmp_path / "alert.d" / "log.sh").chmod(0o755)
    legacy = parse_channel("log", {"command": "./alert.d/log.sh '/var/log/o c.log'"},
                           source="s.ini", base_dir=tmp_path)
    assert legacy.command == ("./alert.d/log.sh", "/var/log/o c.log")
    assert (legacy.format, legacy.min_severity, legacy.retries, legacy.repeat) == (
        "text", "WARN", 5, None)
    mail = parse_channel("mail", {"smtp": "smtp://u:p%40ss@mx:2525", "from": "o@x",
                                  "to": "a@x, b@x"}, source="s.ini", base_dir=tmp_path)
    assert (mail.smtp_host, mail.smtp_port, mail.smtp_user, mail.smtp_password) == (
        "mx", 2525, "u", "p@ss")
    assert mail.recipients == ("a@x", "b@x")
