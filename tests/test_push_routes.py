"""The push API's Klein routes through StubTreq: no sockets, no database (the unit layer)."""
from __future__ import annotations

import json

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
    async def authenticate(self, identity, ip):
        if identity.key != "good":
            raise InvalidKey()
        return 1

    def forget(self, name=None):
        pass


def client(commit, ready=lambda: True):
    committed = []

    async def record(items):
        committed.extend(items)
        return await commit(items)

    counters = Counters()
    push = PushAPI(Keys(), GroupCommit(record), Clock(), ready, counters)
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
