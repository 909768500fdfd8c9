"""Every validation rule of the push API bodies (SPEC 1), without a server."""
import json

import pytest

from overc.core.payload import (
    MAX_PERIOD,
    ValidationError,
    parse_alerts,
    parse_body,
    parse_period,
    parse_server,
    parse_status,
)

NOW = 1_800_000_000.0
SERVER = {"name": "web1", "key": "s3cret"}


def status(**changes):
    body = {"server": dict(SERVER), "period": 60,
            "services": [{"name": "app", "state": "OK", "info": "up"}]}
    body.update(changes)
    return body


def error_of(call, *args):
    with pytest.raises(ValidationError) as caught:
        call(*args)
    return caught.value.field, caught.value.message


@pytest.mark.parametrize("raw, message", [
    (b"", "The body is not valid JSON"),
    (b"{", "The body is not valid JSON"),
    (b"\xff\xfe", "The body is not valid JSON"),
    (b"[]", "The body must be a JSON object"),
    (b"42", "The body must be a JSON object"),
    (b'"x"', "The body must be a JSON object"),
    (b"null", "The body must be a JSON object"),
    (b"[" * 100000, "The body is not valid JSON"),
])
def test_body_must_be_a_json_object(raw, message):
    assert error_of(parse_body, raw) == (None, message)


def test_body_parses_whatever_the_content_type():
    assert parse_body(b'{"a": 1}') == {"a": 1}


@pytest.mark.parametrize("body, field, message", [
    ({}, "server", "server is required"),
    ({"server": None}, "server", "server is required"),
    ({"server": "web1"}, "server", "server must be an object with name and key"),
    ({"server": {"key": "k"}}, "server.name", "server.name is required"),
    ({"server": {"name": 1, "key": "k"}}, "server.name", "server.name must be a string"),
    ({"server": {"name": "", "key": "k"}}, "server.name", "server.name must not be empty"),
    ({"server": {"name": "x" * 65, "key": "k"}}, "server.name",
     "server.name must be at most 64 characters"),
    ({"server": {"name": "a"}}, "server.key", "server.key is required"),
    ({"server": {"name": "a", "key": ""}}, "server.key", "server.key must not be empty"),
    ({"server": {"name": "a", "key": "k" * 129}}, "server.key",
     "server.key must be at most 128 characters"),
    ({"server": {"name": "a\ud800", "key": "k"}}, "server.name",
     "server.name holds characters that are not valid Unicode"),
])
def test_server_identification(body, field, message):
    assert error_of(parse_server, body) == (field, message)


def test_server_limits_are_inclusive():
    assert parse_server({"server": {"name": "x" * 64, "key": "k" * 128}}).name == "x" * 64


@pytest.mark.parametrize("value, expected", [
    (60, 60), (60.9, 60), ("60", 60), (" 300 ", 300), ("7.5", 7), (1, 1), (MAX_PERIOD, MAX_PERIOD),
])
def test_period_forms(value, expected):
    assert parse_period(value, "period") == expected


@pytest.mark.parametrize("value, message", [
    (0, "period must be from 1 to 31536000 seconds"),
    (-5, "period must be from 1 to 31536000 seconds"),
    (MAX_PERIOD + 1, "period must be from 1 to 31536000 seconds"),
    (0.5, "period must be from 1 to 31536000 seconds"),
    ("abc", "period must be a number of seconds"),
    ("", "period must be a number of seconds"),
    (True, "period must be a number of seconds"),
    ([60], "period must be a number of seconds"),
    ({"s": 1}, "period must be a number of seconds"),
    (float("nan"), "period must be a finite number of seconds"),
    (float("inf"), "period must be a finite number of seconds"),
    ("inf", "period must be a finite number of seconds"),
])
def test_period_errors(value, message):
    assert error_of(parse_period, value, "period") == ("period", message)


