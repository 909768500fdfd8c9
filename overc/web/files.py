"""Static files without the extras of twisted.web's :class:`File`: no directory listings, and
no redirect that spells out the client's ``Host:`` header. A directory is a 404."""
from __future__ import annotations

from typing import Any

from twisted.web.iweb import IRequest
from twisted.web.pages import notFound
from twisted.web.resource import IResource
from twisted.web.static import File


class StaticFiles(File):
    """Serves the files under a folder; a folder itself (with a slash or not) is a 404."""

    def directoryListing(self) -> IResource:
        return notFound()

    def redirect(self, request: IRequest) -> Any:
        return notFound().render(request)
