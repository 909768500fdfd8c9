"""The server config: 1.x files, precedence, and one-line errors naming file/section/key."""
from pathlib import Path

import pytest

from overc.config import (
    ConfigError,
    listen_is_loopback,
    load_config,
    load_config_file,
)
from overc.core.dburl import MySQLTarget, SQLiteTarget
from overc.core.durations import parse_duration
from overc.core.passwords import hash_secret, verify_secret

HASH = hash_secret("pw", iterations=1000)


def error(text, **kw):
    with pytest.raises(ConfigError) as caught:
        load_config(text, source="/etc/overc/server.ini", **kw)
    return str(caught.value)


def test_defaults_without_a_config(tmp_path):
    config = load_config(None, base_dir=tmp_path)
    assert config.database == "sqlite:///overc.db"
    assert config.database_target() == SQLiteTarget(tmp_path / "overc.db")
    assert config.listen == "tcp:5000:interface=127.0.0.1"
    assert config.grace.for_period(60) == 6 and config.retention == 90 * 86400
    assert config.registration_open and not config.auth_required


def test_a_1x_config_loads_unchanged(tmp_path):
    path = tmp_path / "server.ini"
    path.write_text(
        "[overc]\ndatabase=mysql://overc:pa%40ss@db.local/overc\nloglevel=INFO\n\n"
        "[alert:log]\ncommand=./alert.d/log.sh /var/log/overc.log\n"
    )
    config = load_config_file(path, environ={})
    assert config.database_target() == MySQLTarget("db.local", 3306, "overc", "pa@ss", "overc")
    assert config.loglevel == "info"
    assert config.channels == {"log": {"command": "./alert.d/log.sh /var/log/overc.log"}}
    assert config.base_dir == tmp_path


def test_relative_sqlite_is_relative_to_the_config_folder(tmp_path):
    path = tmp_path / "conf" / "overc.ini"
    path.parent.mkdir()
    path.write_text("[overc]\ndatabase = sqlite:///data/overc.db\n")
    assert load_config_file(path, {}).database_target() == SQLiteTarget(
        tmp_path / "conf" / "data" / "overc.db")
    assert load_config(
        "[overc]\ndatabase = sqlite:////var/lib/overc/x.db\n").database_target() == SQLiteTarget(
        Path("/var/lib/overc/x.db"))


def test_precedence_command_line_over_environment_over_file():
    text = "[overc]\nlisten = tcp:6000:interface=127.0.0.1\ngrace = 5\nregistration = open\n"
    env = {"OVERC_LISTEN": "tcp:7000:interface=127.0.0.1", "OVERC_REGISTRATION": "closed",
           "OVERC_PUBLIC_URL": "https://mon.example/"}
    config = load_config(text, environ=env, overrides={"listen": "unix:/tmp/o.sock"})
    assert config.listen == "unix:/tmp/o.sock"
    assert not config.registration_open
    assert config.public_url == "https://mon.example/"
    assert config.grace.seconds == 5


def test_full_config():
    config = load_config(
        "[overc]\ngrace = 20%\nretention = 30d\npublic-url = https://m/\nwatchdog-interval = 2\n"
        "access-log = on\n"
        f"[ui]\nusers = admin:{HASH}, ops:{HASH}\n"
        "[alert:hook]\nurl = https://hooks.example.com/x\nmin-severity = FAIL\n"
    )
    assert config.grace.fraction == 0.2 and config.retention == 30 * 86400
    assert set(config.users) == {"admin", "ops"} and config.auth_required
    assert verify_secret("pw", config.users["admin"])
    assert config.channels["hook"]["min-severity"] == "FAIL"
    assert config.access_log and config.watchdog_interval == 2


@pytest.mark.parametrize("text, expected", [
    ("[overc]\ndatabase = postgres://x/y\n",
     "/etc/overc/server.ini [overc] database: unsupported database URL"),
    ("[overc]\ndatabase = mysql://host\n",
     "/etc/overc/server.ini [overc] database: MySQL URL names no database"),
    ("[overc]\nloglevel = loud\n", "/etc/overc/server.ini [overc] loglevel: 'loud' is not one of"),
    ("[overc]\ngrace = lots\n", "/etc/overc/server.ini [overc] grace: 'lots' is not a duration"),
    ("[overc]\nretention = 0\n", "/etc/overc/server.ini [overc] retention: must be more than 0"),
    ("[overc]\nregistration = maybe\n",
     "/etc/overc/server.ini [overc] registration: use open or closed"),
    ("[overc]\nregistation = closed\n",
     "/etc/overc/server.ini [overc] registation: unknown key"),
    ("[ui]\nusers = admin:plaintext\n",
     "/etc/overc/server.ini [ui] users: the password of 'admin' is not a hash"),
    ("[ui]\nusers = admin\n", "/etc/overc/server.ini [ui] users: 'admin' is not user:<password"),
    ("[ui]\nauth = maybe\n", "/etc/overc/server.ini [ui] auth: use users or none"),
    ("[web]\nport = 80\n", "/etc/overc/server.ini [web]: unknown section"),
    ("[alert:]\ncommand = x\n", "/etc/overc/server.ini [alert:]: a channel needs a name"),
    ("no section\n", "/etc/overc/server.ini [?]: cannot parse"),
])
def test_errors_name_file_section_and_key(text, expected):
    message = error(text)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_environment_errors_name_the_variable():
    assert error(None, environ={"OVERC_GRACE": "soon"}).startswith(
        "environment OVERC_GRACE [overc] grace: 'soon' is not a duration")


def test_refuses_to_listen_beyond_loopback_without_users():
    message = error("[overc]\nlisten = tcp:5000\n")
    assert message.startswith("/etc/overc/server.ini [ui] users: the server would listen beyond"
                              " loopback (tcp:5000) with no users")
    assert not load_config("[overc]\nlisten = tcp:5000\n[ui]\nauth = none\n").auth_required
    assert load_config(f"[overc]\nlisten = tcp:5000\n[ui]\nusers = a:{HASH}\n").auth_required
    assert error(None, overrides={"listen": "tcp:80:interface=0.0.0.0"})


@pytest.mark.parametrize("endpoint, loopback", [
    ("tcp:5000:interface=127.0.0.1", True), ("tcp6:5000:interface=\\:\\:1", True),
    ("tcp:5000:interface=localhost", True), ("tcp:5000:interface=::1", False),
    ("unix:/run/overc.sock", True), ("tcp:5000", False), ("tcp:5000:interface=0.0.0.0", False),
    ("tcp:5000:interface=10.0.0.1", False), ("ssl:443:privateKey=k.pem", False),
    ("systemd:domain=INET:index=0", False),
])
def test_loopback_detection(endpoint, loopback):
    assert listen_is_loopback(endpoint) is loopback


@pytest.mark.parametrize("text, seconds", [
    ("90d", 90 * 86400), ("12h", 43200), ("30m", 1800), ("45s", 45), ("10", 10), ("1w", 604800),
    ("1.5h", 5400),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config_file(tmp_path / "missing.ini", {})
    assert str(caught.value).startswith(f"{tmp_path / 'missing.ini'} [-]: cannot read the file")
