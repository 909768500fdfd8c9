"""The read API for scripts (SPEC 6): JSON, paginated, same login as the UI.

Mounted at ``/api`` beside the push API. Callers authenticate with the session cookie or HTTP
Basic. State changes need a request a cross-site form cannot forge: a JSON body or ``DELETE``
(both force a CORS preflight we never grant), plus the ``X-CSRF-Token`` header when the
credential is the browser's session cookie.
"""
from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import urlencode

from klein import Klein
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import RequestRedirect

from overc.api.openapi import openapi_document
from overc.core.errors import DatabaseUnavailable
from overc.api.shapes import alert_json, server_json, service_json, state_json, window_json
from overc.storage.queries import Queries
from overc.storage.read_alerts import AlertFilter
from overc.web.auth import Auth, Identity
from overc.web.authenticated import Forbidden, LoginRequired, authenticated
from overc.web.control import Control, NotFound
from overc.web.http import (ID, BadRequest, arg, id_routes, int_arg, json_body, json_error,
                            relative_location, time_arg)
from overc.web.maintenance import MaintenanceControl
from overc.web.numbers import id_or_name

log = Logger()

MAX_LIMIT = 1000
#: A parsed JSON request body.
Body = Mapping[str, Any]
#: Reading needs a caller (cookie or HTTP Basic); changing needs a request no form can forge.
readable = authenticated(basic=True)
writable = authenticated(basic=True, csrf="json")


