"""The UI of maintenance windows (SPEC 11): ``/ui/maintenance`` lists the current and coming
windows (silences included: one list) with who made them and why, creates and ends them. The
server and service pages show the windows over them and a form to start one, through
:func:`windows_over` and ``maintenance_block.html``.

A Klein app of its own, mounted by :class:`overc.ui.pages.UI` as the ``/ui/maintenance``
branch; it renders and handles errors through that UI, so it looks and behaves the same.
"""
from __future__ import annotations

from dataclasses import replace
from functools import wraps
from typing import TYPE_CHECKING, Any

from klein import Klein
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.server import Request

from overc.core.maintenance import Window
from overc.web.auth import Identity
from overc.web.authenticated import Forbidden, LoginRequired, authenticated
from overc.web.control import NotFound
from overc.web.http import BadRequest, security_headers
from overc.web.maintenance import MaintenanceControl

if TYPE_CHECKING:
    from overc.ui.pages import UI

log = Logger()


def _secured(method: Any, csrf: Any) -> Any:
    guarded = authenticated(basic=False, csrf=csrf)(method)

    @wraps(method)
    async def secured(self: Any, request: Request, *args: Any, **kwargs: Any) -> Any:
        security_headers(request)
        return await guarded(self, request, *args, **kwargs)

    return secured


def _page(method: Any) -> Any:
    return _secured(method, None)


def _action(method: Any) -> Any:
    return _secured(method, "form")


def windows_over(windows: list[Window], server_id: int, server_name: str,
                 service_id: int | None = None,
                 service_name: str | None = None) -> list[Window]:
    """The windows of ``windows`` whose scope holds this server (or this service)."""
    if service_id is None:
        # A glob window over some services of this server shows here too.
        return [w for w in windows if w.server_id == server_id or (
            w.server_id is None and replace(w, services=()).covers(server_id, server_name,
                                                                   None, None))]
    return [w for w in windows if w.covers(server_id, server_name, service_id, service_name)]


def _back(target: str | None) -> str:
    """Only pages of this UI after an action (no open redirect)."""
    if target and target.startswith("/ui/") and not target.startswith("//") \
            and "\\" not in target:
        return target
    return "/ui/maintenance"


class MaintenancePages:
    app = Klein()

    def __init__(self, ui: UI, control: MaintenanceControl) -> None:
        self.ui = ui
        self.auth = ui.auth  # the authenticated decorator looks here
        self.control = control

    @app.handle_errors(LoginRequired)
    def _login(self, request: IRequest, failure: Failure) -> bytes:
        return self.ui._login_required(request, failure)

    @app.handle_errors(Forbidden)
    def _csrf(self, request: IRequest, failure: Failure) -> bytes:
        return self.ui._csrf(request, failure)

    @app.handle_errors(BadRequest)
    def _bad(self, request: IRequest, failure: Failure) -> bytes:
        return self.ui._bad(request, failure)

    @app.handle_errors(NotFound)
    async def _missing(self, request: IRequest, failure: Failure) -> bytes:
        request.setResponseCode(404)
        return await self.ui.render(request, None, "error.html",  # type: ignore[arg-type]
                                    title="Not found", text="No such maintenance window.")

    @app.route("/", methods=["GET", "HEAD"])
    @_page
    async def list_page(self, request: Request, identity: Identity) -> bytes:
        windows = await self.control.list()
        now = self.control.clock.seconds()
        running = [w for w in windows if w.active(now)]
        coming = [w for w in windows if not w.active(now) and w.current_or_next(now)]
        ended = [w for w in windows if w.current_or_next(now) is None]
        return await self.ui.render(request, identity, "maintenance.html", title="Maintenance",
                                    running=running, coming=coming, ended=ended)

    @app.route("/", methods=["POST"])
    @_action
    async def create(self, request: Request, identity: Identity, form: Any) -> bytes:
        window_id = await self.control.create(form, source="ui", user=identity.user)
        log.info("{user} created maintenance window {id}", user=identity.user, id=window_id)
        return self._redirect(request, _back(form.get("back")), "maintenance")

    @app.route("/<int:window_id>/end", methods=["POST"])
    @_action
    async def end(self, request: Request, identity: Identity, form: Any,
                  window_id: int) -> bytes:
        await self.control.end(window_id)
        log.info("{user} ended maintenance window {id}", user=identity.user, id=window_id)
        return self._redirect(request, _back(form.get("back")), "maintenance-ended")

    @staticmethod
    def _redirect(request: Request, target: str, msg: str) -> bytes:
        request.setResponseCode(303)
        target += ("&" if "?" in target else "?") + f"msg={msg}"
        request.setHeader(b"location", target.encode("utf-8"))
        return b""
