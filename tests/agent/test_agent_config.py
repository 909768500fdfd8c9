"""Monitor config parsing: 1.x files unchanged, new keys, errors naming file, section and key."""
import os

import pytest

from overc.agent.config import ConfigError, parse_config, peek_identity, read_config

V1 = """\
[overc]
server=http://localhost:5000/
my-name=a.example.com
my-key=1234

[service:app]
period=5
max-lag=1
command=./plugin.d/app.sh

[service:echo]
period=5
command=echo 1
"""


def test_1x_file_unchanged():
    cfg = parse_config(V1, "/etc/overc/monitor.ini")
    assert (cfg.server, cfg.name, cfg.key) == ("http://localhost:5000/", "a.example.com", "1234")
    app, echo = cfg.services
    assert (app.name, app.period, app.max_lag, app.argv, app.cwd) == ("app", 5, 1.0, ("./plugin.d/app.sh",), "/etc/overc")
    assert echo.argv == ("echo", "1") and echo.max_lag is None
    assert echo.effective_timeout == 5.0
    assert cfg.concurrency == 16 and cfg.spool is None


def test_new_keys_and_inline_comments():
    cfg = parse_config(
        """
[overc]
server = http://localhost:5000/   ; where
my-name = web1
my-key = s3cret
spool = state/spool
spool-size = 50
concurrency = 4

[service:disk]
period = 300
command = /usr/lib/nagios/plugins/check_disk -w 10% -c 5% -p /
timeout = 12.5
[service:pipe]
period = 60
shell = yes
command = ps ax | grep -c httpd
""",
        "/srv/mon/m.ini",
    )
    disk, pipe = cfg.services
    assert cfg.server == "http://localhost:5000/"
    assert cfg.spool == "/srv/mon/state/spool" and cfg.spool_size == 50 and cfg.concurrency == 4
    assert disk.argv == ("/usr/lib/nagios/plugins/check_disk", "-w", "10%", "-c", "5%", "-p", "/")
    assert disk.effective_timeout == 12.5
    assert pipe.argv == ("/bin/sh", "-c", "ps ax | grep -c httpd")
    assert pipe.plugin_spec().own_group and not disk.plugin_spec().own_group


@pytest.mark.parametrize(
    "text,expected",
    [
        ("[service:a]\ncommand=x\n", "m.ini: [service:a] period: is required"),
        ("[service:a]\nperiod=x\ncommand=x\n", "m.ini: [service:a] period: must be an integer, got 'x'"),
        ("[service:a]\nperiod=0\ncommand=x\n", "m.ini: [service:a] period: must be from 1 to 31536000, got '0'"),
        ("[service:a]\nperiod=5\n", "m.ini: [service:a] command: is required"),
        ("[service:a]\nperiod=5\ncommand=\n", "m.ini: [service:a] command: must not be empty"),
        ("[service:a]\nperiod=5\ncommand='x\n", "m.ini: [service:a] command: cannot split"),
        ("[service:a]\nperiod=5\ncommand=x\nshell=maybe\n", "m.ini: [service:a] shell: must be yes or no, got 'maybe'"),
        ("[service:a]\nperiod=5\ncommand=x\nmax-lag=-1\n", "m.ini: [service:a] max-lag: must be at least 0"),
        ("[service:a]\nperiod=5\ncommand=x\n[alert:b]\ncommand=y\n", "m.ini: [alert:b]: unknown section type 'alert'"),
        ("[overc]\nconcurrency=0\n[service:a]\nperiod=5\ncommand=x\n", "m.ini: [overc] concurrency: must be from 1"),
        ("[overc]\nserver=x\n", "m.ini: no [service:NAME] sections"),
        ("[service:a]\nperiod=5\nperiod=6\ncommand=x\n", "m.ini: [service:a] period: key appears twice"),
        ("[service:a]\nperiod=5\ncommand=x\n[service:a]\n", "m.ini: [service:a]: section appears twice"),
        ("period=5\n", "m.ini: line 1: a key outside of any [section]"),
        ("[service:" + "x" * 65 + "]\nperiod=5\ncommand=x\n", "service name must be 1 to 64"),
        ("[service:a]\nschedule=0 3 * *\ncommand=x\n", "m.ini: [service:a] schedule: '0 3 * *' is not a cron"),
        ("[service:a]\nschedule=0 3 * * *\ntz=Mars\ncommand=x\n", "m.ini: [service:a] tz: 'Mars' is not an IANA"),
        ("[service:a]\nperiod=5\ntz=UTC\ncommand=x\n", "m.ini: [service:a] tz: is only meaningful with a schedule"),
    ],
)
def test_errors_name_file_section_and_key(text, expected):
    with pytest.raises(ConfigError) as e:
        parse_config(text, "m.ini")
    assert expected in str(e.value)
    if expected.startswith("m.ini"):
        assert str(e.value).startswith(expected)


