"""The push API's Klein routes through StubTreq: no sockets, no database (the unit layer)."""
from __future__ import annotations

import json

import pytest
import pytest_twisted
from treq.testing import StubTreq
from twisted.internet.task import Clock

from overc.api.push import PushAPI
from overc.ingest.groupcommit import GroupCommit
from overc.core.counters import Counters
from overc.ingest.serverkeys import InvalidKey
from overc.core.errors import DatabaseUnavailable
from twisted.web.resource import Resource

from overc.web.root import Root


class Keys:
    """A key check; ``cached``: verdicts are fresh (the push fast path, no coroutine), else
    every request goes through ``authenticate`` (first contact, expired verdict)."""

    cached = True

    def __init__(self):
        self.forgotten = []
        self.authenticated = 0

    def known(self, identity):
        if not self.cached or identity.name in self.forgotten:
            return None
        if identity.key != "good":
            raise InvalidKey()
        return 1

    async def authenticate(self, identity, ip):
        self.authenticated += 1
        if identity.key != "good":
            raise InvalidKey()
        return 1

    def forget(self, name=None):
        self.forgotten.append(name)


@pytest.fixture(params=["cached", "uncached"], autouse=True)
def key_cache(request, monkeypatch):
    monkeypatch.setattr(Keys, "cached", request.param == "cached")


def client(commit, ready=lambda: True, keys=None):
    committed = []

    async def record(items):
        committed.extend(items)
        return await commit(items)

    counters = Counters()
    push = PushAPI(keys or Keys(), GroupCommit(record), Clock(), ready, counters)
    root = Root(push.resource(), Resource())  # /healthz is not under test here
    return StubTreq(root), committed, counters


async def ok(items):
    return [None] * len(items)


async def call(stub, path, body):
    response = await stub.post("http://x/api/" + path, data=json.dumps(body).encode())
    return response.code, json.loads(await response.content())


STATUS = {"server": {"name": "w", "key": "good"}, "period": 60,
          "services": [{"name": "a", "state": "OK"}]}


@pytest_twisted.ensureDeferred
async def test_accepted_report_reaches_the_committer():
    stub, committed, counters = client(ok)
    assert await call(stub, "set/service/status", STATUS) == (200, {"ok": 1})
    assert [r.service for r in committed[0].reports] == ["a"]
    assert counters.snapshot()["reports"] == {(): 1}


@pytest_twisted.ensureDeferred
async def test_unexpected_errors_are_a_generic_500():
    async def broken(items):
        raise RuntimeError("secret internals")

    stub, _, counters = client(broken)
    code, body = await call(stub, "set/service/status", STATUS)
    assert (code, body) == (500, {"error": "internal error"})
    assert counters.snapshot()["push_requests"] == {(("status", "500"),): 1}


@pytest_twisted.ensureDeferred
async def test_database_down_is_503_with_retry_after():
    async def down(items):
        raise DatabaseUnavailable("refused")

    stub, _, _ = client(down)
    response = await stub.post("http://x/api/ping", data=b'{"server":{"name":"w","key":"good"}}')
    assert response.code == 503
    assert response.headers.getRawHeaders(b"Retry-After") == [b"5"]
    stub, committed, _ = client(ok, ready=lambda: False)  # still migrating
    assert (await call(stub, "ping", {"server": {"name": "w", "key": "good"}}))[0] == 503
    assert committed == []


@pytest_twisted.ensureDeferred
async def test_wrong_key_is_403_before_anything_is_queued():
    stub, committed, _ = client(ok)
    bad = {**STATUS, "server": {"name": "w", "key": "bad"}}
    assert await call(stub, "set/service/status", bad) == (403, {"error": "Invalid server key"})
    assert committed == []


