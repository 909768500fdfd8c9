"""Static files without the extras of twisted.web's :class:`File`: no directory listings, and
no redirect that spells out the client's ``Host:`` header. A directory is a 404.

Text files (CSS, script, SVG) go gzip-compressed to clients that accept it: they block the
first paint, and they are compressed once per process and file version (the pages' static
URLs change with the content, so a cached copy is never stale).
"""
from __future__ import annotations

import gzip
from typing import Any

from twisted.web import http
from twisted.web.iweb import IRequest
from twisted.web.pages import notFound
from twisted.web.resource import IResource
from twisted.web.static import File, getTypeAndEncoding

from overc.web.compress import accepts_gzip, add_vary

COMPRESSIBLE = (".css", ".js", ".svg")
_PACKED: dict[tuple[str, float], bytes] = {}


class StaticFiles(File):
    """Serves the files under a folder; a folder itself (with a slash or not) is a 404."""

    def directoryListing(self) -> IResource:
        return notFound()

    def redirect(self, request: IRequest) -> Any:
        return notFound().render(request)

    def render_GET(self, request: IRequest) -> Any:
        self.restat(False)
        if self.exists() and not self.isdir() and self.basename().endswith(COMPRESSIBLE):
            add_vary(request)
            if accepts_gzip(request):
                return self._gzipped(request)
        return super().render_GET(request)

    def _gzipped(self, request: IRequest) -> bytes:
        if self.type is None:
            self.type, self.encoding = getTypeAndEncoding(
                self.basename(), self.contentTypes, self.contentEncodings, self.defaultType)
        changed = self.getModificationTime()
        if request.setLastModified(changed) is http.CACHED:
            return b""
        key = (self.path, changed)
        body = _PACKED.get(key)
        if body is None:  # a few small files, once per process and version
            body = _PACKED[key] = gzip.compress(self.getContent(), compresslevel=9, mtime=0)
        request.setHeader(b"content-type", (self.type or "application/octet-stream").encode())
        request.setHeader(b"content-encoding", b"gzip")
        request.setHeader(b"content-length", b"%d" % len(body))
        return b"" if request.method == b"HEAD" else body
