"""The ready-made files in misc/ and the twistd entry point (tap) of the monitor."""
import configparser
from pathlib import Path

import pytest
import pytest_twisted
from twisted.python import usage

from overc.agent import tap
from overc.agent.config import read_config
from overc.agent.plugin_runner import PluginRunner

MISC = Path(__file__).resolve().parents[2] / "misc"


def test_example_config_parses_and_points_at_the_plugins():
    cfg = read_config(str(MISC / "monitor.ini.example"))
    assert [s.name for s in cfg.services] == ["sshd", "disk", "web"]
    for svc in cfg.services:
        assert (Path(cfg.folder) / svc.argv[0]).exists(), svc.argv[0]


@pytest.mark.parametrize("unit", ["overcli-monitor@.service", "overc-server.service"])
def test_systemd_units_are_well_formed(unit):
    parser = configparser.RawConfigParser(strict=False)
    parser.read(MISC / "systemd" / unit)
    assert parser.get("Service", "ExecStart").startswith("/usr/bin/env twistd --nodaemon")
    assert parser.get("Install", "WantedBy") == "multi-user.target"
    if unit.startswith("overcli"):
        assert "/etc/overc/monitor-%i.ini" in parser.get("Service", "ExecStart")


def test_supervisor_program():
    parser = configparser.RawConfigParser()
    parser.read(MISC / "supervisor" / "overcli-monitor.conf")
    assert parser.get("program:overcli-monitor", "command") == "overcli monitor /etc/overc/monitor.ini"


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_example_plugins_follow_the_plugin_format():
    from twisted.internet import reactor

    cfg = read_config(str(MISC / "monitor.ini.example"))
    runner = PluginRunner(reactor)
    for svc in cfg.services:
        if svc.name == "web":
            spec = svc.plugin_spec().__class__(("./plugin.d/http.sh", "http://127.0.0.1:1/", "200", "2"), svc.cwd, 5)
        else:
            spec = svc.plugin_spec()
        outcome = (await runner.run(spec)).outcome
        assert outcome.state in ("OK", "WARN", "FAIL"), (svc.name, outcome)
        if svc.name == "disk":
            assert "'/'=" in outcome.info and "% used" in outcome.info
        if svc.name == "web":
            assert outcome.state == "FAIL" and "unreachable" in outcome.info


def test_tap_options_read_the_config(tmp_path):
    config = tmp_path / "m.ini"
    config.write_text("[overc]\nserver = http://a/\nmy-name = n\nmy-key = k\n[service:x]\nperiod = 5\ncommand = true\n")
    opts = tap.Options()
    opts.parseOptions(["-i", "other:key2", str(config)])
    assert opts["endpoint"].base_url == "http://a/"
    assert (opts["endpoint"].name, opts["endpoint"].key) == ("other", "key2")


def test_tap_config_error_is_one_line(tmp_path, capsys):
    config = tmp_path / "m.ini"
    config.write_text("[service:x]\nperiod = soon\ncommand = true\n")
    with pytest.raises(SystemExit) as e:
        tap.Options().parseOptions(["-s", "http://a/", "-i", "n:k", str(config)])
    assert e.value.code == 2
    assert capsys.readouterr().err == f"overcli-monitor: config error: {config}: [service:x] period: must be an integer, got 'soon'\n"


def test_tap_loglevel_option_overrides_the_file(tmp_path):
    from twisted.logger import LogLevel

    config = tmp_path / "m.ini"
    config.write_text("[overc]\nserver = http://a/\nmy-name = n\nmy-key = k\nloglevel = error\n[service:x]\nperiod = 5\ncommand = true\n")
    opts = tap.Options()
    opts.parseOptions([str(config)])
    assert opts["level"] == LogLevel.error
    opts = tap.Options()
    opts.parseOptions(["--loglevel", "DEBUG", str(config)])
    assert opts["level"] == LogLevel.debug
    with pytest.raises(usage.UsageError, match="must be one of"):
        tap.Options().parseOptions(["--loglevel", "loud", str(config)])


@pytest.mark.parametrize(
    "given,expected",
    [
        ({"pidfile": "twistd.pid", "nodaemon": 1, "logfile": None, "syslog": 0}, ("overcli-monitor.pid", None)),
        ({"pidfile": "twistd.pid", "nodaemon": 0, "logfile": None, "syslog": 0}, ("overcli-monitor.pid", "overcli-monitor.log")),
        ({"pidfile": "/run/x.pid", "nodaemon": 0, "logfile": "x.log", "syslog": 0}, ("/run/x.pid", "x.log")),
        ({"pidfile": "", "nodaemon": 0, "logfile": None, "syslog": 1}, ("", None)),
    ],
)
def test_twistd_defaults_become_the_monitors_own_files(given, expected):
    tap.own_files(given)
    assert (given["pidfile"], given["logfile"]) == expected


def test_tap_make_service_builds_the_monitor(tmp_path):
    from agent_fakes import FakeProcessReactor, FakePush
    from treq.testing import StubTreq

    config = tmp_path / "m.ini"
    config.write_text("[overc]\nserver = http://a/\nmy-name = n\nmy-key = k\n[service:x]\nperiod = 5\ncommand = true\n")
    opts = tap.Options()
    opts.parseOptions([str(config)])
    service = tap.makeService(opts, reactor=FakeProcessReactor(), http=StubTreq(FakePush().resource()))
    assert service.name == "overcli-monitor"
    assert service.forwarder.spool.path == str(tmp_path / "m.spool")


def test_twistd_plugin_points_at_the_tap():
    from twisted.plugin import getPlugins
    from twisted.application.service import IServiceMaker
    import twisted.plugins

    makers = {p.tapname: p for p in getPlugins(IServiceMaker, twisted.plugins)}
    assert makers["overcli-monitor"].options is tap.Options
