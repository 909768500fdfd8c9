"""The browser UI: thin Klein routes that ask the store, shape with ``views`` and render Jinja2.

Live updates: pages carry ``data-live`` regions; ``overc.js`` re-fetches the page every 1.5 s
with ``If-None-Match`` and merges into those regions only the elements that changed (keyed by
``data-key``/id, so focus, open rows and scroll stay). The ETag is a cheap fingerprint of what
the page shows, scoped to its server or service (:mod:`overc.storage.read_pulse`), and the page
carries it (``<meta name="overc-etag">``) so the first poll is already a 304; forms being typed
into are never replaced.
"""
from __future__ import annotations

import hashlib
from functools import wraps
from typing import Any, Awaitable, Callable, Mapping, cast
from urllib.parse import quote

import jinja2
from klein import Klein
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.server import Request
from twisted.web.static import File
from werkzeug.routing import RequestRedirect

from overc.storage.queries import Queries
from overc.storage.read_alerts import AlertFilter
from overc.storage.read_pulse import PulseScope
from overc.ui import schedule_views, views
from overc.ui.maintenance_pages import install as install_maintenance, windows_for
from overc.ui.tile_tips import install as install_tips
from overc.ui.rendering import STATIC_DIR, make_environment, static_version
from overc.web.auth import Auth, Identity, request_address
from overc.web.files import StaticFiles
from overc.web.authenticated import Forbidden, LoginRequired, authenticated
from overc.web.compress import Compressor, accepts_gzip, add_vary, encode_page
from overc.web.control import Control, NotFound
from overc.web.http import (ID, BadRequest, arg, id_routes, int_arg, read_form,
                            relative_location, safe_next as _safe_next, security_headers)
from overc.web.maintenance import MaintenanceControl

log = Logger()

HISTORY_POINTS = 10_000
#: How far back the overview shows a server's API alerts (``overcli alert``).
API_ALERTS_FOR = 86400
#: Chart ranges; "fit" spans the service's life (minutes for a new one), the default while it
#: is younger than a day.
RANGES: dict[str, int | None] = {"fit": None, "1h": 3600, "6h": 6 * 3600, "24h": 86400,
                                 "7d": 7 * 86400}
MESSAGES = {
    "acked": "Acknowledged.", "unacked": "Acknowledgement removed.",
    "silenced": "Silenced.", "unsilenced": "Silence ended.",
    "deleted": "Deleted.", "loggedout": "Logged out.",
    "maintenance": "Maintenance window created.", "maintenance-ended": "Maintenance ended.",
}


class PageNotFound(Exception):
    pass


