"""The UI of maintenance windows (SPEC 11): ``/ui/maintenance`` lists the current and coming
windows (silences included: one list) with who made them and why, creates and ends them. The
server and service pages show the windows over them and a form to start one, through
:func:`windows_over` and ``maintenance_block.html``.

The routes are installed on the UI's own Klein app (:func:`install`), so they render and
handle errors exactly as the other pages do.
"""
from __future__ import annotations

from dataclasses import replace
from functools import wraps
from typing import TYPE_CHECKING, Any

from klein import Klein
from twisted.logger import Logger
from twisted.web.server import Request

from overc.core.maintenance import Window
from overc.web.auth import Identity
from overc.web.authenticated import authenticated
from overc.web.control import NotFound
from overc.web.http import ID, security_headers
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


async def windows_for(control: MaintenanceControl | None, server_id: int, server_name: str,
                      service_id: int | None = None, service_name: str | None = None
                      ) -> list[Window] | None:
    """The windows over this server or service for its page (None: no maintenance here)."""
    if control is None:
        return None
    return windows_over(await control.list(server_id, recent=0.0), server_id, server_name,
                        service_id, service_name)


def _back(target: str | None) -> str:
    """Only pages of this UI after an action (no open redirect)."""
    if target and target.startswith("/ui/") and not target.startswith("//") \
            and "\\" not in target:
        return target
    return "/ui/maintenance/"


def install(app: Klein) -> None:
    """Add the maintenance routes to the UI's Klein app: they run as methods of the UI (its
    rendering, its error pages) with its :class:`MaintenanceControl` as ``ui.windows``."""

    @app.route("/maintenance/", methods=["GET", "HEAD"])
    @_page
    async def maintenance_list(ui: UI, request: Request, identity: Identity) -> bytes:
        control = _control(ui)
        windows = await control.list()
        now = control.clock.seconds()
        running = [w for w in windows if w.active(now)]
        coming = [w for w in windows if not w.active(now) and w.current_or_next(now)]
        ended = [w for w in windows if w.current_or_next(now) is None]
        return await ui.render(request, identity, "maintenance.html", title="Maintenance",
                               running=running, coming=coming, ended=ended)

    @app.route("/maintenance/", methods=["POST"])
    @_action
    async def maintenance_create(ui: UI, request: Request, identity: Identity,
                                 form: Any) -> bytes:
        window_id = await _control(ui).create(form, source="ui", user=identity.user)
        log.info("{user} created maintenance window {id}", user=identity.user, id=window_id)
        return _redirect(request, _back(form.get("back")), "maintenance")

    @app.route(f"/maintenance/<{ID}:window_id>/end", methods=["POST"])
    @_action
    async def maintenance_end(ui: UI, request: Request, identity: Identity, form: Any,
                              window_id: int) -> bytes:
        await _control(ui).end(window_id)
        log.info("{user} ended maintenance window {id}", user=identity.user, id=window_id)
        return _redirect(request, _back(form.get("back")), "maintenance-ended")


def _control(ui: UI) -> MaintenanceControl:
    if ui.windows is None:
        raise NotFound()
    return ui.windows


def _redirect(request: Request, target: str, msg: str) -> bytes:
    request.setResponseCode(303)
    target += ("&" if "?" in target else "?") + f"msg={msg}"
    request.setHeader(b"location", target.encode("utf-8"))
    return b""
