"""Fixtures for the UI tests: a migrated SQLite database filled by plain SQL, and the three web
resources mounted under a root like the real server's, reached through StubTreq."""
from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlencode

from treq.testing import StubTreq
from twisted.internet import reactor
from twisted.internet.task import Clock, deferLater
from twisted.web.resource import Resource

from overc.api.read import ReadAPI
from overc.config import ServerConfig
from overc.core.counters import Counters
from overc.core.passwords import hash_secret, verify_secret
from overc.storage.actions import Actions
from overc.storage.queries import Queries
from overc.ui.pages import UI
from overc.web.auth import Auth, load_shared_sessions
from overc.web.control import Control
from overc.web.metrics import MetricsResource

PASSWORD = "correct horse"
USERS = {"admin": hash_secret(PASSWORD, iterations=1000)}


def _txn_fill(cursor, now: float) -> dict[str, int]:
    """Two servers, three services, history, perfdata and alerts (ids returned by name)."""
    ids: dict[str, int] = {}
    for name in ("web1", "db1"):
        cursor.execute("INSERT INTO servers (name, key_hash, ip, created, last_seen)"
                       " VALUES (?, ?, '10.0.0.1', ?, ?)",
                       (name, hash_secret("k", 1000), now - 86400, now - 5))
        ids[name] = cursor.lastrowid
    for server, name, state, stale in (("web1", "app", "OK", 0), ("web1", "disk", "WARN", 0),
                                      ("db1", "mysql", "FAIL", 1)):
        cursor.execute(
            "INSERT INTO services (server_id, name, state, info, period, last_time, deadline,"
            " stale, created) VALUES (?, ?, ?, ?, 60, ?, ?, ?, ?)",
            (ids[server], name, state, f"{name} says {state} <b>bold</b>", now - 5,
             now + 61 if not stale else now - 10, stale, now - 86400))
        ids[name] = cursor.lastrowid
    for i in range(200):
        t = now - 86000 + i * 400
        cursor.execute("INSERT INTO states (service_id, time, state, info) VALUES (?, ?, ?, ?)",
                       (ids["disk"], t, "OK" if i < 150 else "WARN", f"/var {40 + i // 5}%"))
        cursor.execute(
            "INSERT INTO perfdata (service_id, time, label, value, uom, warn, crit, min, max)"
            " VALUES (?, ?, '/var', ?, '%', '90', '95', 0, 100)", (ids["disk"], t, 40 + i / 5))
    for server, service, kind, severity, message in (
            ("web1", "disk", "state", "WARN", 'State changed: "OK" -> "WARN"'),
            ("db1", "mysql", "offline", "FAIL", "No report for 75 s (period 60 s)")):
        cursor.execute(
            "INSERT INTO alerts (server_id, service_id, time, kind, severity, message, state,"
            " info) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (ids[server], ids[service], now - 100, kind, severity, message, severity, ""))
    return ids


class Harness:
    """The UI, read API and /metrics over one database, with a Clock for the auth delays."""

    def __init__(self, db, users: dict[str, str] | None = None, required: bool = True) -> None:
        self.db = db
        self.clock = Clock()
        self.clock.advance(time.time())
        users = USERS if users is None else users
        self.forgotten = 0

        async def verify(password: str, hashed: str) -> bool:
            return verify_secret(password, hashed)

        async def hash_key(key: str) -> str:
            return hash_secret(key, 1000)

        def forget() -> None:
            self.forgotten += 1

        self.queries = Queries(db)
        self.auth = Auth(users, required, lambda: load_shared_sessions(db), self.clock, verify,
                         wall=self.clock.seconds)
        self.control = Control(Actions(db), self.clock, hash_key, forget)
        self.counters = Counters()
        self.ui = UI(self.queries, self.control, self.auth, self.clock)
        self.api = ReadAPI(self.queries, self.control, self.auth, self.clock)
        self.metrics = MetricsResource(self.queries, self.auth, self.clock, self.counters)
        root = Resource()
        root.putChild(b"ui", self.ui.app.resource())
        root.putChild(b"api", self.api.app.resource())
        root.putChild(b"metrics", self.metrics)
        self.root = root
        self.stub = StubTreq(root)

    async def request(self, method: str, url: str, **kwargs: Any):
        """A request through StubTreq; pumps it while the database answers in its thread."""
        kwargs.setdefault("allow_redirects", False)
        response = await self.pump(self.stub.request(method, "http://overc.test" + url,
                                                     **kwargs))
        body = await self.pump(self.stub.content(response))
        return response, body

    async def pump(self, d):
        """Wait for ``d``, flushing StubTreq's in-memory connection meanwhile."""
        done: list = []
        d.addBoth(lambda result: done.append(result) or result)
        for _ in range(4000):
            self.stub.flush()
            if done:
                break
            await deferLater(reactor, 0.002, lambda: None)
        return await d


def cookies_of(response) -> dict[str, str]:
    out = {}
    for header in response.headers.getRawHeaders(b"set-cookie", []):
        name, _, rest = header.decode().partition("=")
        out[name] = rest.split(";")[0]
    return out


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def cookie_header(cookies: dict[str, str]) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}


async def login_response(h: Harness, next_path: str = "/ui/"):
    """Log in as admin through the real login form (nonce cookie + CSRF); the 303 answer."""
    response, body = await h.request("GET", "/ui/login")
    nonce = cookies_of(response)["overc_nonce"]
    csrf = re.search(rb'name="csrf" value="([^"]+)"', body).group(1).decode()
    response, _ = await h.request(
        "POST", "/ui/login", headers={**FORM, "Cookie": f"overc_nonce={nonce}"},
        data=urlencode({"csrf": csrf, "name": "admin", "password": PASSWORD,
                        "next": next_path}).encode())
    assert response.code == 303
    return response


def config_with_users() -> ServerConfig:
    return ServerConfig(users=USERS, auth_required=True)
