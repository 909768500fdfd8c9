"""The documentation's promises, checked: the example channels in ``misc/alert.d/`` work as a
real delivery runs them, and every ``ini`` snippet in ``docs/*.md`` loads with the real config
loaders.

The OverC modules are imported inside the tests, so this module keeps collecting (and points
at the one import to fix) while the package layout changes.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALERT_D = ROOT / "misc" / "alert.d"
DOCS = ROOT / "docs"
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
PUBLIC_URL = "https://monitor.example.com/"


def alerts():
    from overc.core.alerts import Alert

    return [
        Alert(id=7, time=1767600902.5, kind="state", severity="WARN", server_id=1,
              server_name="web1", service_id=10, service_name="disk",
              message='State changed: "OK" -> "WARN"', state="WARN",
              info="DISK WARNING - /var 91%"),
        Alert(id=8, time=1767600903.0, kind="offline", severity="FAIL", server_id=1,
              server_name="web1", service_id=11, service_name="app",
              message="No report for 75 s (period 60 s)", state="OK",
              info="it's <up> & \"running\"\nline 2"),
    ]


def delivery(alert_list, kind: str = "alert", notification_id: int = 42):
    """The stdin text and the environment a command channel delivery sets."""
    from overc.core.notification_text import command_environment, notification_text

    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update(command_environment(alert_list, PUBLIC_URL))
    env["OVERC_NOTIFICATION_KIND"] = kind
    env["OVERC_NOTIFICATION_ID"] = str(notification_id)
    return notification_text(alert_list).encode("utf-8"), env


def run_script(name: str, args: list[str], stdin: bytes, env: dict[str, str], cwd: Path):
    return subprocess.run([str(ALERT_D / name), *args], input=stdin, env=env, cwd=cwd,
                          capture_output=True, timeout=30)


@pytest.mark.parametrize("name", ["log.sh", "mail.sh"])
def test_example_scripts_are_executable_posix_sh(name):
    path = ALERT_D / name
    assert path.read_text().startswith("#!/bin/sh\n")
    assert os.access(path, os.X_OK)
    for shell in ("sh", "dash"):  # dash: a strict POSIX shell, Debian's /bin/sh
        if shutil.which(shell):
            check = subprocess.run([shell, "-n", str(path)], capture_output=True)
            assert check.returncode == 0, check.stderr


def test_log_sh_appends_the_text_with_a_utc_stamp_on_every_line(tmp_path):
    text, env = delivery(alerts()[:1])
    for _ in range(2):
        done = run_script("log.sh", ["alerts.log"], text, env, tmp_path)
        assert done.returncode == 0, done.stderr
    lines = (tmp_path / "alerts.log").read_text().splitlines()
    assert len(lines) == 4
    expected = text.decode().splitlines() * 2
    for line, original in zip(lines, expected):
        assert re.fullmatch(STAMP + " " + re.escape(original), line), line


def test_log_sh_marks_repeats_and_keeps_a_group_together(tmp_path):
    text, env = delivery(alerts(), kind="repeat")
    done = run_script("log.sh", [str(tmp_path / "a.log")], text, env, tmp_path)
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "a.log").read_text().splitlines()
    assert lines[0].endswith(" [repeat] web1: 2 alerts (1 offline, 1 state)")
    assert len(lines) == len(text.decode().splitlines())
    assert all(re.match(STAMP + r" \[repeat\] ", line) for line in lines)


def test_log_sh_fails_without_a_file_or_when_it_cannot_write(tmp_path):
    text, env = delivery(alerts()[:1])
    assert run_script("log.sh", [], text, env, tmp_path).returncode == 2
    done = run_script("log.sh", [str(tmp_path / "missing" / "a.log")], text, env, tmp_path)
    assert done.returncode != 0 and done.stderr


def fake_sendmail(folder: Path) -> Path:
    program = folder / "sendmail"
    program.write_text('#!/bin/sh\nprintf \'%s\\n\' "$@" > "$0.args"\ncat > "$0.message"\n')
    program.chmod(0o755)
    return program


def test_mail_sh_hands_one_message_to_sendmail(tmp_path):
    program = fake_sendmail(tmp_path)
    text, env = delivery(alerts())
    env.update(SENDMAIL=str(program), MAIL_FROM="overc@example.com")
    done = run_script("mail.sh", ["ops@example.com", "oncall@example.com"], text, env, tmp_path)
    assert done.returncode == 0, done.stderr
    args = (tmp_path / "sendmail.args").read_text().splitlines()
    assert args == ["-i", "-f", "overc@example.com", "--", "ops@example.com",
                    "oncall@example.com"]
    message = (tmp_path / "sendmail.message").read_text()
    head, _, body = message.partition("\n\n")
    assert "Subject: [OverC] web1: 2 alerts (1 offline, 1 state)" in head.splitlines()
    assert "To: ops@example.com, oncall@example.com" in head.splitlines()
    assert "X-OverC-Notification: 42" in head.splitlines()
    assert body == text.decode() + "\nhttps://monitor.example.com/ui/service/10\n"


def test_mail_sh_subject_is_one_line_and_a_repeat_says_so(tmp_path):
    from overc.core.alerts import Alert

    program = fake_sendmail(tmp_path)
    evil = Alert(id=9, time=0.0, kind="api", severity="FAIL", server_id=1, server_name="web1",
                 service_id=None, service_name=None, message="down\rBcc: everyone@example.com")
    text, env = delivery([evil], kind="repeat")
    env["SENDMAIL"] = str(program)
    done = run_script("mail.sh", ["ops@example.com"], text, env, tmp_path)
    assert done.returncode == 0, done.stderr
    head = (tmp_path / "sendmail.message").read_text().partition("\n\n")[0]
    assert not any(line.startswith("Bcc:") for line in head.splitlines())
    subject = [line for line in head.splitlines() if line.startswith("Subject:")]
    # the CR reaches the script already escaped (overc.core.notification_text.one_line)
    assert subject == ["Subject: [OverC] Repeat: web1: [api/alert] down\\rBcc: everyone@example.com"]


@pytest.mark.parametrize("address", ["-oQ/tmp@x", "a@b\nBcc: c@d", "no-at-sign", "a@b@c"])
def test_mail_sh_refuses_what_is_not_a_plain_address(tmp_path, address):
    program = fake_sendmail(tmp_path)
    text, env = delivery(alerts()[:1])
    env["SENDMAIL"] = str(program)
    done = run_script("mail.sh", [address], text, env, tmp_path)
    assert done.returncode == 2
    assert not (tmp_path / "sendmail.message").exists()


def test_slack_template_renders_valid_json_with_the_text_escaped_for_slack(tmp_path):
    from overc.notify.channel_config import parse_channel
    from overc.notify.factory import build_channel

    spec = parse_channel("slack", {"url": "https://hooks.slack.com/services/T/B/X",
                                   "template": "./alert.d/slack.json.j2"},
                         source="server.ini", base_dir=ALERT_D.parent)
    channel = build_channel(spec, reactor=None, public_url=PUBLIC_URL, http_client=object())
    doc = json.loads(channel.body(alerts(), "alert", 42))
    assert set(doc) == {"text"}
    assert doc["text"].startswith("web1: 2 alerts (1 offline, 1 state)\n")
    assert "it's &lt;up&gt; &amp; \"running\"\nline 2" in doc["text"]
    assert doc["text"].endswith("<https://monitor.example.com/ui/service/10|Open in OverC>")
    repeat = json.loads(channel.body(alerts()[:1], "repeat", 43))
    assert repeat["text"].startswith("Repeat: web1 disk: [service:state/WARN]")


# ------------------------------------------------------------------ ini snippets of the docs

def ini_snippets():
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(r"^```ini\n(.*?)^```", text, re.S | re.M):
            line = text.count("\n", 0, match.start()) + 1
            yield pytest.param(match.group(1), id=f"{page.name}:{line}")


def test_the_docs_have_ini_snippets():
    assert len(list(ini_snippets())) >= 5  # the pattern still finds them


@pytest.mark.parametrize("snippet", ini_snippets())
def test_ini_snippet_loads(snippet, tmp_path):
    """Server configs go through the server's loader and channel validation (as if the file
    sat in ``misc/``, beside ``alert.d/``); monitor configs through the agent's."""
    if "[service:" in snippet:
        from overc.agent.config import parse_config

        config = parse_config(snippet, str(tmp_path / "monitor.ini"))
        assert config.services
        return
    from overc.config import load_config
    from overc.notify.channel_config import parse_channels

    config = load_config(snippet, source="snippet.ini", base_dir=ALERT_D.parent, environ={})
    parse_channels(config)
