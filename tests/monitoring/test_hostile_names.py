"""Hostile names and messages through every real channel kind: always delivered, no line forged.

Names, messages and plugin output come from pushing hosts. Whatever they hold (NUL, CR/LF,
escape sequences, Unicode line separators), a command channel starts (a NUL in an environment
variable would stop it), a webhook gets the exact strings in its JSON, an e-mail is built and
sent, and the 1.x text has exactly the lines it should.
"""
from __future__ import annotations

import email
import email.policy
import json

import pytest
import pytest_twisted
from hypothesis import given, settings
from hypothesis import strategies as st

from overc.core.alerts import Alert
from overc.core.notification_text import multi_line, notification_text

from helpers import reactor
from test_channels_real import _Delivery, _SMTPFactory, Receiver, channel, outcome, script

NASTY = "\x00\r\n\t\x1b\x7f\x85\u2028\u2029:[]\"'$`\\ é"
hostile = st.text(st.sampled_from(NASTY) | st.characters(blacklist_categories=("Cs",)),
                  min_size=1, max_size=30)


def alerts_of(server, service, message, info):
    return [
        Alert(id=1, time=0.0, kind="api", severity="FAIL", server_id=1, server_name=server,
              service_id=10, service_name=service, message=message, state="FAIL", info=info),
        Alert(id=2, time=0.0, kind="offline", severity="FAIL", server_id=1, server_name=server,
              service_id=11, service_name=service + "2", message=message, state="OK",
              info=info),
    ]


def hostile_examples(count: int = 15) -> list[tuple[str, str, str, str]]:
    """Hypothesis-generated (server, service, message, info), always with the nastiest one.

    Generated up front by a plain ``@given`` (the deliveries then run on the reactor, which
    a hypothesis test body cannot wait on under pytest-twisted)."""
    found: list[tuple[str, str, str, str]] = [("\x00\r\n", "\n\x00", "\r\n\x00", "\x00\r")]

    @settings(max_examples=count, deadline=None, database=None)
    @given(hostile, hostile, hostile, hostile)
    def collect(server, service, message, info):
        found.append((server, service, message, info))

    collect()
    return found


def expected_lines(info: str) -> int:
    """Summary + per alert: its line and its Current line (plugin output keeps its lines)."""
    return 1 + 2 * (2 + multi_line(info).count("\n"))


@pytest_twisted.ensureDeferred
async def test_command_channel_always_delivers(tmp_path):
    script(tmp_path, "record.sh", 'cat > "$1.txt"\nenv | grep ^OVERC_ > "$1.env"\n')
    command = channel(tmp_path, "rec", command="./alert.d/record.sh out")
    for server, service, message, info in hostile_examples():
        alerts = alerts_of(server, service, message, info)
        assert await outcome(command.send(alerts, "alert", 7)) is None, alerts
        text = (tmp_path / "out.txt").read_bytes().decode()
        assert text == notification_text(alerts)
        assert text.count("\n") == expected_lines(info)
        env = (tmp_path / "out.env").read_text().splitlines()
        assert len(env) == 10  # every OVERC_ variable on its line: none forged, none lost


@pytest_twisted.ensureDeferred
async def test_webhook_always_delivers_the_exact_strings(tmp_path):
    from twisted.web import server as web_server

    web = Receiver()
    port = reactor().listenTCP(0, web_server.Site(web), interface="127.0.0.1")
    try:
        hook = channel(tmp_path, "hook", url=f"http://127.0.0.1:{port.getHost().port}/hook")
        for server, service, message, info in hostile_examples():
            alerts = alerts_of(server, service, message, info)
            web.requests.clear()
            assert await outcome(hook.send(alerts, "alert", 7)) is None, alerts
            doc = json.loads(web.requests[0][1])
            first = doc["alerts"][0]
            assert (first["server"], first["service"], first["message"], first["info"]) == (
                server, service, message, info)  # JSON keeps the exact string
            assert doc["text"] == notification_text(alerts)
            assert "\n" not in doc["summary"] and "\x00" not in doc["summary"]
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_smtp_always_delivers(tmp_path, fmt):
    box: list[bytes] = []
    port = reactor().listenTCP(0, _SMTPFactory(_Delivery(box)), interface="127.0.0.1")
    try:
        mail = channel(tmp_path, "mail", smtp=f"smtp://127.0.0.1:{port.getHost().port}",
                       format=fmt, **{"from": "overc@example.com", "to": "ops@example.com"})
        for server, service, message, info in hostile_examples():
            alerts = alerts_of(server, service, message, info)
            box.clear()
            assert await outcome(mail.send(alerts, "alert", 7)) is None, alerts
            [raw] = box
            received = email.message_from_bytes(raw, policy=email.policy.default)
            assert str(received["Subject"]).startswith("[OverC] ")
            body = received.get_content()
            if fmt == "json":
                assert json.loads(body)["alerts"][0]["server"] == server
            else:
                # (the test receiver joins the lines without the last line end)
                assert body.replace("\r\n", "\n").rstrip("\n") == \
                    notification_text(alerts).rstrip("\n")
    finally:
        await port.stopListening()


def test_text_lines_cannot_be_forged():
    [one] = alerts_of("web1\r\nevil1 app: [plugin/online] fine", "db\x00", "m\n", "out")[:1]
    text = notification_text([one])
    assert text.splitlines() == [
        "web1\\r\\nevil1 app: [plugin/online] fine db\\x00: [api/alert] m\\n",
        "Current: FAIL: out",
    ]
