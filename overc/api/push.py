"""The push API (SPEC 1, 9.3 and 11): ``/api/ping``, ``/api/set/service/status``,
``/api/set/service/start``, ``/api/set/alerts``, and ``/api/set/maintenance`` (a deploy script
announces itself with the server's key).

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
from overc.core.maintenance import PUSH, WindowRequest
from overc.core.maintenance_input import parse_push_maintenance
from overc.core.errors import DatabaseUnavailable
from overc.core.payload import (
    ServerIdentity,
    ValidationError,
    parse_alerts,
    parse_body,
    parse_server,
    parse_start,
    parse_status,
)
from overc.core.retry import PUSH_RETRY_AFTER
from overc.ingest.groupcommit import GroupCommit
from overc.ingest.serverkeys import InvalidKey, ServerKeys
from overc.storage.ingest_store import IngestItem, ServerGone
from overc.storage.maintenance_store import MaintenanceStore, ScopeNotFound
from overc.web.http import json_body, json_error

log = Logger()
RETRY_AFTER = str(PUSH_RETRY_AFTER).encode()  # the watchdog counts on it (overc.core.retry)


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
        maintenance: MaintenanceStore | None = None,
    ) -> None:
        self.maintenance = maintenance
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

    @app.route("/set/service/start", methods=["POST"])
    async def set_service_start(self, request: IRequest) -> bytes:
        """SPEC 9.3: the named services are running since now (or ``time``)."""
        body = parse_body(request.content.read())
        identity, starts = parse_start(body, self.clock.seconds())
        await self._store(request, identity, starts=starts)
        return self._answer(request, 200, {"ok": 1})

    @app.route("/set/alerts", methods=["POST"])
    async def set_alerts(self, request: IRequest) -> bytes:
        identity, alerts = parse_alerts(parse_body(request.content.read()))
        await self._store(request, identity, alerts=alerts)
        return self._answer(request, 200, {"ok": 1})

    @app.route("/set/maintenance", methods=["POST"])
    async def set_maintenance(self, request: IRequest) -> bytes:
        """A window over this server (or some of its services), or ``end: true`` to end the
        windows this server announced: ``{"ok": 1, "id": 17}`` / ``{"ok": 1, "ended": 1}``."""
        body = parse_body(request.content.read())
        identity = parse_server(body)
        now = self.clock.seconds()
        wanted = parse_push_maintenance(body, now)
        if not self.ready() or self.maintenance is None:
            raise NotReady("the database is not ready")
        await self._store(request, identity)  # a sign of life too (SPEC 10.3), as a ping
        ip = getattr(request.getClientAddress(), "host", "local")
        server_id = await self.keys.authenticate(identity, ip)
        if wanted.end:
            ended = await self.maintenance.end_push(server_id, now)
            return self._answer(request, 200, {"ok": 1, "ended": ended})
        try:
            window_id = await self.maintenance.create(WindowRequest(
                source=PUSH, start=wanted.start, end=wanted.until, server_id=server_id,
                services=wanted.services, reason=wanted.reason, created_by=identity.name,
            ), now)
        except ScopeNotFound:
            self.keys.forget(identity.name)  # the server was deleted meanwhile
            raise InvalidKey() from None
        log.info("{server} announced maintenance {id} until {until}: {reason}",
                 server=identity.name, id=window_id, until=wanted.until, reason=wanted.reason)
        return self._answer(request, 200, {"ok": 1, "id": window_id})

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
