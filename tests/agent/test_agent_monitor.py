"""The monitor service with a fake process reactor, StubTreq and the Klein push fake."""
import pytest
from treq.testing import StubTreq

from agent_fakes import FakeProcessReactor, FakePush, fake_resolve
from overc.agent.client import Endpoint, OvercClient
from overc.agent.config import parse_config
from overc.agent.forwarder import Forwarder
from overc.agent.monitor import Monitor, failure_message
from overc.agent.plugin_runner import PluginRunner
from overc.agent.spool import MemorySpool

CONFIG = """
[overc]
server = http://overc.test/
my-name = web1
my-key = s3cret
concurrency = 8

[service:app]
period = 60
command = ./plugin.d/app.sh

[service:disk]
period = 300
max-lag = 10
command = check_disk -w 10%
"""


@pytest.fixture
def env():
    reactor = FakeProcessReactor()
    push = FakePush()
    config = parse_config(CONFIG, "/etc/overc/monitor.ini")
    client = OvercClient(StubTreq(push.resource()), reactor, Endpoint("http://overc.test/", "web1", "s3cret"))
    runner = PluginRunner(reactor, concurrency=config.concurrency, env={}, resolve=fake_resolve)
    forwarder = Forwarder(client, reactor, MemorySpool(), batch_window=0.25)
    fatal = []
    monitor = Monitor(config, client, reactor, runner, forwarder, on_fatal=fatal.append)
    return reactor, push, monitor, fatal


def procs(reactor, name):
    return [p for p in reactor.processes if name in p.args[0]]


def test_every_service_runs_at_start_and_results_share_one_post(env):
    reactor, push, monitor, _ = env
    monitor.startService()
    reactor.advance(0)
    assert [p.args[0] for p in reactor.processes] == ["./plugin.d/app.sh", "check_disk"]
    assert all(p.path == "/etc/overc" for p in reactor.processes)
    reactor.advance(0.5)
    app, disk = reactor.processes
    app.out(b"up 32h")
    app.exit(0)
    reactor.advance(0.125)
    disk.out(b"DISK WARNING - /var 91% | /var=91%;90;95;0;100")
    disk.exit(1)
    reactor.advance(0.25)
    posts = push.status_posts()
    assert len(posts) == 1
    assert posts[0]["services"] == [
        {"name": "app", "state": "OK", "info": "up 32h", "period": 60, "duration": 0.5},
        {"name": "disk", "state": "WARN", "info": "DISK WARNING - /var 91% | /var=91%;90;95;0;100", "period": 300,
         "duration": 0.625},  # how long each plugin ran (SPEC 9.3)
    ]
    assert push.calls[0][0] == "ping"


def test_next_runs_follow_the_schedule(env):
    reactor, push, monitor, _ = env
    monitor.startService()
    reactor.advance(0)
    app, disk = reactor.processes
    reactor.advance(2)  # both plugins take 2 s
    app.exit(0)
    disk.exit(0)
    # app: 0.8 * 60 - 3 * 2 = 42 s after its start; disk: 0.8 * 300 - 10 = 230 s after its start
    reactor.advance(42 - 2 - 0.01)
    assert len(procs(reactor, "app.sh")) == 1
    reactor.advance(0.01)
    assert len(procs(reactor, "app.sh")) == 2
    procs(reactor, "app.sh")[1].exit(0)  # instant: reserve 0 next time, 48 s
    reactor.advance(48 - 0.01)
    assert len(procs(reactor, "app.sh")) == 2
    reactor.advance(0.01)
    assert len(procs(reactor, "app.sh")) == 3
    reactor.advance(230 - reactor.seconds() - 0.01)
    assert len(procs(reactor, "check_disk")) == 1
    reactor.advance(0.01)
    assert len(procs(reactor, "check_disk")) == 2


def test_a_slow_plugin_never_overlaps_itself(env):
    reactor, push, monitor, _ = env
    monitor.startService()
    reactor.advance(0)
    reactor.advance(59)
    assert len(procs(reactor, "app.sh")) == 1  # still running: no second copy
    procs(reactor, "app.sh")[0].exit(0)
    reactor.advance(0)
    assert len(procs(reactor, "app.sh")) == 2  # late already: starts right away (1 s floor aside)


def test_stop_cancels_timers_and_keeps_reports(env):
    reactor, push, monitor, _ = env
    monitor.startService()
    reactor.advance(0)
    for p in reactor.processes:
        p.exit(0)
    d = monitor.stopService()
    assert d.called
    assert monitor.timers == {}
    assert len(monitor.forwarder.spool) == 2  # unsent reports kept for the next run
    reactor.advance(1000)
    assert len(reactor.processes) == 2


def test_fatal_error_sends_monitoring_failure_alert(env, monkeypatch):
    reactor, push, monitor, fatal = env

    def broken(*a, **kw):
        raise RuntimeError("scheduler exploded")

    monkeypatch.setattr("overc.agent.schedule.next_start", broken)
    monitor.startService()
    reactor.advance(0)
    reactor.processes[0].exit(0)
    alerts = [b for p, b in push.calls if p == "alerts"]
    assert alerts == [{"server": {"name": "web1", "key": "s3cret"}, "alerts": [{"message": "Monitoring failure: RuntimeError: scheduler exploded"}]}]
    assert len(fatal) == 1 and fatal[0].check(RuntimeError)


def test_failure_message_format():
    from twisted.python.failure import Failure

    assert failure_message(Failure(OSError(28, "No space left on device"))) == "Monitoring failure: OSError: [Errno 28] No space left on device"
    assert failure_message(Failure(KeyError())) == "Monitoring failure: KeyError"


def test_a_scheduled_service_runs_at_its_times_and_says_so():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    reactor = FakeProcessReactor()
    start = datetime(2024, 3, 30, 12, 0, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()
    reactor.advance(start)
    push = FakePush()
    config = parse_config("[service:backup]\nschedule = 30 2 * * *\ntz = Europe/Berlin\n"
                          "command = ./backup.sh\n", "/etc/overc/monitor.ini")
    client = OvercClient(StubTreq(push.resource()), reactor, Endpoint("http://overc.test/", "web1", "s3cret"))
    runner = PluginRunner(reactor, concurrency=1, env={}, resolve=fake_resolve)
    monitor = Monitor(config, client, reactor, runner, Forwarder(client, reactor, MemorySpool(), batch_window=0.25))
    monitor.startService()
    # Sunday 02:30 does not exist in Berlin (DST): cron runs it at 03:00 (+02:00), 14 h later
    reactor.advance(14 * 3600 - 1)
    assert procs(reactor, "backup.sh") == []
    reactor.advance(1)
    [run] = procs(reactor, "backup.sh")
    reactor.advance(90)
    run.out(b"backup done")
    run.exit(0)
    reactor.advance(0.25)
    [report] = push.reports
    assert (report["schedule"], report["tz"], report["duration"], report["period"]) == \
        ("30 2 * * *", "Europe/Berlin", 90.0, 86400)
    # the next run: Monday 02:30 (+02:00), 23.5 h after Sunday 03:00
    reactor.advance(23.5 * 3600 - 90 - 0.25 - 1)
    assert len(procs(reactor, "backup.sh")) == 1
    reactor.advance(1)
    assert len(procs(reactor, "backup.sh")) == 2
    monitor.stopService()
