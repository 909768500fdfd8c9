"""overcli parsing, exit codes and payloads, with StubTreq against a Klein fake of the push API."""
import io

import pytest
from treq.testing import StubTreq
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from agent_fakes import FakePush
from overc.agent import cli
from overc.agent.client import Endpoint, OvercClient, Refused, Unreachable, classify, parse_server_id, parse_server_url, UsageError


class Result:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err


def overcli(argv, push=None, env=None, http=None, clock=None, prefix=None):
    push = push or FakePush()
    http = http or StubTreq(push.resource(prefix))
    out, err = io.StringIO(), io.StringIO()
    d = Deferred.fromCoroutine(cli.run(clock or Clock(), argv, http=http, env=env or {}, out=out, err=err))
    assert d.called, "the command did not finish"
    box = []
    d.addBoth(box.append)
    return Result(box[0], out.getvalue(), err.getvalue())


URL = ["-s", "http://overc.test/", "-i", "web1:s3cret"]


def test_ping_prints_pong():
    push = FakePush()
    r = overcli(URL + ["ping"], push)
    assert (r.code, r.out, r.err) == (0, "pong\n", "")
    assert push.calls == [("ping", {"server": {"name": "web1", "key": "s3cret"}})]


def test_environment_gives_defaults():
    push = FakePush()
    r = overcli(["ping"], push, env={"OVERC_SERVER": "http://overc.test/", "OVERC_SERVER_ID": "envhost:k"})
    assert r.code == 0
    assert push.calls[0][1]["server"] == {"name": "envhost", "key": "k"}


def test_command_line_beats_environment():
    push = FakePush()
    overcli(URL + ["ping"], push, env={"OVERC_SERVER": "http://elsewhere.test/", "OVERC_SERVER_ID": "envhost:k"})
    assert push.calls[0][1]["server"]["name"] == "web1"


def test_service_status_payload():
    push = FakePush()
    r = overcli(URL + ["service-status", "60", "app", "WARN", "slow | t=3s"], push)
    assert r.code == 0, r.err
    assert push.calls == [
        ("status", {"server": {"name": "web1", "key": "s3cret"}, "period": 60,
                    "services": [{"name": "app", "state": "WARN", "info": "slow | t=3s", "period": 60}]})
    ]


def test_service_status_info_is_optional():
    push = FakePush()
    assert overcli(URL + ["service-status", "30", "app", "OK"], push).code == 0
    assert push.reports[0]["info"] == ""


def test_alert_with_and_without_service():
    push = FakePush()
    assert overcli(URL + ["alert", "System down"], push).code == 0
    assert overcli(URL + ["alert", "--service", "queue", "Cannot check"], push).code == 0
    assert [b["alerts"] for p, b in push.calls] == [[{"message": "System down"}], [{"message": "Cannot check", "service": "queue"}]]


def test_refused_is_exit_1_with_the_server_error():
    push = FakePush()
    push.keys["web1"] = "other"
    r = overcli(URL + ["ping"], push)
    assert r.code == 1
    assert r.err == "overcli: server refused (403): Invalid server key\n"


def test_5xx_is_exit_3():
    push = FakePush()
    push.script = [(503, {"error": "database unavailable"}, {"Retry-After": "5"})]
    r = overcli(URL + ["ping"], push)
    assert r.code == 3
    assert r.err == "overcli: server answered 503: database unavailable\n"


def test_connection_refused_is_exit_3_one_line():
    from twisted.internet.error import ConnectionRefusedError

    class Down:
        def post(self, *a, **kw):
            raise ConnectionRefusedError("Connection refused")

    r = overcli(URL + ["ping"], http=Down())
    assert r.code == 3
    assert r.err.count("\n") == 1 and "Traceback" not in r.err
    assert "cannot reach http://overc.test/api/ping" in r.err


def test_timeout_is_exit_3():
    class Hangs:
        def post(self, *a, **kw):
            return Deferred()

    clock = Clock()
    out, err = io.StringIO(), io.StringIO()
    d = Deferred.fromCoroutine(cli.run(clock, URL + ["ping"], http=Hangs(), env={}, out=out, err=err))
    assert not d.called
    clock.advance(30)
    assert d.result == 3
    assert err.getvalue() == "overcli: no answer from http://overc.test/api/ping within 30 s\n"


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["ping"], "no server URL"),
        (["-s", "http://x/", "ping"], "no server identity"),
        (["-s", "ftp://x/", "-i", "a:b", "ping"], "must be http"),
        (["-s", "http://x/", "-i", "nokey", "ping"], "NAME:KEY"),
        (URL + ["service-status", "abc", "app", "OK"], "period must be a number"),
        (URL + ["service-status", "0", "app", "OK"], "from 1 to"),
        (URL + ["service-status", "60"], "required"),
        (URL + ["bogus"], "invalid choice"),
        ([], "required"),
        (URL + ["run", "name"], "needs a command"),
        (URL + ["monitor", "/nonexistent/monitor.ini"], "cannot read"),
    ],
)
def test_usage_errors_are_exit_2_one_line(argv, needle):
    r = overcli(argv)
    assert r.code == 2, r.err
    assert needle in r.err
    assert r.err.count("\n") == 1 and r.err.startswith("overcli: ")