@pytest_twisted.ensureDeferred
async def test_every_push_path_answers_alike_through_the_fast_resource_and_klein():
    """``/api/p%69ng`` is ``/api/ping`` to Klein but not to the exact match: same answers."""
    stub, committed, _ = client(ok)
    ping = {"server": {"name": "w", "key": "good"}}
    start = {**ping, "services": [{"name": "a", "timeout": 60}]}
    alerts = {**ping, "alerts": [{"message": "m"}]}
    for fast, routed, body, answer in [
        ("ping", "p%69ng", ping, {"pong": 1}),
        ("set/service/status", "set/service/st%61tus", STATUS, {"ok": 1}),
        ("set/service/start", "set/service/st%61rt", start, {"ok": 1}),
        ("set/alerts", "set/%61lerts", alerts, {"ok": 1}),
    ]:
        assert await call(stub, fast, body) == (200, answer)
        assert await call(stub, routed, body) == (200, answer)
        bad = {**body, "server": {"name": "w"}}
        for path in (fast, routed):
            assert await call(stub, path, bad) == (
                400, {"error": "server.key is required", "field": "server.key"})
    assert len(committed) == 8
    assert [bool(item.starts) for item in committed] == [0, 0, 0, 0, 1, 1, 0, 0]


@pytest_twisted.ensureDeferred
async def test_wrong_method_and_unknown_push_paths_still_go_to_klein():
    stub, _, _ = client(ok)
    response = await stub.get("http://x/api/ping")
    assert response.code == 405
    assert response.headers.getRawHeaders(b"Allow") == [b"POST"]
    assert json.loads(await response.content()) == {"error": "Method not allowed (use POST)"}
    assert await call(stub, "set/nothing", {}) == (404, {"error": "Not found"})
    assert await call(stub, "ping/", {}) == (404, {"error": "Not found"})


@pytest_twisted.ensureDeferred
async def test_a_server_deleted_under_a_fresh_verdict_is_checked_again_once():
    from overc.storage.ingest_store import ServerGone

    gone = []

    async def deleted_once(items):
        if not gone:
            gone.append(1)
            return [ServerGone()] * len(items)
        return [None] * len(items)

    keys = Keys()
    stub, committed, _ = client(deleted_once, keys=keys)
    assert await call(stub, "set/service/status", STATUS) == (200, {"ok": 1})
    assert keys.forgotten == ["w"] and len(committed) == 2

    async def always_gone(items):
        return [ServerGone()] * len(items)

    keys = Keys()
    stub, committed, _ = client(always_gone, keys=keys)
    assert await call(stub, "set/service/status", STATUS) == (403, {"error": "Invalid server key"})
    assert len(committed) == 2  # the first try and one more after checking the key again


def test_a_client_that_left_before_the_commit_gets_nothing_and_breaks_nothing():
    """A real twisted.web Request on a channel: the answer of a push whose connection was lost
    while its batch was committing is dropped (the fast path writes no answer to nobody)."""
    from twisted.internet.defer import Deferred
    from twisted.internet.testing import StringTransport
    from twisted.python.failure import Failure
    from twisted.internet.error import ConnectionLost

    from overc.web.site import make_site

    pending: list[Deferred] = []

    async def slow(items):
        waiting: Deferred = Deferred()
        pending.append(waiting)
        await waiting
        return [None] * len(items)

    counters = Counters()
    push = PushAPI(Keys(), GroupCommit(slow), Clock(), lambda: True, counters)
    site = make_site(Root(push.resource(), Resource()))
    body = json.dumps(STATUS).encode()
    request = (b"POST /api/set/service/status HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
               % len(body) + body)

    channel = site.buildProtocol(None)
    transport = StringTransport()
    channel.makeConnection(transport)
    channel.dataReceived(request)
    assert len(pending) == 1 and transport.value() == b""
    channel.connectionLost(Failure(ConnectionLost()))
    import gc

    from twisted.logger import globalLogPublisher

    failures: list = []

    def observe(event):
        if "log_failure" in event:
            failures.append(event["log_failure"])

    globalLogPublisher.addObserver(observe)
    try:
        pending[0].callback(None)  # committed after the client left: nothing to write, no error
        gc.collect()  # an unhandled error in a Deferred is logged when it is collected
    finally:
        globalLogPublisher.removeObserver(observe)
    assert transport.value() == b"" and failures == []

    channel = site.buildProtocol(None)  # and a client that stays gets its answer, with a length
    transport = StringTransport()
    channel.makeConnection(transport)
    channel.dataReceived(request)
    pending[1].callback(None)
    answer = transport.value()
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b'\r\n\r\n{"ok":1}')
    assert b"Content-Length: 8\r\n" in answer and b"chunked" not in answer
    channel.connectionLost(Failure(ConnectionLost()))
