"""``GET /healthz``: 200 when the database answers and the timers run, 503 otherwise."""
from __future__ import annotations

import os
from typing import Callable

from twisted.internet.defer import ensureDeferred
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from overc.api.jsonio import json_body
from overc.storage.db import Database


class Health(Resource):
    isLeaf = True

    def __init__(self, db: Database, ready: Callable[[], bool],
                 checks: dict[str, Callable[[], dict]] | None = None) -> None:
        super().__init__()
        self.db = db
        self.ready = ready
        #: name -> callable returning {"ok": bool, ...}; the watchdog registers itself here.
        self.checks = checks if checks is not None else {}

    def render_GET(self, request: IRequest):
        ensureDeferred(self._answer(request))
        return NOT_DONE_YET

    async def _answer(self, request: IRequest) -> None:
        status: dict = {}
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
        for name, check in self.checks.items():
            try:
                result = check()
            except Exception as error:
                result = {"ok": False, "error": repr(error)}
            status[name] = result
            healthy = healthy and bool(result.get("ok"))
        status["ok"] = healthy
        status["pid"] = os.getpid()  # which process answered, with [overc] processes > 1
        body = json_body(request, status, 200 if healthy else 503)
        if not request.finished and not getattr(request, "_disconnected", False):
            request.write(body)
            request.finish()
