"""Test doubles for the agent: a fake process reactor and a small Klein fake of the push API.

The push fake follows SPEC section 1 closely enough for the client (trust on first use, 403
on a wrong key, 400 with ``field``, scripted 5xx/429 answers); the end-to-end tests use the
real server once ``tests/realserver.py`` exists.
"""
from __future__ import annotations

import base64
import json
from typing import Any

from klein import Klein
from twisted.web.resource import Resource

from overc.agent.client import Endpoint, OvercClient

from helpers import FakeProcess, FakeProcessReactor  # noqa: F401 (the agent tests' names)


def fake_resolve(argv0: str, cwd, path_env) -> str:
    """Resolution that accepts anything: unit tests never touch the file system."""
    return argv0


class FakePush:
    """A Klein fake of the push API (SPEC 1) that records what it received.

    ``script`` is a list of ``(status, body_dict, headers)`` answers used, in order, before the
    normal behaviour resumes: the way tests make the server fail for a while.
    """

    app = Klein()

    def __init__(self, basic_auth: tuple[str, str] | None = None) -> None:
        self.keys: dict[str, str] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.script: list[tuple[int, dict[str, Any], dict[str, str]]] = []
        self.basic_auth = basic_auth

    def resource(self, prefix: bytes | None = None):
        res = self.app.resource()
        if prefix is None:
            return res
        root = Resource()
        root.putChild(prefix, res)
        return root

    @property
    def reports(self) -> list[dict[str, Any]]:
        return [s for path, body in self.calls if path == "status" for s in body["services"]]

    def status_posts(self) -> list[dict[str, Any]]:
        return [body for path, body in self.calls if path == "status"]

    def _answer(self, request, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        for k, v in (headers or {}).items():
            request.setHeader(k.encode(), v.encode())
        return json.dumps(body).encode()

    def _handle(self, request, path: str) -> bytes:
        if self.basic_auth is not None:
            expected = b"Basic " + base64.b64encode(":".join(self.basic_auth).encode())
            if request.getHeader(b"authorization") != expected:
                return self._answer(request, 401, {"error": "login required"})
        try:
            body = json.loads(request.content.read())
        except ValueError:
            return self._answer(request, 400, {"error": "body is not JSON"})
        if self.script:
            status, answer, headers = self.script.pop(0)
            if status == 200:
                self.calls.append((path, body))
            return self._answer(request, status, answer, headers)
        server = body.get("server") or {}
        name, key = server.get("name"), server.get("key")
        if not name or not key:
            return self._answer(request, 400, {"error": "server.name is required", "field": "server.name"})
        if self.keys.setdefault(name, key) != key:
            return self._answer(request, 403, {"error": "Invalid server key"})
        if path == "status":
            if "period" not in body:
                return self._answer(request, 400, {"error": "period is required", "field": "period"})
            for i, s in enumerate(body.get("services", [])):
                if s.get("state") == "BAD!":
                    return self._answer(request, 400, {"error": "bad report", "field": f"services[{i}].state"})
        self.calls.append((path, body))
        return self._answer(request, 200, {"pong": 1} if path == "ping" else {"ok": 1})

    @app.route("/api/ping", methods=["POST"])
    def ping(self, request):
        return self._handle(request, "ping")

    @app.route("/api/set/service/status", methods=["POST"])
    def status(self, request):
        return self._handle(request, "status")

    @app.route("/api/set/alerts", methods=["POST"])
    def alerts(self, request):
        return self._handle(request, "alerts")

    @app.route("/api/set/service/start", methods=["POST"])
    def start(self, request):
        return self._handle(request, "start")


class FakeClient:
    """An OvercClient stand-in for forwarder tests: answers are scripted per call."""

    def __init__(self) -> None:
        self.endpoint = Endpoint("http://fake/", "web1", "key")
        self.sent: list[tuple[list, bool]] = []
        self.alerts: list[list[dict]] = []
        self.script: list[Exception | None] = []
        self.pending = None
        self.hold = False

    async def set_service_status(self, reports, with_time=True):
        from twisted.internet import defer

        if self.hold:
            self.pending = defer.Deferred()
            await self.pending
        outcome = self.script.pop(0) if self.script else None
        if outcome is not None:
            raise outcome
        self.sent.append((list(reports), with_time))

    async def set_alerts(self, alerts):
        self.alerts.append(alerts)

    async def ping(self):
        return None


def stub_client(push: FakePush, clock, url: str = "http://overc.test/", name: str = "web1", key: str = "s3cret") -> OvercClient:
    from treq.testing import StubTreq

    return OvercClient(StubTreq(push.resource()), clock, Endpoint(url, name, key))


#: A child that prints what it inherited: its descriptors above 2, whether SIGUSR1 is back to
#: the default, what its stdin is, and whether stdin is empty. Both spawn paths are checked
#: with it.
CHILD = r"""
import os, signal, sys
fds = []
for fd in range(3, 1024):
    try:
        os.fstat(fd)
    except OSError:
        continue
    fds.append(fd)
print(fds, signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL, os.readlink("/proc/self/fd/0"), sys.stdin.read() == "")
"""