@pytest.mark.parametrize("changes, field, message", [
    ({"period": None}, "period", "period is required"),
    ({"services": None}, "services", "services is required"),
    ({"services": {"name": "x"}}, "services", "services must be a list"),
    ({"services": [{"name": "a", "state": "OK"}] * 1001}, "services",
     "services may hold at most 1000 items"),
    ({"services": ["app"]}, "services[0]", "services[0] must be an object"),
    ({"services": [{"state": "OK"}]}, "services[0].name", "services[0].name is required"),
    ({"services": [{"name": "", "state": "OK"}]}, "services[0].name",
     "services[0].name must not be empty"),
    ({"services": [{"name": "n" * 65, "state": "OK"}]}, "services[0].name",
     "services[0].name must be at most 64 characters"),
    ({"services": [{"name": "a\x00b", "state": "OK"}]}, "services[0].name",
     "services[0].name must not hold control characters (NUL, CR, LF, tab...)"),
    ({"services": [{"name": "a\r\nb", "state": "OK"}]}, "services[0].name",
     "services[0].name must not hold control characters (NUL, CR, LF, tab...)"),
    ({"server": {"name": "web\n1", "key": "k"}}, "server.name",
     "server.name must not hold control characters (NUL, CR, LF, tab...)"),
    ({"services": [{"name": "a", "state": "OK"}, {"name": "b"}]}, "services[1].state",
     "services[1].state is required"),
    ({"services": [{"name": "a", "state": 0}]}, "services[0].state",
     "services[0].state must be a string"),
    ({"services": [{"name": "a", "state": "OK", "info": 5}]}, "services[0].info",
     "services[0].info must be a string"),
    ({"services": [{"name": "a", "state": "OK", "info": "i" * 65537}]}, "services[0].info",
     "services[0].info must be at most 65536 characters"),
    ({"services": [{"name": "a", "state": "OK", "period": 0}]}, "services[0].period",
     "services[0].period must be from 1 to 31536000 seconds"),
    ({"services": [{"name": "a", "state": "OK", "time": "yesterday"}]}, "services[0].time",
     "services[0].time must be a Unix time in seconds"),
    ({"services": [{"name": "a", "state": "OK", "time": -1}]}, "services[0].time",
     "services[0].time must be a Unix time in seconds"),
    ({"services": [{"name": "a", "state": "OK", "time": NOW + 61}]}, "services[0].time",
     "services[0].time is more than 60 s in the future"),
])
def test_status_errors(changes, field, message):
    assert error_of(parse_status, status(**changes), NOW) == (field, message)


def test_status_accepts_limits_and_ignores_unknown_keys():
    body = status(services=[
        {"name": "a", "state": "OK", "info": "i" * 65536, "extra": [1], "time": NOW + 60},
    ], future="ignored")
    _, reports = parse_status(body, NOW)
    assert reports[0].time == NOW + 60
    assert len(reports[0].info) == 65536


def test_empty_service_list_is_fine():
    identity, reports = parse_status(status(services=[]), NOW)
    assert identity.name == "web1" and reports == []


def test_per_service_period_wins_and_time_and_info_default():
    _, reports = parse_status(status(period="120", services=[
        {"name": "a", "state": "ok"},
        {"name": "b", "state": "WARNING", "period": 300, "info": None, "time": NOW - 5},
    ]), NOW)
    assert [(r.service, r.state, r.period, r.time, r.info) for r in reports] == [
        ("a", "OK", 120, None, ""),
        ("b", "WARN", 300, NOW - 5, ""),
    ]


def test_unsupported_state_becomes_unk_with_suffix():
    _, reports = parse_status(status(services=[{"name": "a", "state": "HEY", "info": "hi"}]), NOW)
    assert (reports[0].state, reports[0].info) == ("UNK", 'hi (sent unsupported state: "HEY")')


def test_same_service_twice_is_two_reports_in_order():
    _, reports = parse_status(status(services=[
        {"name": "a", "state": "OK"}, {"name": "a", "state": "FAIL"}]), NOW)
    assert [r.state for r in reports] == ["OK", "FAIL"]


def test_perfdata_is_parsed_out_of_info():
    _, reports = parse_status(status(services=[{
        "name": "disk", "state": "WARN",
        "info": "DISK WARNING - /var 91% | /var=91%;90;95;0;100"}]), NOW)
    assert reports[0].info == "DISK WARNING - /var 91%"
    assert reports[0].metrics[0].label == "/var"


@pytest.mark.parametrize("body, field, message", [
    ({"server": SERVER}, "alerts", "alerts is required"),
    ({"server": SERVER, "alerts": "down"}, "alerts", "alerts must be a list"),
    ({"server": SERVER, "alerts": [{}]}, "alerts[0].message", "alerts[0].message is required"),
    ({"server": SERVER, "alerts": [{"message": ""}]}, "alerts[0].message",
     "alerts[0].message must not be empty"),
    ({"server": SERVER, "alerts": [{"message": "m" * 65537}]}, "alerts[0].message",
     "alerts[0].message must be at most 65536 characters"),
    ({"server": SERVER, "alerts": [{"message": "x", "service": 3}]}, "alerts[0].service",
     "alerts[0].service must be a string"),
    ({"server": SERVER, "alerts": [{"message": "x", "service": ""}]}, "alerts[0].service",
     "alerts[0].service must not be empty"),
    ({"server": SERVER, "alerts": [None]}, "alerts[0]", "alerts[0] must be an object"),
])
def test_alert_errors(body, field, message):
    assert error_of(parse_alerts, body) == (field, message)


def test_alerts_title_is_ignored_and_service_optional():
    _, alerts = parse_alerts({"server": SERVER, "alerts": [
        {"message": "System down", "title": "t"}, {"message": "Cannot check", "service": "q"}]})
    assert [(a.message, a.service) for a in alerts] == [("System down", None),
                                                        ("Cannot check", "q")]


def test_error_json_shape():
    error = ValidationError("server is required", "server")
    assert json.loads(json.dumps(error.as_json())) == {"error": "server is required",
                                                       "field": "server"}
    assert ValidationError("The body must be a JSON object").as_json() == {
        "error": "The body must be a JSON object"}
