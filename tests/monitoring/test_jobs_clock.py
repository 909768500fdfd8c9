"""Timers, the watchdog loop, the dispatcher and the command channel on a task.Clock with fake
stores and a fake process reactor: no real time, no database, no processes."""
from __future__ import annotations

from pathlib import Path

from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from overc.core.alerts import Alert
from overc.core.counters import Counters
from overc.core.durations import Grace
from overc.core.errors import DatabaseUnavailable
from overc.monitoring.watchdog import Watchdog
from overc.notify.base import DeliveryError
from overc.notify.channel_config import parse_channel
from overc.notify.command import CommandChannel
from overc.notify.dispatcher import Dispatcher
from overc.runtime.repeating import RepeatingJob
from overc.storage.delivery_store import Claimed
from overc.storage.dispatch_store import DispatchResult
from overc.storage.watchdog_store import TickResult

from helpers import FakeProcessReactor


def test_a_failing_run_is_logged_and_the_loop_goes_on():
    clock = Clock()
    calls = []

    async def job():
        calls.append(clock.seconds())
        if len(calls) in (2, 3):
            raise (RuntimeError("boom") if len(calls) == 2 else DatabaseUnavailable("gone"))

    timer = RepeatingJob("t", job, clock, 1.0)
    timer.startService()
    clock.pump([1.0] * 4)
    assert calls == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert timer.failures == 2 and timer.last_error is None and timer.last_ok == 4.0
    timer.stopService()
    clock.advance(5)
    assert len(calls) == 5


def test_runs_wait_for_readiness_and_never_overlap():
    clock = Clock()
    gate: list[Deferred] = []
    ready = [False]

    async def job():
        d = Deferred()
        gate.append(d)
        await d

    timer = RepeatingJob("t", job, clock, 1.0, ready=lambda: ready[0])
    timer.startService()
    clock.advance(1)
    assert gate == []  # not ready: skipped quietly
    ready[0] = True
    clock.advance(1)
    clock.advance(1)
    timer.kick()
    clock.advance(0)
    assert len(gate) == 1  # the running one is not started twice
    gate[0].callback(None)
    clock.advance(1)
    assert len(gate) == 2


class FakeTickStore:
    def __init__(self, results):
        self.results = list(results)
        self.calls = []
        self.turned_away = []

    async def watchdog_tick(self, now, *, interval, grace, limit, turned_away=False):
        self.calls.append((now, limit))
        self.turned_away.append(turned_away() if callable(turned_away) else turned_away)
        return self.results.pop(0) if self.results else TickResult()


def test_watchdog_drains_a_storm_and_reports_health():
    clock = Clock()
    clock.advance(100)
    store = FakeTickStore([TickResult([1, 2]), TickResult([3]), TickResult()])
    seen = []
    metrics = Counters()
    watchdog = Watchdog(store, clock, interval=1.0, grace=Grace(), batch=2,
                        on_expired=seen.append, counters=metrics)
    watchdog.startService()
    assert len(store.calls) == 2  # full batch: went on at once
    assert watchdog.expired_total == 3 and len(seen) == 2
    assert metrics.snapshot()["alerts"][()] == 3
    assert watchdog.status()["ok"] and watchdog.status()["last_tick"] == 100
    store.results = []

    async def down(*a, **k):
        raise DatabaseUnavailable("no route")

    store.watchdog_tick = down
    clock.pump([1.0] * 6)
    status = watchdog.status()
    assert not status["ok"] and "database unavailable" in status["last_error"]
    watchdog.stopService()


def test_watchdog_counts_a_failed_tick_or_a_503_as_a_gap_however_short():
    """Issue 9: agents that got a 503 back off (Retry-After, up to 60 s): the next tick after
    this process lost its database, even for a second, asks the store for the fresh window."""
    clock = Clock()
    clock.advance(100)
    store = FakeTickStore([])
    metrics = Counters()
    watchdog = Watchdog(store, clock, interval=1.0, grace=Grace(), counters=metrics)
    watchdog.startService()
    clock.pump([1.0] * 2)
    metrics.inc("push_requests", status="200")
    clock.advance(1.0)
    metrics.inc("push_requests", status="503")  # a push turned away
    clock.advance(1.0)
    clock.advance(1.0)
    real = store.watchdog_tick

    async def down(*a, **k):
        raise DatabaseUnavailable("no route")

    store.watchdog_tick = down
    clock.advance(1.0)  # this tick fails
    store.watchdog_tick = real
    clock.advance(1.0)
    clock.advance(1.0)
    assert store.turned_away == [False, False, False, False, True, False, True, False]
    watchdog.stopService()


