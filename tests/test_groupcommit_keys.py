"""Group commit and server-key verification, with Deferreds and task.Clock (no database)."""
from __future__ import annotations

import pytest
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import Clock

from overc.ingest.groupcommit import GroupCommit
from overc.core.passwords import hash_secret
from overc.core.payload import ServerIdentity
from overc.ingest.serverkeys import InvalidKey, ServerKeys
from overc.core.errors import DatabaseUnavailable
from overc.storage.ingest_store import ServerRecord


class ManualCommit:
    """A commit function whose transactions finish when the test says so."""

    def __init__(self):
        self.calls: list[tuple[list, Deferred]] = []

    def __call__(self, items):
        done: Deferred = Deferred()
        self.calls.append((list(items), done))
        return done


def outcomes(deferreds):
    seen = []
    for d in deferreds:
        d.addCallbacks(lambda _: seen.append("ok"), lambda f: seen.append(f.value))
    return seen


def test_requests_arriving_during_a_transaction_share_the_next_one():
    commit = ManualCommit()
    group = GroupCommit(commit)
    first = group.submit("a")
    waiting = [group.submit(x) for x in "bcd"]
    assert [items for items, _ in commit.calls] == [["a"]]
    seen = outcomes([first, *waiting])
    assert seen == []  # nobody is answered before commit
    commit.calls[0][1].callback([None])
    assert seen == ["ok"]
    assert [items for items, _ in commit.calls] == [["a"], ["b", "c", "d"]]
    commit.calls[1][1].callback([None, None, None])
    assert seen == ["ok"] * 4 and group.batches == 2 and group.items == 4


def test_batch_size_is_bounded():
    commit = ManualCommit()
    group = GroupCommit(commit, max_batch=2)
    group.submit(0)
    for n in range(1, 6):
        group.submit(n)
    commit.calls[0][1].callback([None])
    commit.calls[1][1].callback([None, None])
    assert [items for items, _ in commit.calls] == [[0], [1, 2], [3, 4]]


def test_per_item_errors_reach_only_their_request():
    commit = ManualCommit()
    group = GroupCommit(commit)
    blocker = group.submit("x")
    a, b = group.submit("a"), group.submit("b")
    seen = outcomes([a, b])
    commit.calls[0][1].callback([None])
    gone = KeyError("gone")
    commit.calls[1][1].callback([None, gone])
    assert seen == ["ok", gone]
    assert blocker.called


def test_split_after_failure_isolates_the_bad_item():
    commit = ManualCommit()
    group = GroupCommit(commit)
    group.submit("first")
    items = [group.submit(x) for x in ("a", "bad", "c")]
    seen = outcomes(items)
    commit.calls[0][1].callback([None])
    commit.calls[1][1].errback(ValueError("constraint"))  # the batch of three fails
    # ... and is retried one at a time:
    commit.calls[2][1].callback([None])
    commit.calls[3][1].errback(ValueError("bad row"))
    commit.calls[4][1].callback([None])
    assert [items for items, _ in commit.calls][2:] == [["a"], ["bad"], ["c"]]
    assert seen[0] == "ok" and isinstance(seen[1], ValueError) and seen[2] == "ok"


def test_database_unavailable_fails_the_whole_batch_without_retry():
    commit = ManualCommit()
    group = GroupCommit(commit)
    group.submit("first")
    seen = outcomes([group.submit(x) for x in ("a", "b")])
    commit.calls[0][1].callback([None])
    down = DatabaseUnavailable("refused")
    commit.calls[1][1].errback(down)
    assert seen == [down, down] and len(commit.calls) == 2


class FakeStore:
    def __init__(self):
        self.servers: dict[str, ServerRecord] = {}
        self.lookups = 0

    async def get_server(self, name):
        self.lookups += 1
        return self.servers.get(name)

    async def register_server(self, name, key_hash, ip, now):
        if name in self.servers:
            return self.servers[name], False
        self.servers[name] = ServerRecord(len(self.servers) + 1, name, key_hash)
        return self.servers[name], True


def run(coroutine):
    result = []
    ensureDeferred(coroutine).addBoth(result.append)
    value = result[0]
    if hasattr(value, "raiseException"):
        value.raiseException()
    return value


def test_trust_on_first_use_then_cached_verification(monkeypatch):
    store, clock = FakeStore(), Clock()
    keys = ServerKeys(store, clock, ttl=60)
    web1 = ServerIdentity("web1", "s3cret")
    assert run(keys.authenticate(web1, "1.2.3.4")) == 1
    assert "s3cret" not in store.servers["web1"].key_hash
    assert run(keys.authenticate(web1, "1.2.3.4")) == 1
    assert store.lookups == 1  # the second call was served from the cache
    hashed = []
    import overc.ingest.serverkeys

    monkeypatch.setattr(overc.ingest.serverkeys, "verify_secret",
                        lambda *a: hashed.append(a) or True)
    clock.advance(61)
    assert run(keys.authenticate(web1, "1.2.3.4")) == 1
    assert store.lookups == 2 and hashed == []  # re-read the stored hash, did not re-hash
    with pytest.raises(InvalidKey):  # another key is still checked in full
        monkeypatch.setattr(overc.ingest.serverkeys, "verify_secret", lambda *a: False)
        run(keys.authenticate(ServerIdentity("web1", "other"), "1.2.3.4"))


