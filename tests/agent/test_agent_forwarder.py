"""Forwarder: batching window, order, spooling on failure, backoff, refusals (fake client + Clock)."""
import itertools

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from agent_fakes import FakeClient
from overc.agent import forwarder as fw
from overc.agent.client import Refused, Unreachable
from overc.agent.forwarder import Forwarder, backoff_delays, take_batch
from overc.agent.results import Report
from overc.agent.spool import FileSpool, MemorySpool


def rep(i, info="x"):
    return Report(f"s{i}", "OK", info, 60, 1000.0 + i)


def names(batch):
    return [r.name for r in batch]


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def client():
    return FakeClient()


def test_backoff_sequence():
    assert list(itertools.islice(backoff_delays(), 9)) == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_take_batch_limits():
    assert take_batch([rep(i) for i in range(10)], max_count=4) == 4
    big = [rep(i, "y" * 300_000) for i in range(3)]
    assert take_batch(big) == 1  # two would exceed the body budget
    assert take_batch([rep(0, "y" * 2_000_000)]) == 1  # one always goes


def test_results_close_together_share_one_post(clock, client):
    f = Forwarder(client, clock, MemorySpool(), batch_window=0.25)
    f.submit([rep(0), rep(1)])
    clock.advance(0.125)
    f.submit([rep(2)])
    assert client.sent == []
    clock.advance(0.125)
    assert len(client.sent) == 1
    batch, with_time = client.sent[0]
    assert names(batch) == ["s0", "s1", "s2"]
    assert with_time is False  # fresh reports take the server's clock
    f.submit([rep(3)])
    clock.advance(0.25)
    assert [names(b) for b, _ in client.sent] == [["s0", "s1", "s2"], ["s3"]]


def test_reports_arriving_during_a_post_get_their_own_window(clock, client):
    f = Forwarder(client, clock, MemorySpool(), batch_window=0.25)
    client.hold = True
    f.submit([rep(0)])
    clock.advance(0.25)  # POST of s0 in flight
    f.submit([rep(1)])
    clock.advance(0.1)
    f.submit([rep(2)])
    client.hold = False
    client.pending.callback(None)  # s0 delivered; s1 and s2 wait for a window, then go together
    assert [names(b) for b, _ in client.sent] == [["s0"]]
    clock.advance(0.125)
    f.submit([rep(3)])
    assert len(client.sent) == 1
    clock.advance(0.125)
    assert [names(b) for b, _ in client.sent] == [["s0"], ["s1", "s2", "s3"]]


def test_big_backlog_goes_in_several_posts(clock, client):
    f = Forwarder(client, clock, MemorySpool(), batch_window=0.25)
    f.submit([rep(i) for i in range(fw.MAX_BATCH + 10)])
    clock.advance(0.25)
    assert [len(b) for b, _ in client.sent] == [fw.MAX_BATCH, 10]


def test_unreachable_spools_and_retries_with_backoff_in_order(clock, client, tmp_path):
    spool = FileSpool(str(tmp_path / "spool"))
    f = Forwarder(client, clock, spool, batch_window=0.25)
    client.script = [Unreachable("down")] * 8
    f.submit([rep(0), rep(1)])
    clock.advance(0.25)  # first attempt fails
    assert names(spool.peek(10)) == ["s0", "s1"]
    attempts_at = [0.25]
    while client.script:
        before = len(client.script)
        clock.advance(0.125)
        if len(client.script) < before:
            attempts_at.append(clock.seconds())
    gaps = [round(b - a) for a, b in zip(attempts_at, attempts_at[1:])]
    assert gaps == [1, 2, 4, 8, 16, 32, 60]
    assert client.script == []
    f.submit([rep(2)])  # arrives while the spool is not empty: queued behind
    assert names(spool.peek(10)) == ["s0", "s1", "s2"]
    clock.advance(60)
    assert [(names(b), t) for b, t in client.sent] == [(["s0", "s1", "s2"], True)]
    assert len(spool) == 0
    # Back to normal: the next report is sent fresh after the batching window.
    f.submit([rep(3)])
    clock.advance(0.25)
    assert client.sent[-1] == ([rep(3)], False)