def test_a_tick_that_retries_through_a_short_outage_sees_the_pushes_refused_meanwhile():
    """The store asks at the attempt that runs (inside the transaction): a tick that began
    before the database went away and succeeded after it came back still counts the gap."""
    clock = Clock()
    metrics = Counters()
    gate: Deferred = Deferred()
    flags = []

    class SlowStore:
        async def watchdog_tick(self, now, *, interval, grace, limit, turned_away=False):
            await gate  # retrying through the outage
            flags.append(turned_away())
            return TickResult()

    watchdog = Watchdog(SlowStore(), clock, interval=1.0, grace=Grace(), counters=metrics)
    watchdog.startService()
    metrics.inc("push_requests", status="503")  # a push turned away meanwhile
    gate.callback(None)
    assert flags == [True]
    watchdog.stopService()


def alert(i=1, kind="state"):
    return Alert(id=i, time=0.0, kind=kind, severity="FAIL", server_id=1, server_name="web1",
                 service_id=10, service_name="app", message="m", state="FAIL", info="x")


class FakeDispatchStore:
    def __init__(self, claims):
        self.claims = list(claims)
        self.finished = []

    async def dispatch(self, now, routes, limit):
        return DispatchResult()

    async def claim(self, now, owner, leases, limit):
        out, self.claims = self.claims[:limit], self.claims[limit:]
        return out

    async def finish(self, claimed, owner, now, *, error, retry_at, internal_message=None):
        self.finished.append((claimed.id, error, retry_at, internal_message))
        return True


class GatedChannel:
    def __init__(self, spec):
        self.spec = spec
        self.pending: list[Deferred] = []

    def send(self, alerts, kind, notification_id=None):
        d = Deferred()
        self.pending.append(d)
        return d


def claimed(i, attempts=1, kind="state"):
    return Claimed(i, "ops", "alert", 1, attempts, i, [alert(i, kind)])


def test_dispatcher_bounds_parallel_deliveries_and_schedules_retries(tmp_path):
    clock = Clock()
    spec = parse_channel("ops", {"command": "true", "retries": "2"}, source="s",
                         base_dir=tmp_path)
    channel = GatedChannel(spec)
    store = FakeDispatchStore([claimed(i) for i in range(1, 6)] + [claimed(6, attempts=3),
                                                                  claimed(7, 3, "internal")])
    metrics = Counters()
    dispatcher = Dispatcher(store, store, clock, [channel], max_in_flight=3, owner="me",
                            counters=metrics)
    dispatcher.startService()
    assert len(channel.pending) == 3 and dispatcher.peak_in_flight == 3
    channel.pending[0].callback(None)
    channel.pending[1].errback(DeliveryError("exit code 1"))
    clock.advance(0)  # a finished delivery frees a slot at once
    assert len(channel.pending) == 5
    for d in channel.pending[2:]:
        d.callback(None)
    clock.advance(0)
    channel.pending[5].errback(DeliveryError("HTTP 500"))
    channel.pending[6].errback(DeliveryError("HTTP 500"))
    finished = {f[0]: f[1:] for f in store.finished}
    assert finished[1] == (None, None, None)
    assert finished[2] == ("exit code 1", 10.0, None)  # first retry after 10 s
    assert finished[6][0:2] == ("HTTP 500", None)  # 1 + 2 retries used: failed for good
    assert finished[6][2].startswith('Channel "ops" failed for good after 3 attempts: HTTP 500')
    assert finished[7] == ("HTTP 500", None, None)  # no internal alert about internal alerts
    assert dispatcher.counts == {"sent": 4, "retry": 1, "failed": 2, "lost": 0}
    series = metrics.snapshot()
    assert series["notifications"][(("channel", "ops"), ("result", "failed"))] == 2
    assert series["alerts"][()] == 1  # the internal alert about channel ops
    assert dispatcher.peak_in_flight == 3
    dispatcher.stopService()


def _run(coro) -> Deferred:
    return Deferred.fromCoroutine(coro)


def test_command_channel_writes_text_sets_env_and_kills_at_timeout(tmp_path: Path):
    script = tmp_path / "alert.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    spec = parse_channel("log", {"command": "./alert.sh a", "timeout": "3"}, source="s",
                         base_dir=tmp_path)
    reactor = FakeProcessReactor()
    channel = CommandChannel(spec, reactor, public_url="http://m/")
    done = _run(channel.send([alert()], "alert"))
    process = reactor.processes[0]
    assert (process.executable, list(process.args), process.path) == (
        str(tmp_path / "alert.sh"), ["./alert.sh", "a"], str(tmp_path))
    env = process.env
    assert env["OVERC_SERVER"] == "web1" and env["OVERC_URL"] == "http://m/ui/service/10"
    assert process.written == b"web1 app: [service:state/FAIL] m\nCurrent: FAIL: x\n"
    assert process.stdin_closed
    reactor.advance(3)
    assert [name for _, name in process.signals] == ["TERM"]
    reactor.advance(2)
    assert [name for _, name in process.signals] == ["TERM", "KILL"]
    process.protocol.processExited(Failure(ProcessTerminated(signal=9)))
    process.protocol.processEnded(Failure(ProcessTerminated(signal=9)))
    failures = []
    done.addErrback(failures.append)
    assert failures and failures[0].check(DeliveryError)
    assert "timed out after 3 s" in str(failures[0].value)


