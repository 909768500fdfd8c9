"""The push API (SPEC 1, 9.3 and 11): ``/api/ping``, ``/api/set/service/status``,
``/api/set/service/start``, ``/api/set/alerts``, and ``/api/set/maintenance`` (a deploy script
announces itself with the server's key).

Routes only parse, authenticate and hand the work to the group committer; a 200 is written
after the transaction holding the request's reports has committed.

The four paths an agent pushes to thousands of times a second are served by
:class:`PushResource`, a plain twisted.web resource that matches ``request.path`` exactly and
answers without Klein or werkzeug (their routing was ~17 % of a push's CPU, measured with
py-spy), and, in the steady state (the server's key verified within the last minute), without
a coroutine: parse, look the key up, submit to the group committer, answer when it fires.
Anything else (``/api/set/maintenance``, another method, a path spelled differently, a 404)
goes to the Klein app below, which answers exactly as before; both share one error mapping.
"""
from __future__ import annotations

from typing import Any, Callable

from klein import Klein
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET
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


#: What a push path's parser returns: who pushes, the IngestItem fields, the 200 body.
Parsed = tuple[ServerIdentity, dict[str, Any], dict[str, int]]
_OK = {"ok": 1}
_PONG = {"pong": 1}


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
        """The push paths' fast resource in front of the Klein app (see the module doc)."""
        return PushResource(self, self.app.resource())

    # One parser per push path: body -> (identity, what the IngestItem carries, the 200 body).

    def parse_ping(self, body: dict[str, Any]) -> Parsed:
        return parse_server(body), {}, _PONG

    def parse_status(self, body: dict[str, Any]) -> Parsed:
        identity, reports = parse_status(body, self.clock.seconds())
        return identity, {"reports": reports}, _OK

    def parse_start(self, body: dict[str, Any]) -> Parsed:
        """SPEC 9.3: the named services are running since now (or ``time``)."""
        identity, starts = parse_start(body, self.clock.seconds())
        return identity, {"starts": starts}, _OK

    def parse_alerts(self, body: dict[str, Any]) -> Parsed:
        identity, alerts = parse_alerts(body)
        return identity, {"alerts": alerts}, _OK

    async def _store(self, request: IRequest, identity: ServerIdentity, attempts: int = 2,
                     **work: Any) -> None:
        if not self.ready():
            raise NotReady("the database is not ready")
        ip = getattr(request.getClientAddress(), "host", "local")  # "local": a unix socket
        for attempt in range(attempts):
            server_id = await self.keys.authenticate(identity, ip)
            item = IngestItem(server_id=server_id, ip=ip, now=self.clock.seconds(),
                              server_name=identity.name, **work)
            try:
                await self.writer.submit(item)
                return
            except ServerGone:
                self.keys.forget(identity.name)  # deleted meanwhile: check (or register) again
        raise InvalidKey()

    def push(self, request: IRequest, parse: Callable[[dict[str, Any]], Parsed]) -> Any:
        """Serve one push: a 4xx/5xx at once (bytes), else ``NOT_DONE_YET`` and the answer
        once the group commit holding the request has committed (or failed)."""
        try:
            identity, work, answer = parse(parse_body(request.content.read()))
            if not self.ready():
                raise NotReady("the database is not ready")
            server_id = self.keys.known(identity)  # None: authenticate must read or hash
        except Exception as error:
            return self._error(request, Failure(error))
        done: Deferred[None]
        if server_id is None:
            done = ensureDeferred(self._store(request, identity, **work))
        else:
            ip = getattr(request.getClientAddress(), "host", "local")
            done = self.writer.submit(IngestItem(
                server_id, ip, self.clock.seconds(), server_name=identity.name, **work))
            done.addErrback(self._server_gone, request, identity, work)
        done.addCallbacks(self._committed, self._failed,
                          callbackArgs=(request, answer, work), errbackArgs=(request,))
        return NOT_DONE_YET

    def _server_gone(self, failure: Failure, request: IRequest, identity: ServerIdentity,
                     work: dict[str, Any]) -> Deferred[None]:
        failure.trap(ServerGone)
        self.keys.forget(identity.name)  # deleted meanwhile: check (or register) once more
        return ensureDeferred(self._store(request, identity, attempts=1, **work))

    def _committed(self, _: None, request: IRequest, answer: dict[str, int],
                   work: dict[str, Any]) -> None:
        reports = work.get("reports")
        if reports:
            self.counters.inc("reports", len(reports))
        _finish(request, self._answer(request, 200, answer))

    def _failed(self, failure: Failure, request: IRequest) -> None:
        _finish(request, self._error(request, failure))

    def _error(self, request: IRequest, failure: Failure) -> bytes:
        """The one mapping of errors to answers, for the fast resource and the Klein app."""
        error = failure.value
        if isinstance(error, ValidationError):
            return self._answer(request, 400, {"error": error.message}, error.field)
        if isinstance(error, InvalidKey):
            return self._answer(request, 403, {"error": "Invalid server key"})
        if isinstance(error, DatabaseUnavailable):
            log.warn("Database unavailable: {error}", error=error)
            request.setHeader(b"Retry-After", RETRY_AFTER)
            return self._answer(request, 503,
                                {"error": "The database is unavailable; retry later"})
        log.failure("Unexpected error in {path}", failure, path=request.path)
        return self._answer(request, 500, {"error": "internal error"})

    # The Klein routes of the push paths: reached only when PushResource does not match
    # exactly (e.g. a percent-encoded path); same parsers, same answers.

    async def _routed(self, request: IRequest, parse: Callable[[dict[str, Any]], Parsed]
                      ) -> bytes:
        identity, work, answer = parse(parse_body(request.content.read()))
        await self._store(request, identity, **work)
        reports = work.get("reports")
        if reports:
            self.counters.inc("reports", len(reports))
        return self._answer(request, 200, answer)

    @app.route("/ping", methods=["POST"])
    async def ping(self, request: IRequest) -> bytes:
        return await self._routed(request, self.parse_ping)

    @app.route("/set/service/status", methods=["POST"])
    async def set_service_status(self, request: IRequest) -> bytes:
        return await self._routed(request, self.parse_status)

    @app.route("/set/service/start", methods=["POST"])
    async def set_service_start(self, request: IRequest) -> bytes:
        return await self._routed(request, self.parse_start)

    @app.route("/set/alerts", methods=["POST"])
    async def set_alerts(self, request: IRequest) -> bytes:
        return await self._routed(request, self.parse_alerts)

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

    @app.handle_errors(ValidationError, InvalidKey, DatabaseUnavailable)
    def _expected(self, request: IRequest, failure: Failure) -> bytes:
        return self._error(request, failure)

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
        return self._error(request, failure)


def _finish(request: IRequest, body: bytes) -> None:
    """Write a whole answer, unless the client has gone meanwhile (the work is committed
    all the same: a retry of the same report is a second state, as SPEC 1 says)."""
    if getattr(request, "finished", False) or getattr(request, "channel", None) is None:
        return  # the connection was lost: Request.connectionLost dropped its channel
    request.setHeader(b"Content-Length", b"%d" % len(body))
    request.write(body)
    request.finish()


class PushResource(Resource):
    """The push paths matched on ``request.path`` before any Klein routing (module doc)."""

    isLeaf = True

    def __init__(self, api: PushAPI, fallback: IResource) -> None:
        super().__init__()
        self.fallback = fallback
        self.api = api
        self.routes: dict[bytes, Callable[[dict[str, Any]], Parsed]] = {
            b"/api/ping": api.parse_ping,
            b"/api/set/service/status": api.parse_status,
            b"/api/set/service/start": api.parse_start,
            b"/api/set/alerts": api.parse_alerts,
        }

    def render(self, request: IRequest) -> Any:
        parse = self.routes.get(request.path) if request.method == b"POST" else None
        if parse is None:
            return self.fallback.render(request)
        return self.api.push(request, parse)
