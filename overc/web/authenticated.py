"""The one decorator that guards the routes of the UI and the read API: :func:`authenticated`.

Each app maps :class:`LoginRequired` and :class:`Forbidden` to its own answer (a redirect to
the login form, or JSON 401/403), so pages and scripts share every rule of who may do what.
"""
from __future__ import annotations

from functools import wraps
from typing import Any, Awaitable, Callable, Literal, Mapping, Protocol

from twisted.web.server import Request

from overc.web.auth import NONCE_COOKIE, Auth, Identity, Via
from overc.web.http import read_form, read_json


class LoginRequired(Exception):
    """Nobody valid is logged in: pages redirect to the login form, the API answers 401."""


class Forbidden(Exception):
    """A state change that could be forged (no CSRF token, a stale one, a cross-site form)."""


class _Guarded(Protocol):
    auth: Auth


def authenticated(*, basic: bool, csrf: Literal["form", "json"] | None = None
                  ) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
    """A route of the UI or the read API that needs a caller (in open mode: anyone).

    ``basic``: HTTP Basic is accepted besides the session cookie (scripts, not pages).
    ``csrf``: the route changes state, so the request must be one a cross-site page cannot
    forge; its parsed body is passed after the identity. ``"form"``: a form with a ``csrf``
    field. ``"json"``: a JSON body or ``DELETE`` (both force a CORS preflight we never
    grant), plus the ``X-CSRF-Token`` header when the browser's cookies are the credential.
    The route is called as ``method(self, request, identity, [body,] *route_args)``.
    """

    def decorate(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @wraps(method)
        async def route(self: _Guarded, request: Request, *args: Any, **kwargs: Any) -> Any:
            identity = await self.auth.identify(request, basic=basic)
            if identity is None:
                raise LoginRequired()
            if csrf is None:
                return await method(self, request, identity, *args, **kwargs)
            body: Mapping[str, Any]
            if csrf == "form":
                body = read_form(request)
                if not await self.auth.check_csrf(request, identity.user, body.get("csrf")):
                    raise Forbidden("the form's security token is missing or stale")
            else:
                await _check_json_request(self.auth, request, identity)
                body = read_json(request)
            return await method(self, request, identity, body, *args, **kwargs)

        return route

    return decorate


async def _check_json_request(auth: Auth, request: Request, identity: Identity) -> None:
    raw_type = request.getHeader(b"content-type") or b""
    content_type = raw_type.decode("latin-1").split(";")[0].strip().lower()
    if request.method != b"DELETE" and content_type != "application/json":
        raise Forbidden("send a JSON body with Content-Type: application/json")
    if identity.via is Via.SESSION or (identity.via is Via.OPEN
                                       and request.getCookie(NONCE_COOKIE)):
        token = (request.getHeader(b"x-csrf-token") or b"").decode("latin-1")
        if not await auth.check_csrf(request, identity.user, token):
            raise Forbidden("missing or stale X-CSRF-Token header")