def test_backoff_resets_after_success(clock, client):
    f = Forwarder(client, clock, MemorySpool(), batch_window=0.25)
    client.script = [Unreachable("down"), Unreachable("down")]
    f.submit([rep(0)])
    for step in (0.25, 1, 2):
        clock.advance(step)
    assert len(client.sent) == 1
    client.script = [Unreachable("down")]
    f.submit([rep(1)])
    clock.advance(0.25)
    clock.advance(0.75)
    assert len(client.sent) == 1
    clock.advance(0.25)  # 1 s again, not 4 s
    assert len(client.sent) == 2


def test_retry_after_is_honoured(clock, client):
    f = Forwarder(client, clock, MemorySpool(), batch_window=0.25)
    client.script = [Unreachable("503", retry_after=20)]
    f.submit([rep(0)])
    clock.advance(0.25)  # first attempt: 503 with Retry-After: 20
    clock.advance(19.75)
    assert client.sent == []
    clock.advance(0.25)
    assert len(client.sent) == 1


def test_refused_batch_is_dropped_and_logged(clock, client, caplog_events):
    f = Forwarder(client, clock, MemorySpool(), batch_window=0.25)
    client.script = [Refused(403, "Invalid server key")]
    f.submit([rep(0), rep(1)])
    clock.advance(0.25)
    assert client.sent == [] and f.refused == 2 and len(f.memory) + len(f.spool) == 0
    assert any("Invalid server key" in e and "dropped" in e for e in caplog_events)
    f.submit([rep(2)])
    clock.advance(0.25)
    assert names(client.sent[0][0]) == ["s2"]


def test_refusal_naming_one_report_drops_only_it(clock, client):
    f = Forwarder(client, clock, MemorySpool(), batch_window=0.25)
    client.script = [Refused(400, "bad", "services[1].state")]
    f.submit([rep(0), rep(1), rep(2)])
    clock.advance(0.25)
    assert [names(b) for b, _ in client.sent] == [["s0", "s2"]]
    assert f.refused == 1


def test_refusal_naming_one_spooled_report(clock, client, tmp_path):
    spool = FileSpool(str(tmp_path / "spool"))
    spool.extend([rep(0), rep(1), rep(2)])
    f = Forwarder(client, clock, spool, batch_window=0.25)
    client.script = [Refused(400, "bad", "services[0].name")]
    f.submit([rep(3)])
    clock.advance(0)
    assert [(names(b), t) for b, t in client.sent] == [(["s1", "s2", "s3"], True)]
    assert len(spool) == 0


def test_stop_keeps_unsent_reports_in_the_spool(clock, client, tmp_path):
    path = str(tmp_path / "spool")
    f = Forwarder(client, clock, FileSpool(path), batch_window=0.25)
    f.submit([rep(0), rep(1)])
    d = Deferred.fromCoroutine(f.stop())
    assert d.called
    assert client.sent == []
    assert names(FileSpool(path).peek(5)) == ["s0", "s1"]


def test_stop_waits_for_the_post_in_flight(clock, client, tmp_path):
    path = str(tmp_path / "spool")
    f = Forwarder(client, clock, FileSpool(path), batch_window=0.25)
    client.hold = True
    f.submit([rep(0)])
    clock.advance(0.25)
    f.submit([rep(1)])
    d = Deferred.fromCoroutine(f.stop())
    assert not d.called
    client.pending.callback(None)  # the server answers: s0 delivered, not spooled again
    assert d.called
    assert names(client.sent[0][0]) == ["s0"]
    assert names(FileSpool(path).peek(5)) == ["s1"]


def test_stop_during_backoff_returns_at_once(clock, client, tmp_path):
    path = str(tmp_path / "spool")
    f = Forwarder(client, clock, FileSpool(path), batch_window=0.25)
    client.script = [Unreachable("down")]
    f.submit([rep(0)])
    clock.advance(0.25)
    d = Deferred.fromCoroutine(f.stop())
    assert d.called
    assert names(FileSpool(path).peek(5)) == ["s0"]


def test_a_bug_in_the_loop_is_fatal(clock, client):
    fatal = []
    f = Forwarder(client, clock, MemorySpool(), batch_window=0.25, on_fatal=fatal.append)
    client.script = [ZeroDivisionError("boom")]
    f.submit([rep(0)])
    clock.advance(0.25)
    assert len(fatal) == 1 and fatal[0].check(ZeroDivisionError)
