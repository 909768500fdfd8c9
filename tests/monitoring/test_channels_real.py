"""Channels against real things: real child processes (a script appending stdin to a file, one
failing twice then succeeding, one hanging past its timeout), a real webhook receiver
(twisted.web on 127.0.0.1:0) and a real SMTP receiver (twisted.mail's ESMTP server)."""
from __future__ import annotations

import email
import json
import time
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.mail import smtp
from twisted.web import resource, server
from zope.interface import implementer

from overc.core.alerts import Alert
from overc.notify.base import DeliveryError
from overc.config import ConfigError
from overc.notify.channel_config import parse_channel
from overc.notify.factory import build_channel

from helpers import reactor

ALERTS = [
    Alert(id=1, time=0.0, kind="state", severity="WARN", server_id=1, server_name="web1",
          service_id=10, service_name="disk", message='State changed: "OK" -> "WARN"',
          state="WARN", info="DISK WARNING - /var 91%"),
    Alert(id=2, time=0.0, kind="offline", severity="FAIL", server_id=1, server_name="web1",
          service_id=11, service_name="app", message="No report for 75 s (period 60 s)",
          state="OK", info="up 32h"),
]
TEXT_ONE = ('web1 disk: [service:state/WARN] State changed: "OK" -> "WARN"\n'
            "Current: WARN: DISK WARNING - /var 91%\n")


def script(folder: Path, name: str, body: str) -> None:
    path = folder / "alert.d" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def channel(tmp_path, name, **raw):
    spec = parse_channel(name, raw, source=str(tmp_path / "server.ini"), base_dir=tmp_path)
    return build_channel(spec, reactor=reactor(), public_url="https://mon.example.com/")


async def outcome(d) -> str | None:
    try:
        await d
    except DeliveryError as e:
        return str(e)
    return None


@pytest_twisted.ensureDeferred
async def test_command_gets_the_1x_text_on_stdin_the_env_and_the_config_folder(tmp_path):
    script(tmp_path, "log.sh", 'cat >> "$1"\n'
           'echo "$OVERC_SERVER|$OVERC_SERVICE|$OVERC_KIND|$OVERC_SEVERITY|$OVERC_STATE|'
           '$OVERC_MESSAGE|$OVERC_URL|$OVERC_ALERT_COUNT|$(pwd)" > env.txt\n')
    log = channel(tmp_path, "log", command="./alert.d/log.sh out.log")
    assert await outcome(log.send(ALERTS[:1], "alert")) is None
    assert (tmp_path / "out.log").read_bytes() == TEXT_ONE.encode()
    assert await outcome(log.send(ALERTS, "alert")) is None
    assert (tmp_path / "out.log").read_text() == TEXT_ONE + (
        "web1: 2 alerts (1 offline, 1 state)\n" + TEXT_ONE +
        "web1 app: [plugin/offline] No report for 75 s (period 60 s)\n"
        "Current: no report for 75 s; last: OK: up 32h\n")
    assert (tmp_path / "env.txt").read_text().strip() == (
        'web1|disk|state|WARN|WARN|State changed: "OK" -> "WARN"|'
        f"https://mon.example.com/ui/service/10|2|{tmp_path}")


@pytest_twisted.ensureDeferred
async def test_command_json_format(tmp_path):
    script(tmp_path, "json.sh", "cat > got.json\n")
    hook = channel(tmp_path, "j", command="./alert.d/json.sh", format="json")
    assert await outcome(hook.send(ALERTS, "alert")) is None
    doc = json.loads((tmp_path / "got.json").read_text())
    assert doc["count"] == 2 and doc["alerts"][1]["event"] == "offline"


@pytest_twisted.ensureDeferred
async def test_command_failing_twice_then_succeeding(tmp_path):
    script(tmp_path, "flaky.sh", 'n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); '
           'echo $n > count\ncat >> delivered\n[ $n -ge 3 ] || { echo "try $n failed" >&2; '
           "exit 2; }\n")
    flaky = channel(tmp_path, "flaky", command="./alert.d/flaky.sh")
    results = [await outcome(flaky.send(ALERTS[:1], "alert")) for _ in range(3)]
    assert results == ["exit code 2: try 1 failed", "exit code 2: try 2 failed", None]


@pytest_twisted.ensureDeferred
async def test_command_hanging_past_its_timeout_is_killed(tmp_path):
    script(tmp_path, "hang.sh", "exec sleep 60\n")
    hang = channel(tmp_path, "hang", command="./alert.d/hang.sh", timeout="1")
    started = time.monotonic()
    error = await outcome(hang.send(ALERTS, "alert"))
    assert error.startswith("timed out after 1 s, killed")
    assert time.monotonic() - started < 5


@pytest_twisted.ensureDeferred
async def test_command_that_cannot_start(tmp_path):
    # Checked at start (a config error naming file, section and key) ...
    (tmp_path / "plain.sh").write_text("echo\n")
    for command, why in (("./plain.sh", "command is not executable: ./plain.sh"),
                         ("./gone.sh", "command not found: ./gone.sh"),
                         ("no-such-program-overc", "command not found on PATH")):
        with pytest.raises(ConfigError) as caught:
            channel(tmp_path, "x", command=command)
        assert (caught.value.section, caught.value.key) == ("alert:x", "command")
        assert str(caught.value).startswith(f"{tmp_path / 'server.ini'} [alert:x] command: {why}")
    # ... and again at delivery, when the program went away since
    script(tmp_path, "soon-gone.sh", "exit 0\n")
    gone = channel(tmp_path, "x", command="./alert.d/soon-gone.sh")
    (tmp_path / "alert.d" / "soon-gone.sh").chmod(0o644)
    assert "not executable" in await outcome(gone.send(ALERTS, "alert"))
    (tmp_path / "alert.d" / "soon-gone.sh").unlink()
    assert "command not found" in await outcome(gone.send(ALERTS, "alert"))


