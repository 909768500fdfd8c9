"""The push API (SPEC section 1): ``/api/ping``, ``/api/set/service/status``, ``/api/set/alerts``.

Routes only parse, authenticate and hand the work to the group committer; a 200 is written
after the transaction holding the request's reports has committed.
"""
from __future__ import annotations

from typing import Callable

from klein import Klein
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource
from werkzeug.exceptions import MethodNotAllowed, NotFound

from overc.core.counters import Counters
from overc.core.errors import DatabaseUnavailable
from overc.core.payload import (
    ServerIdentity,
    ValidationError,
    parse_alerts,
    parse_body,
    parse_server,
    parse_status,
)
from overc.ingest.groupcommit import GroupCommit
from overc.ingest.serverkeys import InvalidKey, ServerKeys
from overc.storage.ingest_store import IngestItem, ServerGone
from overc.web.http import json_body, json_error

log = Logger()
RETRY_AFTER = b"5"


class NotReady(DatabaseUnavailable):
    """The database has not been migrated yet (still starting, or unreachable at start)."""


class PushAPI:
    app = Klein()

    def __init__(
        self,
        keys: ServerKeys,
        writer: GroupCommit[IngestItem],
        clock: IReactorTime,
        ready: Callable[[], bool],
        counters: Counters,
    ) -> None:
        self.keys = keys
        self.writer = writer
        self.clock = clock
        self.ready = ready
        self.counters = counters

    def _answer(self, request: IRequest, status: int, body: dict, field: str | None = None
                ) -> bytes:
        self.counters.inc("push_requests", status=str(status))
        if status == 200:
            return json_body(request, body)
        return json_error(request, status, body["error"], field)

    def resource(self) -> IResource:
        return self.app.resource()

    async def _store(self, request: IRequest, identity: ServerIdentity, **work) -> None:
        if not self.ready():
            raise NotReady("the database is not ready")
        ip = getattr(request.getClientAddress(), "host", "local")  # "local": a unix socket
        for attempt in range(2):
            server_id = await self.keys.authenticate(identity, ip)
            item = IngestItem(server_id=server_id, ip=ip, now=self.clock.seconds(),
                              server_name=identity.name, **work)
            try:
                await self.writer.submit(item)
                return
            except ServerGone:
                self.keys.forget(identity.name)  # deleted meanwhile: check (or register) again
        raise InvalidKey()

    @app.route("/ping", methods=["POST"])
    async def ping(self, request: IRequest) -> bytes:
        identity = parse_server(parse_body(request.content.read()))
        await self._store(request, identity)
        return self._answer(request, 200, {"pong": 1})

    @app.route("/set/service/status", methods=["POST"])
    async def set_service_status(self, request: IRequest) -> bytes:
        body = parse_body(request.content.read())
        identity, reports = parse_status(body, self.clock.seconds())
        await self._store(request, identity, reports=reports)
        self.counters.inc("reports", len(reports))
        return self._answer(request, 200, {"ok": 1})

    @app.route("/set/alerts", methods=["POST"])
    async def set_alerts(self, request: IRequest) -> bytes:
        identity, alerts = parse_alerts(parse_body(request.content.read()))
        await self._store(request, identity, alerts=alerts)
        return self._answer(request, 200, {"ok": 1})

    # Errors: every one is JSON; only the unexpected ones are logged with their traceback.

    @app.handle_errors(ValidationError)
    def _invalid(self, request: IRequest, failure: Failure) -> bytes:
        error = failure.value
        assert isinstance(error, ValidationError)  # handle_errors(ValidationError) says so
        return self._answer(request, 400, {"error": error.message}, error.field)

    @app.handle_errors(InvalidKey)
    def _forbidden(self, request: IRequest, failure: Failure) -> bytes:
        return self._answer(request, 403, {"error": "Invalid server key"})

    @app.handle_errors(DatabaseUnavailable)
    def _unavailable(self, request: IRequest, failure: Failure) -> bytes:
        log.warn("Database unavailable: {error}", error=failure.value)
        request.setHeader(b"Retry-After", RETRY_AFTER)
        return self._answer(request, 503, {"error": "The database is unavailable; retry later"})

    @app.handle_errors(NotFound)
    def _not_found(self, request: IRequest, failure: Failure) -> bytes:
        return self._answer(request, 404, {"error": "Not found"})

    @app.handle_errors(MethodNotAllowed)
    def _method(self, request: IRequest, failure: Failure) -> bytes:
        error = failure.value
        assert isinstance(error, MethodNotAllowed)  # handle_errors(MethodNotAllowed) says so
        allowed = ", ".join(error.valid_methods or ["POST"])
        request.setHeader(b"Allow", allowed.encode("ascii"))
        return self._answer(request, 405, {"error": f"Method not allowed (use {allowed})"})

    @app.handle_errors(Exception)
    def _internal(self, request: IRequest, failure: Failure) -> bytes:
        log.failure("Unexpected error in {path}", failure, path=request.path)
        return self._answer(request, 500, {"error": "internal error"})
