"""The agent's logs: levels, quiet Twisted namespaces, plurals, state changes, backoff transitions."""
import pytest
from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.logger import LogLevel, LogPublisher, Logger, formatEvent

from agent_fakes import FakeClient, FakeProcessReactor, FakePush, fake_resolve
from overc.agent.client import Endpoint, OvercClient, Unreachable
from overc.agent.config import parse_config
from overc.agent.forwarder import Forwarder
from overc.agent.logs import LogFilter, level_for, plural, version
from overc.agent.monitor import Monitor
from overc.agent.plugin_runner import PluginRunner
from overc.agent.results import Report
from overc.agent.spool import MemorySpool


def test_plural():
    assert [plural(n, "service") for n in (0, 1, 2, 10_000)] == ["0 services", "1 service", "2 services", "10,000 services"]
    assert plural(1, "failed attempt") == "1 failed attempt"


def test_version_is_overcs():
    from importlib.metadata import version as metadata_version

    import overc

    assert version() == (getattr(overc, "__version__", None) or metadata_version("overc"))


@pytest.mark.parametrize(
    "verbose,configured,expected",
    [
        (0, None, LogLevel.warn),  # overcli ping & co: quiet
        (1, None, LogLevel.info),
        (2, None, LogLevel.debug),
        (0, "info", LogLevel.info),  # the monitor's default
        (0, "error", LogLevel.error),
        (1, "error", LogLevel.info),  # -v wins when it says more
        (1, "debug", LogLevel.debug),
        (2, "warn", LogLevel.debug),
    ],
)
def test_level_for(verbose, configured, expected):
    assert level_for(verbose, configured) == expected


def emit_all(publisher):
    Logger(namespace="overc.agent.monitor", observer=publisher).debug("a plugin run")
    Logger(namespace="overc.agent.monitor", observer=publisher).info("a state change")
    Logger(namespace="overc.agent.forwarder", observer=publisher).warn("a backoff")
    Logger(namespace="twisted.web.client._HTTP11ClientFactory", observer=publisher).info("Starting factory")
    Logger(namespace="twisted.internet.base", observer=publisher).info("Main loop terminated.")
    Logger(namespace="twisted.internet.base", observer=publisher).critical("Unhandled error in main loop")


@pytest.mark.parametrize(
    "level,shown",
    [
        (LogLevel.debug, ["a plugin run", "a state change", "a backoff", "Starting factory", "Main loop terminated.", "Unhandled error in main loop"]),
        (LogLevel.info, ["a state change", "a backoff", "Unhandled error in main loop"]),
        (LogLevel.warn, ["a backoff", "Unhandled error in main loop"]),
        (LogLevel.error, ["Unhandled error in main loop"]),
    ],
)
def test_filter_installed_around_existing_observers(level, shown):
    publisher, seen = LogPublisher(), []
    publisher.addObserver(lambda event: seen.append(formatEvent(event)))
    logs = LogFilter(LogLevel.debug)
    logs.set_level(level)
    assert logs.install(publisher) == 1
    assert logs.install(publisher) == 1  # idempotent: a filtered observer is not wrapped twice
    emit_all(publisher)
    assert seen == shown


def test_level_can_change_after_install():
    publisher, seen = LogPublisher(), []
    publisher.addObserver(lambda event: seen.append(formatEvent(event)))
    logs = LogFilter(LogLevel.warn)
    logs.install(publisher)
    emit_all(publisher)
    logs.set_level(LogLevel.info)  # overcli monitor: the config has been read
    emit_all(publisher)
    assert seen == ["a backoff", "Unhandled error in main loop", "a state change", "a backoff", "Unhandled error in main loop"]


CONFIG = """
[overc]
server = http://overc.test/
my-name = web1
my-key = s3cret

[service:app]
period = 60
command = ./plugin.d/app.sh
"""


def test_monitor_logs_start_and_state_changes_not_every_run(caplog_events):
    reactor = FakeProcessReactor()
    config = parse_config(CONFIG, "/etc/overc/monitor.ini")
    client = OvercClient(StubTreq(FakePush().resource()), reactor, Endpoint("http://overc.test/", "web1", "s3cret"))
    runner = PluginRunner(reactor, concurrency=4, env={}, resolve=fake_resolve)
    monitor = Monitor(config, client, reactor, runner, Forwarder(client, reactor, MemorySpool()), log_runs=False)
    monitor.startService()
    reactor.advance(0)
    for code, out in [(0, b"fine"), (0, b"fine"), (2, b"down\nmore"), (2, b"down"), (0, b"")]:
        reactor.processes[-1].out(out)
        reactor.processes[-1].exit(code)
        reactor.advance(60)
    monitor.stopService()
    mine = [line for line in caplog_events if "overc.test" in line or "app" in line or "Monitor" in line]
    assert mine[0] == "OverC monitor " + version() + ": 1 service from /etc/overc/monitor.ini as 'web1', reporting to http://overc.test/"
    assert "app: OK -> FAIL: down" in mine and "app: FAIL -> OK" in mine
    assert not any("in 0.000 s" in line for line in caplog_events)  # no per-run line
    assert caplog_events[-1] == "Monitor stopped after 5 plugin runs; 0 reports in the spool for the next start"


def test_first_state_that_is_not_ok_is_logged(caplog_events):
    reactor = FakeProcessReactor()
    config = parse_config(CONFIG, "/etc/overc/monitor.ini")
    client = OvercClient(StubTreq(FakePush().resource()), reactor, Endpoint("http://overc.test/", "web1", "s3cret"))
    runner = PluginRunner(reactor, concurrency=4, env={}, resolve=fake_resolve)
    monitor = Monitor(config, client, reactor, runner, Forwarder(client, reactor, MemorySpool()), log_runs=True)
    monitor.startService()
    reactor.advance(0)
    reactor.processes[-1].out(b"no idea")
    reactor.processes[-1].exit(3)
    reactor.advance(1)
    monitor.stopService()
    assert "app is UNK: no idea" in caplog_events
    assert any(line.startswith("app: UNK in ") for line in caplog_events)  # log_runs: the debug line


def test_backoff_logs_transitions_not_every_retry(caplog_events):
    clock, client = Clock(), FakeClient()
    down = Unreachable("cannot reach http://fake/: Connection refused")
    client.script = [down, down, down, Unreachable("server answered 503"), None]
    forwarder = Forwarder(client, clock, MemorySpool(), batch_window=0)
    levels = []
    from twisted.logger import globalLogPublisher

    def observer(event):
        if event.get("log_namespace") == "overc.agent.forwarder":
            levels.append((event["log_level"], formatEvent(event)))

    globalLogPublisher.addObserver(observer)
    try:
        forwarder.submit([Report("a", "OK", "x", 60, 1.0)])
        for delay in (1, 2, 4, 8, 16):
            clock.advance(delay)
    finally:
        globalLogPublisher.removeObserver(observer)
    assert len(client.sent) == 1
    loud = [(level, text) for level, text in levels if level >= LogLevel.info]
    assert loud == [
        (LogLevel.warn, "Cannot deliver 1 report (cannot reach http://fake/: Connection refused); 1 report in the spool, retrying in 1 s"),
        (LogLevel.warn, "Cannot deliver 1 report (server answered 503); 1 report in the spool, retrying in 8 s"),
        (LogLevel.info, "Server answers again after 4 failed attempts"),
        (LogLevel.info, "Spool drained: every queued report is delivered"),
    ]
    assert [level for level, _ in levels].count(LogLevel.debug) == 2  # the same reason again
