"""``GET /healthz``: 200 when the database answers and the timers run, 503 otherwise.

A load balancer polls it; each process answers for itself (its ``pid`` is in the answer), and
with MySQL names the database host it uses now (``database.host``: a URL may list several).
"""
from __future__ import annotations

import os
from typing import Any, Callable

from twisted.web.resource import Resource
from twisted.web.server import Request

from overc import __version__
from overc.storage.db import Database
from overc.web.http import answer_later, json_body

#: A named check: returns ``{"ok": bool, ...}`` (the watchdog and the ingest writer have one).
Check = Callable[[], dict[str, Any]]


class Health(Resource):
    isLeaf = True

    def __init__(self, db: Database, ready: Callable[[], bool],
                 checks: dict[str, Check] | None = None) -> None:
        super().__init__()
        self.db = db
        self.ready = ready
        #: name -> check; the composition root registers the watchdog and the writer here.
        self.checks = checks if checks is not None else {}

    def render_GET(self, request: Request) -> int:
        return answer_later(request, self._answer(request))

    async def _answer(self, request: Request) -> bytes:
        status: dict[str, Any] = {}
        healthy = True
        if not self.ready():
            status["database"] = {"ok": False, "error": "not ready (migrating or unreachable)"}
            healthy = False
        else:
            try:
                await self.db.ping()
                status["database"] = {"ok": True}
            except Exception as error:  # any failure means "do not send traffic here"
                status["database"] = {"ok": False, "error": type(error).__name__}
                healthy = False
        host = self.db.host_in_use()
        if host is not None:  # MySQL: which host of the URL this process uses now
            status["database"]["host"] = host
        for name, check in self.checks.items():
            try:
                result = check()
            except Exception as error:
                result = {"ok": False, "error": repr(error)}
            status[name] = result
            healthy = healthy and bool(result.get("ok"))
        status["ok"] = healthy
        status["version"] = __version__
        status["pid"] = os.getpid()  # which process answered, with [overc] processes > 1
        return json_body(request, status, 200 if healthy else 503)