class ReadAPI:
    app = id_routes(Klein())

    def __init__(self, queries: Queries, control: Control, auth: Auth,
                 clock: IReactorTime, maintenance: MaintenanceControl | None = None) -> None:
        self.maintenance = maintenance
        self.queries = queries
        self.control = control
        self.auth = auth
        self.clock = clock

    # -- errors: every answer is JSON ----------------------------------------------------

    @app.handle_errors(LoginRequired)
    def _unauthorized(self, request: IRequest, failure: Failure) -> bytes:
        request.setHeader(b"www-authenticate", b'Basic realm="OverC", charset="UTF-8"')
        return json_error(request, 401, "log in: a session cookie or HTTP Basic credentials")

    @app.handle_errors(Forbidden)
    def _forbidden(self, request: IRequest, failure: Failure) -> bytes:
        return json_error(request, 403, str(failure.value))

    @app.handle_errors(BadRequest)
    def _bad(self, request: IRequest, failure: Failure) -> bytes:
        error = failure.value
        return json_error(request, 400, str(error),
                          error.field if isinstance(error, BadRequest) else None)

    @app.handle_errors(NotFound)
    def _missing(self, request: IRequest, failure: Failure) -> bytes:
        return json_error(request, 404, "no such server or service")

    @app.handle_errors(DatabaseUnavailable)
    def _unavailable(self, request: IRequest, failure: Failure) -> bytes:
        request.setHeader(b"retry-after", b"5")
        return json_error(request, 503, "the database is unreachable; retry later")

    @app.handle_errors(Exception)
    def _internal(self, request: IRequest, failure: Failure) -> bytes:
        error = failure.value
        if isinstance(error, RequestRedirect):
            request.setHeader(b"location", relative_location(error.new_url))
            return json_error(request, error.code, "moved")
        if isinstance(error, MethodNotAllowed):
            allowed = ", ".join(error.valid_methods or ())
            request.setHeader(b"allow", allowed.encode("ascii"))
            return json_error(request, 405, "method not allowed on this path")
        if isinstance(error, HTTPException):
            code = error.code or 500
            return json_error(request, code, "no such API path" if code == 404 else
                              error.description or "error")
        log.failure("Read API error on {uri}", failure, uri=request.uri)
        return json_error(request, 500, "internal error")

    # -- reading --------------------------------------------------------------------------

    def _next(self, request: IRequest, **params: Any) -> str:
        query = {k: v for k, v in ((k, arg(request, k)) for k in
                                   ("limit", "since", "until", "server", "service")) if v}
        query.update({k: str(v) for k, v in params.items()})
        path = request.path.decode("utf-8")
        return f"{path}?{urlencode(query)}"

    @app.route("/openapi.json", methods=["GET"])
    def openapi(self, request: IRequest) -> bytes:
        # Public: describes the API, reveals no data; tools fetch it before they log in.
        return json_body(request, openapi_document())

    @app.route("/servers", methods=["GET"])
    @readable
    async def servers(self, request: IRequest, identity: Identity) -> bytes:
        limit = int_arg(request, "limit", 100, 1, MAX_LIMIT)
        after = int_arg(request, "after", 0, 0)
        servers = await self.queries.servers(after=after, limit=limit, excerpt=0,
                                             now=self.clock.seconds())
        more = len(servers) == limit
        return json_body(request, {
            "items": [server_json(s) for s in servers],
            "next": self._next(request, after=servers[-1].id) if more else None,
        })

    @app.route(f"/servers/<{ID}:server_id>", methods=["GET"])
    @readable
    async def server(self, request: IRequest, identity: Identity, server_id: int) -> bytes:
        server = await self.queries.server(server_id, now=self.clock.seconds())
        if server is None:
            raise NotFound()
        return json_body(request, server_json(server))

    @app.route(f"/services/<{ID}:service_id>", methods=["GET"])
    @readable
    async def service(self, request: IRequest, identity: Identity, service_id: int) -> bytes:
        svc = await self.queries.service(service_id, now=self.clock.seconds())
        if svc is None:
            raise NotFound()
        return json_body(request, service_json(svc))

    @app.route(f"/services/<{ID}:service_id>/states", methods=["GET"])
    @readable
    async def states(self, request: IRequest, identity: Identity, service_id: int) -> bytes:
        now = self.clock.seconds()
        until = time_arg(request, "until", now)
        since = time_arg(request, "since", max(0.0, until - 86400))
        limit = int_arg(request, "limit", 1000, 1, 10000)
        after = int_arg(request, "after", 0, 0)
        if await self.queries.service(service_id) is None:
            raise NotFound()
        rows = await self.queries.states(service_id, since, until, limit, after)
        more = len(rows) == limit
        return json_body(request, {
            "items": [state_json(r) for r in rows],
            "next": self._next(request, since=repr(rows[-1].time), after=rows[-1].id,
                               until=repr(until)) if more else None,
        })

    @app.route("/alerts", methods=["GET"])
    @readable
    async def alerts(self, request: IRequest, identity: Identity) -> bytes:
        limit = int_arg(request, "limit", 100, 1, MAX_LIMIT)
        server_id, server_name = id_or_name(arg(request, "server"))
        service_id, service_name = id_or_name(arg(request, "service"))
        filt = AlertFilter(
            server_id=server_id,
            server_name=server_name,
            service_id=service_id,
            service_name=service_name,
            kind=arg(request, "kind") or None,
            severity=(arg(request, "severity") or "").upper() or None,
            since=time_arg(request, "since"),
            before_id=int_arg(request, "before", None, 1),
            limit=limit,
        )
        alerts = await self.queries.alerts(filt)
        more = len(alerts) == limit
        return json_body(request, {
            "items": [alert_json(a) for a in alerts],
            "next": self._next(request, before=alerts[-1].id) if more else None,
        })

    # -- actions --------------------------------------------------------------------------

    @app.route(f"/services/<{ID}:service_id>/ack", methods=["POST"])
    @writable
    async def ack(self, request: IRequest, identity: Identity, body: Body,
                  service_id: int) -> bytes:
        await self.control.acknowledge(service_id, body.get("comment"), body.get("sticky"),
                                       body.get("expires"))
        return json_body(request, {"ok": 1})

    @app.route(f"/services/<{ID}:service_id>/ack", methods=["DELETE"])
    @writable
    async def unack(self, request: IRequest, identity: Identity, body: Body,
                    service_id: int) -> bytes:
        await self.control.unacknowledge(service_id)
        return json_body(request, {"ok": 1})

    @app.route(f"/<any(services,servers):kind>/<{ID}:target_id>/silence", methods=["POST"])
    @writable
    async def silence(self, request: IRequest, identity: Identity, body: Body,
                      kind: str, target_id: int) -> bytes:
        end = self.control.silence_end(body.get("until"), body.get("duration"))
        await self.control.silence(kind[:-1], target_id, end, body.get("reason"))
        return json_body(request, {"ok": 1, "silenced_until": end})

    @app.route(f"/<any(services,servers):kind>/<{ID}:target_id>/silence", methods=["DELETE"])
    @writable
    async def unsilence(self, request: IRequest, identity: Identity, body: Body,
                        kind: str, target_id: int) -> bytes:
        await self.control.unsilence(kind[:-1], target_id)
        return json_body(request, {"ok": 1})

    @app.route(f"/<any(services,servers):kind>/<{ID}:target_id>", methods=["DELETE"])
    @writable
    async def delete(self, request: IRequest, identity: Identity, body: Body,
                     kind: str, target_id: int) -> bytes:
        await self.control.delete(kind[:-1], target_id)
        log.info("{user} deleted {kind} {id} through the API", user=identity.user,
                 kind=kind[:-1], id=target_id)
        return json_body(request, {"ok": 1})

    # -- maintenance windows (SPEC 11) ----------------------------------------------------

    def _windows(self) -> MaintenanceControl:
        if self.maintenance is None:
            raise NotFound()
        return self.maintenance

    @app.route("/maintenance", methods=["GET"])
    @readable
    async def maintenance_list(self, request: IRequest, identity: Identity) -> bytes:
        server = int_arg(request, "server", None, 1)
        windows = await self._windows().list(server)
        now = self.clock.seconds()
        return json_body(request, {"items": [window_json(w, now) for w in windows]})

    @app.route("/maintenance", methods=["POST"])
    @writable
    async def maintenance_create(self, request: IRequest, identity: Identity,
                                 body: Body) -> bytes:
        window_id = await self._windows().create(body, source="api", user=identity.user)
        log.info("{user} created maintenance window {id}", user=identity.user, id=window_id)
        return json_body(request, {"ok": 1, "id": window_id})

    @app.route(f"/maintenance/<{ID}:window_id>", methods=["DELETE"])
    @writable
    async def maintenance_end(self, request: IRequest, identity: Identity, body: Body,
                              window_id: int) -> bytes:
        await self._windows().end(window_id)
        log.info("{user} ended maintenance window {id}", user=identity.user, id=window_id)
        return json_body(request, {"ok": 1})

    @app.route(f"/servers/<{ID}:server_id>/reset-key", methods=["POST"])
    @writable
    async def reset_key(self, request: IRequest, identity: Identity, body: Body,
                        server_id: int) -> bytes:
        key = await self.control.reset_key(server_id, body.get("key"))
        return json_body(request, {"ok": 1, "key": key})