def test_a_key_reset_elsewhere_is_seen_after_the_ttl():
    store, clock = FakeStore(), Clock()
    keys = ServerKeys(store, clock, ttl=60)
    assert run(keys.authenticate(ServerIdentity("web1", "old"), "x")) == 1
    store.servers["web1"] = ServerRecord(1, "web1", hash_secret("new", 1000))  # other process
    assert run(keys.authenticate(ServerIdentity("web1", "old"), "x")) == 1  # within the ttl
    clock.advance(61)
    with pytest.raises(InvalidKey):
        run(keys.authenticate(ServerIdentity("web1", "old"), "x"))
    assert run(keys.authenticate(ServerIdentity("web1", "new"), "x")) == 1


def test_wrong_key_is_refused_and_remembered():
    store, clock = FakeStore(), Clock()
    store.servers["web1"] = ServerRecord(7, "web1", hash_secret("right", 1000))
    keys = ServerKeys(store, clock)
    with pytest.raises(InvalidKey):
        run(keys.authenticate(ServerIdentity("web1", "wrong"), "x"))
    with pytest.raises(InvalidKey):
        run(keys.authenticate(ServerIdentity("web1", "wrong"), "x"))
    assert store.lookups == 1
    assert run(keys.authenticate(ServerIdentity("web1", "right"), "x")) == 7  # not poisoned


def test_closed_registration_refuses_unknown_names():
    store = FakeStore()
    keys = ServerKeys(store, Clock(), registration_open=False)
    with pytest.raises(InvalidKey):
        run(keys.authenticate(ServerIdentity("new", "k"), "x"))
    assert store.servers == {}


def test_forget_drops_the_cache_after_a_key_reset():
    store, clock = FakeStore(), Clock()
    keys = ServerKeys(store, clock)
    run(keys.authenticate(ServerIdentity("web1", "old"), "x"))
    store.servers["web1"] = ServerRecord(1, "web1", hash_secret("new", 1000))
    assert run(keys.authenticate(ServerIdentity("web1", "old"), "x")) == 1  # cached
    keys.forget("web1")
    with pytest.raises(InvalidKey):
        run(keys.authenticate(ServerIdentity("web1", "old"), "x"))


def test_with_a_clock_requests_of_one_reactor_turn_share_the_first_batch():
    commit, clock = ManualCommit(), Clock()
    group = GroupCommit(commit, clock)
    waiters = [group.submit(x) for x in "abc"]
    assert commit.calls == []  # nothing starts before the reactor turns
    clock.advance(0)
    assert [items for items, _ in commit.calls] == [["a", "b", "c"]]
    commit.calls[0][1].callback([None] * 3)
    assert all(w.called for w in waiters)
    group.submit("d")
    clock.advance(0)
    assert [items for items, _ in commit.calls][1] == ["d"]
    assert group.status()["batches"] == 1 and group.status()["reports_per_batch"] == 3.0


def test_each_batch_gathers_requests_for_its_window_even_after_a_busy_transaction():
    """``gather``: a batch starts that long after it was scheduled, when idle and after each
    transaction alike, and takes everything that arrived meanwhile."""
    commit, clock = ManualCommit(), Clock()
    group = GroupCommit(commit, clock, gather=0.005)
    first = [group.submit(x) for x in "ab"]
    clock.advance(0.004)
    assert commit.calls == []  # still gathering
    late = group.submit("c")
    clock.advance(0.001)
    assert [items for items, _ in commit.calls] == [["a", "b", "c"]]
    during = [group.submit(x) for x in "de"]  # queued while the transaction runs
    commit.calls[0][1].callback([None] * 3)
    assert all(w.called for w in [*first, late]) and not any(w.called for w in during)
    clock.advance(0.002)
    assert len(commit.calls) == 1  # the next batch gathers too, although d and e waited
    group.submit("f")
    clock.advance(0.003)
    assert [items for items, _ in commit.calls][1] == ["d", "e", "f"]


def test_with_a_share_the_gather_follows_the_transactions_duration_up_to_its_cap():
    """``gather_share``: a batch waits that share of the recent transactions' duration (a
    moving average), never more than ``gather``: short on a fast disk, the cap on a slow one."""
    commit, clock = ManualCommit(), Clock()
    group = GroupCommit(commit, clock, gather=0.005, gather_share=0.25)
    assert group.duration == 0.005  # before any transaction: as if it took the cap

    def one_batch(took: float) -> float:
        """Run a batch that takes ``took`` seconds; return how long the next one gathers."""
        group.submit("x")
        clock.advance(1)  # whatever the gather, the batch has started
        clock.advance(took)
        commit.calls[-1][1].callback([None])
        started = len(commit.calls)
        group.submit("y")
        waited = 0.0
        while len(commit.calls) == started:
            clock.advance(0.0001)
            waited += 0.0001
        clock.advance(took)
        commit.calls[-1][1].callback([None])
        clock.advance(0)
        return waited

    for _ in range(40):
        waited = one_batch(0.002)
    assert group.duration == pytest.approx(0.002, abs=1e-4)
    assert waited == pytest.approx(0.0005, abs=2e-4)  # a quarter of 2 ms
    for _ in range(40):
        waited = one_batch(0.1)
    assert waited == pytest.approx(0.005, abs=2e-4)  # a quarter of 100 ms is over the cap
