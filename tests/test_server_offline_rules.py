"""SPEC 10.3 pure rules, table-driven: server deadlines, the verdict on an overdue service,
messages, the fresh window after a gap, and routing of the server's own alerts."""
from __future__ import annotations

import pytest

from overc.core.alerts import SERVER_OFFLINE, SERVER_ONLINE, Alert, channel_event
from overc.core.durations import Grace
from overc.core.routing import Route, route_alert
from overc.core.server_offline import (
    Verdict, allowance, fresh_server_deadline, offline_message, online_message,
    server_deadline, service_verdict, shortest_period,
)


@pytest.mark.parametrize("period, grace, expected", [
    (60, Grace(), 66.0),  # 10 %
    (5, Grace(), 6.0),  # at least 1 s of grace
    (60, Grace(seconds=5), 65.0),
    (60, Grace(seconds=0), 61.0),
])
def test_allowance_is_the_shortest_period_plus_the_config_grace_on_it(period, grace, expected):
    assert allowance(period, grace) == expected
    assert server_deadline(1000.0, period, grace) == 1000.0 + expected


def test_a_server_without_a_period_has_no_deadline():
    assert server_deadline(1000.0, None, Grace()) is None


@pytest.mark.parametrize("live, known, expected", [
    ([60.0, 10.0, 300.0], 5.0, 10.0),  # the live services decide, not the stored value
    ([None, 120.0], 10.0, 120.0),
    ([], 10.0, 10.0),  # none live (all stale): the stored one
    ([None], None, None),
])
def test_shortest_period_counts_live_services_only(live, known, expected):
    assert shortest_period(live, known) == expected


@pytest.mark.parametrize("period, expected", [
    (30, 1500.0 + 65 + 3),  # at least the agents' return window (60 s backoff + 5 s)
    (300, 1500.0 + 300 + 30),
])
def test_after_a_gap_a_server_gets_the_services_fresh_window(period, expected):
    assert fresh_server_deadline(1500.0, period, Grace()) == expected


def test_messages():
    assert offline_message(1075.4, 1000.0, 12) == "No contact for 75 s; 12 services affected"
    assert offline_message(1075.0, 1000.0, 1) == "No contact for 75 s; 1 service affected"
    assert online_message(1312.0, 1000.0) == "Back after 312 s without contact"
    assert online_message(1312.0, None) == "Back in contact"


NOW = 1100.0


@pytest.mark.parametrize("case, server, service, expected", [
    ("its server is offline: held",
     dict(server_offline=True, server_deadline=None, server_last_seen=1000.0),
     dict(service_due=1090.0), Verdict.HELD),
    ("its server pushed after it was due: a hung plugin, notified alone",
     dict(server_offline=False, server_deadline=1160.0, server_last_seen=1095.0),
     dict(service_due=1090.0), Verdict.NOTIFY),
    ("its server silent since it was due: waits for the server's deadline",
     dict(server_offline=False, server_deadline=1130.0, server_last_seen=1080.0),
     dict(service_due=1090.0, service_deadline=1096.0, max_wait=66.0), Verdict.WAIT),
    ("the wait is bounded by the service's own period + grace",
     dict(server_offline=False, server_deadline=1200.0, server_last_seen=1080.0),
     dict(service_due=1090.0, service_deadline=1096.0, max_wait=66.0), Verdict.NOTIFY),
    ("a scheduled service never waits",
     dict(server_offline=False, server_deadline=1130.0, server_last_seen=1080.0),
     dict(service_due=1090.0, service_deadline=1096.0, max_wait=0.0), Verdict.NOTIFY),
    ("a server without deadline (only pings so far): as before",
     dict(server_offline=False, server_deadline=None, server_last_seen=1080.0),
     dict(service_due=1090.0), Verdict.NOTIFY),
])
def test_verdict_on_an_overdue_service(case, server, service, expected):
    assert service_verdict(now=NOW, **server, **service) is expected, case


def alert(kind, severity, service=None):
    return Alert(1, 1, "db1", None, service, NOW, kind, severity, "m")


def test_server_alerts_ignore_service_filters_and_the_recovery_follows_the_problem():
    routes = (Route("mysql-team", "WARN", services=("mysql",)), Route("web", servers=("web*",)),
              Route("pager", "FAIL"))
    assert route_alert(routes, alert(SERVER_OFFLINE, "FAIL")) == ["mysql-team", "pager"]
    assert route_alert(routes, alert("api", "FAIL")) == ["pager"]  # no service: filtered
    assert route_alert(routes, alert(SERVER_ONLINE, "OK")) == []
    assert route_alert(routes, alert(SERVER_ONLINE, "OK"), {"pager"}) == ["pager"]
    assert channel_event(SERVER_OFFLINE, "FAIL") == ("server", "offline")
    assert channel_event(SERVER_ONLINE, "OK") == ("server", "online")