def test_plain_sections_are_ignored_like_1x():
    cfg = parse_config("[misc]\nx=1\n[service:a]\nperiod=5\ncommand=x\n", "m.ini")
    assert [s.name for s in cfg.services] == ["a"]


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        read_config(str(tmp_path / "nope.ini"))


def test_spool_locations(tmp_path):
    path = tmp_path / "monitor-web.ini"
    path.write_text("[service:a]\nperiod=5\ncommand=x\n")
    cfg = read_config(str(path))
    assert cfg.spool_path() == str(tmp_path / "monitor-web.spool")
    assert cfg.spool_path("/var/lib/overc") == "/var/lib/overc/monitor-web.spool"
    (tmp_path / "sp").mkdir()
    path.write_text("[overc]\nspool=sp\n[service:a]\nperiod=5\ncommand=x\n")
    assert read_config(str(path)).spool_path() == os.path.join(tmp_path, "sp", "monitor-web.spool")


def test_peek_identity_of_a_broken_file(tmp_path):
    path = tmp_path / "m.ini"
    path.write_text("[overc]\nserver=http://h/\nmy-name=n\nmy-key=k\n[service:a]\nperiod=x\n")
    assert peek_identity(str(path)) == ("http://h/", "n", "k")
    assert peek_identity(str(tmp_path / "none.ini")) == (None, None, None)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("[overc]\ntimout=3\n[service:a]\nperiod=5\ncommand=x\n", "m.ini: [overc] timout: unknown key (known: server, my-name,"),
        ("[service:a]\nperiod=5\ncommand=x\ntimout=3\n", "m.ini: [service:a] timout: unknown key (known: period, command, max-lag, timeout, shell, schedule, tz)"),
        ("[service:a]\nperiod=5\ncommand=x\nmax_lag=3\n", "m.ini: [service:a] max_lag: unknown key"),
        ("[overc]\nperiod=5\n[service:a]\nperiod=5\ncommand=x\n", "m.ini: [overc] period: unknown key"),
        ("[service:a]\nperiod=5\ncommand=x\nspool=x\n", "m.ini: [service:a] spool: unknown key"),
        ("[DEFAULT]\nfoo=1\n[service:a]\nperiod=5\ncommand=x\n", "m.ini: [DEFAULT] foo: unknown key"),
        ("[overc]\nloglevel=loud\n[service:a]\nperiod=5\ncommand=x\n", "m.ini: [overc] loglevel: must be one of debug, info, warn"),
    ],
)
def test_unknown_keys_are_errors(text, expected):
    with pytest.raises(ConfigError) as e:
        parse_config(text, "m.ini")
    assert str(e.value).startswith(expected)
    assert "\n" not in str(e.value)


def test_every_1x_key_and_shared_defaults_stay_valid():
    # 1.x keys: [overc] server, my-name, my-key; [service:*] period, command, max-lag (upper case too).
    cfg = parse_config(V1.replace("max-lag=1", "MAX-LAG=1"), "m.ini")
    assert cfg.services[0].max_lag == 1.0 and cfg.loglevel == "info"
    cfg = parse_config("[DEFAULT]\nperiod=30\n[overc]\nserver=http://a/\n[service:a]\ncommand=x\n[misc]\nanything=1\n", "m.ini")
    assert cfg.services[0].period == 30
    assert parse_config("[overc]\nloglevel = Warning\n[service:a]\nperiod=5\ncommand=x\n", "m.ini").loglevel == "warning"


def test_schedule_and_zone_per_service():
    config = parse_config(
        "[service:backup]\nschedule = 0 3 * * *\ntz = Europe/Berlin\ncommand = ./backup.sh\n"
        "[service:report]\nperiod = 600\nschedule = */5 * * * *\ncommand = x\n"
        "[service:plain]\nperiod = 60\ncommand = x\n", "/etc/overc/m.ini")
    backup, report, plain = config.services
    # without period, a scheduled service sends its typical interval (and times out after it)
    assert (backup.schedule, backup.tz, backup.period) == ("0 3 * * *", "Europe/Berlin", 86400)
    assert backup.effective_timeout == 86400.0
    assert (report.schedule, report.tz, report.period) == ("*/5 * * * *", "UTC", 600)
    assert (plain.schedule, plain.tz) == (None, None)