def _secured(route: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Browser hardening headers on the answer, whatever it turns out to be (a redirect too)."""

    @wraps(route)
    async def secured(self: "UI", request: Request, *args: Any, **kwargs: Any) -> Any:
        security_headers(request)
        return await route(self, request, *args, **kwargs)

    return secured


def page(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """A page for a logged-in user (in open mode: anyone); browsers log in by form only."""
    return _secured(authenticated(basic=False)(method))


def action(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """A state-changing form: a page's login plus the form's CSRF token."""
    return _secured(authenticated(basic=False, csrf="form")(method))


#: A parsed form body.
Form = Mapping[str, str]


class UI:
    app = id_routes(Klein())

    def __init__(self, queries: Queries, control: Control, auth: Auth, clock: IReactorTime,
                 windows: MaintenanceControl | None = None,
                 env: jinja2.Environment | None = None,
                 compress: Compressor | None = None) -> None:
        self.queries = queries
        self.control = control
        self.auth = auth
        self.clock = clock
        self.env = env or make_environment()
        self.static_version = static_version()
        self.static_dir = STATIC_DIR
        self.windows = windows  # maintenance windows: routes in overc.ui.maintenance_pages
        self.compress = compress  # gzip in the reactor's thread pool (None: inline)

    # -- rendering ------------------------------------------------------------------------

    async def render(self, request: Request, identity: Identity | None, template: str,
                     **context: Any) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        user = identity.user if identity else None
        context.update(
            user=user,
            auth_required=self.auth.required,
            csrf=await self.auth.csrf_token(request, user),
            now=self.clock.seconds(),
            static=lambda name: f"/ui/static/{name}?v={self.static_version}",
            message=MESSAGES.get(arg(request, "msg") or ""),
            path=request.uri.decode("utf-8", "replace"),
        )
        body = self.env.get_template(template).render(**context).encode("utf-8")
        return await encode_page(request, body, self.compress)

    async def live_tag(self, request: Request, identity: Identity,
                       scope: PulseScope) -> str | None:
        """The page's ETag for live polling (the page carries it too), or None and a 304 when
        nothing the page shows changed since ``If-None-Match``."""
        pulse = await self.queries.pulse(scope, self.clock.seconds())
        # The gzip and the plain page are two representations: two tags (RFC 9110 8.8.3).
        encoding = "gzip" if accepts_gzip(request) else ""
        tag = hashlib.sha256(
            f"{pulse.token}|{request.uri!r}|{identity.user}|{self.static_version}|{encoding}"
            .encode()).hexdigest()[:24]
        add_vary(request)
        etag = f'"{tag}"'
        request.setHeader(b"etag", etag.encode("ascii"))
        if request.getHeader(b"if-none-match") == etag.encode("ascii"):
            request.setResponseCode(304)
            return None
        return etag

    # -- errors ---------------------------------------------------------------------------

    @app.handle_errors(LoginRequired)
    def _login_required(self, request: IRequest, failure: Failure) -> bytes:
        target = quote(request.uri.decode("utf-8", "replace"), safe="/?=&")
        request.setResponseCode(303)
        request.setHeader(b"location", f"/ui/login?next={target}".encode("utf-8"))
        return b""

    @app.handle_errors(RequestRedirect)
    def _redirect(self, request: IRequest, failure: Failure) -> bytes:
        # werkzeug builds an absolute URL from the Host header: answer with the path only.
        error = failure.value
        assert isinstance(error, RequestRedirect)  # handle_errors(RequestRedirect) says so
        request.setResponseCode(error.code)
        request.setHeader(b"location", relative_location(error.new_url))
        return b""

    @app.handle_errors(Forbidden)
    def _csrf(self, request: IRequest, failure: Failure) -> bytes:
        request.setResponseCode(403)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"Forbidden: the form's security token is missing or stale. Reload the page.\n"

    @app.handle_errors(BadRequest)
    def _bad(self, request: IRequest, failure: Failure) -> bytes:
        request.setResponseCode(400)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return f"Bad request: {failure.value}\n".encode("utf-8")

    @app.handle_errors(NotFound, PageNotFound)
    async def _not_found(self, request: IRequest, failure: Failure) -> bytes:
        request.setResponseCode(404)
        # Klein types handlers with IRequest; what it hands them is the Site's Request.
        return await self.render(cast(Request, request), None, "error.html", title="Not found",
                                 text="No such server or service (it may have been deleted).")

    # -- pages ----------------------------------------------------------------------------

    @app.route("/", methods=["GET", "HEAD"])
    @page
    async def overview(self, request: Request, identity: Identity) -> bytes | None:
        etag = await self.live_tag(request, identity, PulseScope())
        if etag is None:
            return b""
        now = self.clock.seconds()
        servers = await self.queries.overview(excerpt=0)  # tips come on demand (tile_tips)
        # SPEC 11: the windows not over yet, one query; those running now mark cards and tiles
        windows = await self.windows.list(recent=0.0) if self.windows is not None else []
        cards, counts = views.overview_cards(servers, now, windows)
        views.attach_api_alerts(cards, await self.queries.alerts(
            AlertFilter(kind="api", since=now - API_ALERTS_FOR, limit=200)))
        return await self.render(request, identity, "overview.html", title="Overview",
                                 cards=cards, counts=counts, etag=etag,
                                 total=sum(card.count for card in cards),
                                 state_filter=(arg(request, "state") or "").upper(),
                                 q=arg(request, "q") or "")

    @app.route(f"/server/<{ID}:server_id>", methods=["GET", "HEAD"])
    @page
    async def server(self, request: Request, identity: Identity, server_id: int) -> bytes:
        etag = await self.live_tag(request, identity, PulseScope("server", server_id))
        if etag is None:
            return b""
        now = self.clock.seconds()
        server = await self.queries.server(server_id, now=now)
        if server is None:
            raise PageNotFound()
        rows = sorted(server.services,
                      key=lambda s: (views.service_rank(s.state, s.stale), s.name))
        alerts = await self.queries.alerts(AlertFilter(server_id=server_id, limit=50))
        return await self.render(
            request, identity, "server.html", title=server.name, server=server, services=rows,
            alerts=alerts, display=views.display_state, etag=etag,
            silenced=bool(server.silenced_until and server.silenced_until > now),
            windows=await windows_for(self.windows, server.id, server.name),
        )

    @app.route(f"/service/<{ID}:service_id>", methods=["GET", "HEAD"])
    @page
    async def service(self, request: Request, identity: Identity, service_id: int) -> bytes:
        etag = await self.live_tag(request, identity, PulseScope("service", service_id))
        if etag is None:
            return b""
        now = self.clock.seconds()
        svc = await self.queries.service(service_id, now=now)
        if svc is None:
            raise PageNotFound()
        asked = arg(request, "range") or ""
        day_start = now - 86400
        states, prior = await self.queries.recent_states(
            service_id, min(now - (RANGES.get(asked) or 0), day_start), HISTORY_POINTS)
        # No report before the last day: a young service, whose life fits the charts.
        first = states[0].time if prior is None and states else None
        window = views.fit_window(first, now)
        range_name = asked if asked in RANGES else ("fit" if first is not None else "24h")
        start = now - (RANGES[range_name] or window)
        stale_from = svc.deadline if svc.stale else None
        segments = views.timeline(states, prior, now - window, now, 1000.0, stale_from)
        series = await self.queries.perfdata_series(service_id, start, now,
                                                    views.chart_columns())
        charts = [views.chart_series(one.last, one.buckets, start, now) for one in series]
        runs = views.collapse_runs(states)
        alerts = await self.queries.alerts(AlertFilter(service_id=service_id, limit=50))
        shown = views.display_state(svc.state, svc.stale)
        return await self.render(
            request, identity, "service.html", title=f"{svc.server_name} / {svc.name}",
            svc=svc, shown=shown, segments=segments, charts=charts, runs=runs, alerts=alerts,
            range_name=range_name, ranges=list(RANGES), history_count=len(states), etag=etag,
            day_start=day_start, timeline_axis=views.ago_labels(window), silenced=bool(svc.silenced_until and svc.silenced_until > now),
            timing=schedule_views.service_timing(svc, states, start, now),
            windows=await windows_for(self.windows, svc.server_id, svc.server_name, svc.id,
                                      svc.name),
        )

    @app.route("/alerts", methods=["GET", "HEAD"])
    @page
    async def alerts(self, request: Request, identity: Identity) -> bytes:
        etag = await self.live_tag(request, identity, PulseScope("alerts"))
        if etag is None:
            return b""
        filt = AlertFilter(
            server_name=arg(request, "server") or None,
            service_name=arg(request, "service") or None,
            kind=arg(request, "kind") or None,
            severity=(arg(request, "severity") or "").upper() or None,
            before_id=int_arg(request, "before", None, 1),
            limit=100,
        )
        alerts = await self.queries.alerts(filt)
        return await self.render(request, identity, "alerts.html", title="Alerts",
                                 alerts=alerts, filt=filt, etag=etag,
                                 more=alerts[-1].id if len(alerts) == filt.limit else None)

    # -- login ----------------------------------------------------------------------------

    @app.route("/login", methods=["GET", "HEAD"])
    async def login_form(self, request: Request) -> bytes:
        security_headers(request)
        return await self.render(request, None, "login.html", title="Log in", error=None,
                                 next=_safe_next(arg(request, "next")), name="")

    @app.route("/login", methods=["POST"])
    async def login(self, request: Request) -> bytes:
        security_headers(request)
        form = read_form(request)
        if not await self.auth.check_csrf(request, None, form.get("csrf")):
            raise Forbidden("the login form's security token is missing or stale")
        name, password = form.get("name", ""), form.get("password", "")
        target = _safe_next(form.get("next"))
        if self.auth.required and not await self.auth.check_password(
                name, password, request_address(request)):
            request.setResponseCode(401)
            return await self.render(request, None, "login.html", title="Log in",
                                     error="Wrong name or password.", next=target, name=name)
        if self.auth.required:
            await self.auth.start_session(request, name)
        request.setResponseCode(303)
        request.setHeader(b"location", target.encode("utf-8"))
        return b""

    @app.route("/logout", methods=["POST"])
    @action
    async def logout(self, request: Request, identity: Identity, form: Form) -> bytes:
        await self.auth.end_session(request)
        request.setResponseCode(303)
        request.setHeader(b"location", b"/ui/login?msg=loggedout")
        return b""

    # -- actions --------------------------------------------------------------------------

    def _back(self, request: Request, fallback: str, msg: str) -> bytes:
        request.setResponseCode(303)
        target = fallback + ("&" if "?" in fallback else "?") + f"msg={msg}"
        request.setHeader(b"location", target.encode("utf-8"))
        return b""

    @app.route(f"/service/<{ID}:service_id>/ack", methods=["POST"])
    @action
    async def ack(self, request: Request, identity: Identity, form: Form,
                  service_id: int) -> bytes:
        await self.control.acknowledge(service_id, form.get("comment"), form.get("sticky"),
                                       form.get("expires"), form.get("tzoffset"))
        log.info("{user} acknowledged service {id}", user=identity.user, id=service_id)
        return self._back(request, f"/ui/service/{service_id}", "acked")

    @app.route(f"/service/<{ID}:service_id>/unack", methods=["POST"])
    @action
    async def unack(self, request: Request, identity: Identity, form: Form,
                    service_id: int) -> bytes:
        await self.control.unacknowledge(service_id)
        return self._back(request, f"/ui/service/{service_id}", "unacked")

    @app.route(f"/<any(service,server):kind>/<{ID}:target_id>/silence", methods=["POST"])
    @action
    async def silence(self, request: Request, identity: Identity, form: Form,
                      kind: str, target_id: int) -> bytes:
        end = self.control.silence_end(form.get("until"), form.get("duration"),
                                       form.get("tzoffset"))
        await self.control.silence(kind, target_id, end, form.get("reason"))
        log.info("{user} silenced {kind} {id}", user=identity.user, kind=kind, id=target_id)
        return self._back(request, f"/ui/{kind}/{target_id}", "silenced")

    @app.route(f"/<any(service,server):kind>/<{ID}:target_id>/unsilence", methods=["POST"])
    @action
    async def unsilence(self, request: Request, identity: Identity, form: Form,
                        kind: str, target_id: int) -> bytes:
        await self.control.unsilence(kind, target_id)
        return self._back(request, f"/ui/{kind}/{target_id}", "unsilenced")

    @app.route(f"/<any(service,server):kind>/<{ID}:target_id>/delete", methods=["GET", "HEAD"])
    @page
    async def delete_confirm(self, request: Request, identity: Identity,
                             kind: str, target_id: int) -> bytes:
        if kind == "server":
            server = await self.queries.server(target_id)
            if server is None:
                raise PageNotFound()
            label, extra = server.name, len(server.services)
        else:
            svc = await self.queries.service(target_id)
            if svc is None:
                raise PageNotFound()
            label, extra = f"{svc.server_name} / {svc.name}", 0
        return await self.render(request, identity, "confirm.html", title=f"Delete {label}?",
                                 kind=kind, target_id=target_id, label=label, extra=extra)

    @app.route(f"/<any(service,server):kind>/<{ID}:target_id>/delete", methods=["POST"])
    @action
    async def delete(self, request: Request, identity: Identity, form: Form,
                     kind: str, target_id: int) -> bytes:
        back = "/ui/"
        if kind == "service":
            svc = await self.queries.service(target_id)
            if svc is not None:
                back = f"/ui/server/{svc.server_id}"
        await self.control.delete(kind, target_id)
        log.info("{user} deleted {kind} {id}", user=identity.user, kind=kind, id=target_id)
        return self._back(request, back, "deleted")

    @app.route(f"/server/<{ID}:server_id>/reset-key", methods=["GET", "HEAD"])
    @page
    async def reset_key_confirm(self, request: Request, identity: Identity,
                                server_id: int) -> bytes:
        server = await self.queries.server(server_id)
        if server is None:
            raise PageNotFound()
        return await self.render(request, identity, "confirm_key.html",
                                 title=f"Reset the key of {server.name}?", server=server)

    @app.route(f"/server/<{ID}:server_id>/reset-key", methods=["POST"])
    @action
    async def reset_key(self, request: Request, identity: Identity, form: Form,
                        server_id: int) -> bytes:
        server = await self.queries.server(server_id)
        if server is None:
            raise PageNotFound()
        key = await self.control.reset_key(server_id)
        log.info("{user} reset the key of server {id}", user=identity.user, id=server_id)
        return await self.render(request, identity, "newkey.html", title="New key",
                                 server=server, key=key)

    # -- assets ---------------------------------------------------------------------------

    @app.route("/static/", branch=True)
    def static(self, request: Request) -> File:
        request.setHeader(b"cache-control", b"public, max-age=31536000, immutable")
        request.setHeader(b"x-content-type-options", b"nosniff")
        return StaticFiles(self.static_dir)  # no directory listings


install_maintenance(UI.app)
install_tips(UI.app)