class Receiver(resource.Resource):
    isLeaf = True

    def __init__(self):
        super().__init__()
        self.requests = []
        self.status = 200

    def render_POST(self, request):
        self.requests.append((dict(request.requestHeaders.getAllRawHeaders()),
                              request.content.read()))
        request.setResponseCode(self.status)
        return b"nope" if self.status >= 300 else b"ok"


@pytest.fixture
def receiver():
    web = Receiver()
    port = reactor().listenTCP(0, server.Site(web), interface="127.0.0.1")
    web.url = f"http://127.0.0.1:{port.getHost().port}/hook"
    yield web
    port.stopListening()


@pytest_twisted.ensureDeferred
async def test_webhook_posts_json_with_headers(tmp_path, receiver):
    hook = channel(tmp_path, "hook", url=receiver.url,
                   headers="\nAuthorization: Bearer s3cret\nX-Env: test")
    assert await outcome(hook.send(ALERTS, "alert", 42)) is None
    headers, body = receiver.requests[0]
    assert headers[b"X-Overc-Notification"] == [b"42"]
    assert headers[b"Authorization"] == [b"Bearer s3cret"] and headers[b"X-Env"] == [b"test"]
    assert headers[b"Content-Type"] == [b"application/json"]
    doc = json.loads(body)
    assert doc["summary"] == "web1: 2 alerts (1 offline, 1 state)" and doc["notification"] == 42
    assert doc["url"] == "https://mon.example.com/ui/service/10"
    receiver.status = 500
    assert await outcome(hook.send(ALERTS, "alert")) == "HTTP 500: nope"


@pytest_twisted.ensureDeferred
async def test_webhook_template_renders_the_body(tmp_path, receiver):
    (tmp_path / "slack.j2").write_text(
        '{"text": {{ text | tojson }}, "n": {{ count }}, '
        '"first": {{ alerts[0].service | tojson }}}')
    hook = channel(tmp_path, "slack", url=receiver.url, template="slack.j2")
    assert await outcome(hook.send(ALERTS[:1], "alert")) is None
    assert json.loads(receiver.requests[0][1]) == {"text": TEXT_ONE, "n": 1, "first": "disk"}


@pytest_twisted.ensureDeferred
async def test_webhook_unreachable_and_silent_receivers_fail(tmp_path):
    from twisted.internet.protocol import Factory, Protocol

    silent = reactor().listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
    number = silent.getHost().port
    try:
        hook = channel(tmp_path, "h", url=f"http://127.0.0.1:{number}/",
                       timeout="1")
        assert await outcome(hook.send(ALERTS, "alert")) == "no answer within 1 s"
    finally:
        await silent.stopListening()
    closed = channel(tmp_path, "h", url=f"http://127.0.0.1:{number}/")
    assert "ConnectionRefused" in await outcome(closed.send(ALERTS, "alert"))


@implementer(smtp.IMessage)
class _Message:
    def __init__(self, box):
        self.box, self.lines = box, []

    def lineReceived(self, line):
        self.lines.append(line)

    def eomReceived(self):
        self.box.append(b"\n".join(self.lines))
        return defer.succeed(None)

    def connectionLost(self):
        pass


@implementer(smtp.IMessageDelivery)
class _Delivery:
    def __init__(self, box):
        self.box = box
        self.recipients = []

    def receivedHeader(self, helo, origin, recipients):
        return b"Received: by the test receiver"

    def validateFrom(self, helo, origin):
        return origin

    def validateTo(self, user):
        self.recipients.append(str(user.dest))
        return lambda: _Message(self.box)


class _SMTPFactory(smtp.SMTPFactory):
    protocol = smtp.ESMTP

    def __init__(self, delivery):
        super().__init__()
        self.delivery = delivery

    def buildProtocol(self, addr):
        p = super().buildProtocol(addr)
        p.delivery = self.delivery
        p.challengers = {}
        return p


@pytest_twisted.ensureDeferred
async def test_smtp_sends_one_mail_per_notification(tmp_path):
    box: list[bytes] = []
    delivery = _Delivery(box)
    port = reactor().listenTCP(0, _SMTPFactory(delivery), interface="127.0.0.1")
    try:
        mail = channel(tmp_path, "mail", smtp=f"smtp://127.0.0.1:{port.getHost().port}",
                       **{"from": "overc@example.com", "to": "ops@example.com, b@example.com"})
        assert await outcome(mail.send(ALERTS, "alert")) is None
    finally:
        await port.stopListening()
    # one SMTP transaction with two recipients: the receiver stores one copy per recipient
    assert len(box) == 2 and box[0] == box[1]
    raw = box[0]
    message = email.message_from_bytes(raw)
    assert message["Subject"] == "[OverC] web1: 2 alerts (1 offline, 1 state)"
    assert message["From"] == "overc@example.com"
    assert sorted(delivery.recipients) == ["b@example.com", "ops@example.com"]
    assert message.get_payload(decode=True).decode().startswith(
        "web1: 2 alerts (1 offline, 1 state)\n" + TEXT_ONE)


@pytest_twisted.ensureDeferred
async def test_smtp_refused_connection_is_a_delivery_error(tmp_path):
    mail = channel(tmp_path, "mail", smtp="smtp://127.0.0.1:1", timeout="3",
                   **{"from": "overc@example.com", "to": "ops@example.com"})
    error = await outcome(mail.send(ALERTS, "alert"))  # only a DeliveryError is caught there
    assert error is not None and error.strip()