def test_command_channel_exit_codes(tmp_path: Path):
    spec = parse_channel("log", {"command": "true"}, source="s", base_dir=tmp_path)
    reactor = FakeProcessReactor()
    channel = CommandChannel(spec, reactor)
    ok = _run(channel.send([alert()], "alert"))
    reactor.processes[-1].protocol.processExited(Failure(ProcessDone(0)))
    reactor.processes[-1].protocol.processEnded(Failure(ProcessDone(0)))
    assert ok.called and ok.result is None
    bad = _run(channel.send([alert()], "alert"))
    proto = reactor.processes[-1].protocol
    proto.processExited(Failure(ProcessTerminated(exitCode=3)))
    assert not bad.called  # what it wrote before exiting may still be in the pipe
    proto.childDataReceived(2, b"disk full\n")
    proto.processEnded(Failure(ProcessTerminated(exitCode=3)))
    errors = []
    bad.addErrback(errors.append)
    assert str(errors[0].value) == "exit code 3: disk full"
    assert reactor.getDelayedCalls() == []  # the timeout and the drain timers were cancelled


def test_command_channel_does_not_wait_for_a_grandchild_holding_the_pipes(tmp_path: Path):
    """The program exited but something it started keeps stdout open: the output read within
    DRAIN seconds is the error, and the delivery ends then."""
    from overc.notify.command import DRAIN

    spec = parse_channel("log", {"command": "true"}, source="s", base_dir=tmp_path)
    reactor = FakeProcessReactor()
    bad = _run(CommandChannel(spec, reactor).send([alert()], "alert"))
    proto = reactor.processes[-1].protocol
    proto.processExited(Failure(ProcessTerminated(exitCode=1)))
    proto.childDataReceived(1, b"queued, then failed")
    reactor.advance(DRAIN)
    errors = []
    bad.addErrback(errors.append)
    assert str(errors[0].value) == "exit code 1: queued, then failed"
    assert reactor.getDelayedCalls() == []


def test_command_channel_missing_program_fails_without_spawning(tmp_path: Path):
    (tmp_path / "nope.sh").write_text("#!/bin/sh\n")
    (tmp_path / "nope.sh").chmod(0o755)
    spec = parse_channel("log", {"command": "./nope.sh"}, source="s", base_dir=tmp_path)
    (tmp_path / "nope.sh").unlink()  # gone after the start
    reactor = FakeProcessReactor()
    failed = []
    _run(CommandChannel(spec, reactor).send([alert()], "alert")).addErrback(failed.append)
    assert "command not found: ./nope.sh" in str(failed[0].value) and reactor.processes == []


class FakePurgeStore:
    def __init__(self, rows: dict[str, int]):
        self.rows = dict(rows)
        self.calls = []

    async def purge(self, cutoff, table, batch):
        self.calls.append((cutoff, table))
        n = min(batch, self.rows.get(table, 0))
        self.rows[table] = self.rows.get(table, 0) - n
        return n


def test_retention_purges_in_small_batches_with_pauses():
    from overc.monitoring.retention import Retention

    clock = Clock()
    clock.advance(100 * 86400)
    store = FakePurgeStore({"states": 2500, "alerts": 10})
    retention = Retention(store, clock, retention=90 * 86400, batch=1000, pause=0.5)
    done = Deferred.fromCoroutine(retention.purge())
    assert [t for _, t in store.calls] == ["perfdata", "states"]  # paused after a full batch
    clock.advance(0.5)
    clock.advance(0.5)
    assert done.called and store.rows["states"] == 0 and store.rows["alerts"] == 0
    assert done.result == {"perfdata": 0, "states": 2500, "notifications": 0, "alerts": 10,
                           "maintenance": 0}
    assert {cutoff for cutoff, _ in store.calls} == {10 * 86400}


def test_webhook_channel_through_stubtreq():
    """The injected HTTP client: treq's StubTreq against an in-memory resource, no sockets."""
    import json

    from treq.testing import StubTreq
    from twisted.web.resource import Resource

    from overc.notify.webhook import WebhookChannel

    got = []

    class Hook(Resource):
        isLeaf = True

        def render_POST(self, request):
            got.append((request.getHeader("x-overc-notification"), json.loads(request.content.read())))
            request.setResponseCode(503)
            return b"busy"

    spec = parse_channel("hook", {"url": "https://hooks.example.com/x"}, source="s",
                         base_dir=Path("."))
    channel = WebhookChannel(spec, StubTreq(Hook()), Clock())
    failed = []
    Deferred.fromCoroutine(channel.send([alert()], "alert", 7)).addErrback(failed.append)
    assert got[0][0] == "7" and got[0][1]["alerts"][0]["message"] == "m"
    assert str(failed[0].value) == "HTTP 503: busy"
