"""The overview's tile tips: a server's info excerpts, fetched by the page script when one of
its tiles is hovered or focused, and shown in a tooltip the tile points to
(``aria-describedby``), so keyboard and screen-reader users get them too.

Why not in the page: with 10,000 services, varied plugin output (numbers, paths) was two thirds
of the compressed overview (~310 of ~410 KB gzip in a realistic mix); the excerpt of a tile is
wanted for a few tiles a visit, so each card's excerpts come on demand, one small JSON answer
per server.
"""
from __future__ import annotations

from functools import wraps
from typing import TYPE_CHECKING, Any

from klein import Klein
from twisted.web.server import Request

from overc.web.auth import Identity
from overc.web.authenticated import authenticated
from overc.web.control import NotFound
from overc.web.http import ID, json_body, security_headers

if TYPE_CHECKING:
    from overc.ui.pages import UI

#: Characters of a service's info a tip shows (the service page has all of it).
EXCERPT = 160


def _page(method: Any) -> Any:
    guarded = authenticated(basic=False)(method)

    @wraps(method)
    async def secured(self: Any, request: Request, *args: Any, **kwargs: Any) -> Any:
        security_headers(request)
        return await guarded(self, request, *args, **kwargs)

    return secured


def excerpts(services: Any) -> dict[str, str]:
    """``{"<service id>": "first 160 characters of its info"}`` for one server's services."""
    return {str(s.id): (s.info or "")[:EXCERPT] for s in services}


def install(app: Klein) -> None:
    """Add ``GET /ui/server/<id>/tips`` to the UI's Klein app (a logged-in user's, as the
    overview; JSON, never HTML, so the excerpts are data the script puts in as text)."""

    @app.route(f"/server/<{ID}:server_id>/tips", methods=["GET", "HEAD"])
    @_page
    async def tile_tips(ui: UI, request: Request, identity: Identity, server_id: int) -> bytes:
        server = await ui.queries.server(server_id)
        if server is None:
            raise NotFound()
        return json_body(request, excerpts(server.services))