def test_help_exits_0(capsys):
    r = overcli(["--help"])
    assert r.code == 0
    assert "service-status" in capsys.readouterr().out


def test_path_prefix_and_basic_auth_are_honoured():
    push = FakePush(basic_auth=("ops", "p@ss"))
    r = overcli(["-s", "http://ops:p%40ss@overc.test/monitoring", "-i", "web1:k", "ping"], push, prefix=b"monitoring")
    assert (r.code, r.err) == (0, "")
    wrong = overcli(["-s", "http://ops:nope@overc.test/monitoring", "-i", "web1:k", "ping"], FakePush(basic_auth=("ops", "p@ss")), prefix=b"monitoring")
    assert wrong.code == 1 and "401" in wrong.err


def test_parse_server_url():
    assert parse_server_url("http://u:p@h:5000/pre") == ("http://h:5000/pre/", ("u", "p"))
    assert parse_server_url("https://h/") == ("https://h/", None)
    with pytest.raises(UsageError):
        parse_server_url("h:5000")
    with pytest.raises(UsageError):
        parse_server_url("http://h:99999/")


def test_parse_server_id_key_may_contain_colons():
    assert parse_server_id("web1:a:b") == ("web1", "a:b")
    with pytest.raises(UsageError):
        parse_server_id(":k")


def test_classify():
    assert classify(200, b'{"ok": 1}') == {"ok": 1}
    with pytest.raises(Unreachable) as e:
        classify(429, b"", b"7")
    assert e.value.retry_after == 7.0
    with pytest.raises(Unreachable):
        classify(502, b"<html>bad gateway</html>")
    with pytest.raises(Unreachable):  # the server's request timeout: retry, never drop
        classify(408, b'{"error": "request timeout"}')
    with pytest.raises(Refused) as r:
        classify(400, b'{"error": "bad", "field": "services[2].state"}')
    assert (r.value.status, r.value.field) == (400, "services[2].state")
    with pytest.raises(Refused, match="wrong URL"):
        classify(404, b"<html>not found</html>")
    with pytest.raises(Refused, match="wrong URL"):
        classify(200, b"<html>welcome to nginx</html>")


def test_run_requires_double_dash_command():
    r = overcli(URL + ["run", "--period", "300", "name", "--"])
    assert r.code == 2 and "needs a command" in r.err


def test_client_sends_each_report_with_its_period():
    from overc.agent.results import Report

    push = FakePush()
    client = OvercClient(StubTreq(push.resource()), Clock(), Endpoint("http://overc.test/", "web1", "k"))
    d = Deferred.fromCoroutine(client.set_service_status([Report("a", "OK", "", 60, 1.0), Report("b", "OK", "", 300, 2.0)]))
    assert d.called
    body = push.status_posts()[0]
    assert body["period"] == 300
    assert [(s["period"], s["time"]) for s in body["services"]] == [(60, 1.0), (300, 2.0)]


def test_service_status_with_schedule_and_zone():
    push = FakePush()
    r = overcli(URL + ["service-status", "--schedule", "0 3 * * *", "--tz", "Europe/Berlin",
                       "86400", "backup", "OK", "done"], push)
    assert r.code == 0, r.err
    [report] = push.reports
    assert (report["schedule"], report["tz"], report["period"]) == ("0 3 * * *", "Europe/Berlin", 86400)


@pytest.mark.parametrize("options, needle", [
    (["--schedule", "0 3 * *"], "overcli: error: --schedule: '0 3 * *' is not a cron expression"),
    (["--schedule", "0 3 * * *", "--tz", "Mars/Base"], "overcli: error: --tz: 'Mars/Base' is not"),
    (["--tz", "Europe/Berlin"], "overcli: error: --tz needs --schedule"),
])
def test_bad_schedule_options_are_usage_errors(options, needle):
    push = FakePush()
    r = overcli(URL + ["service-status", *options, "60", "backup", "OK"], push)
    assert r.code == 2 and r.err.startswith(needle) and r.err.count("\n") == 1
    assert push.calls == []
