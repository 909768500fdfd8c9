"""The HTTP front: our Request class, the root of the resource tree, and the Site.

Dispatch is a plain twisted.web tree (cheap) with Klein apps as its branches: ``/api/ping`` and
``/api/set/*`` go to the push API, other ``/api/*`` to the read API, ``/ui`` to the pages,
``/metrics`` and ``/healthz`` to their resources. ``/`` redirects to ``/ui/``.
"""
from __future__ import annotations

import io
from typing import Mapping

from twisted.web import server
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from twisted.web.util import Redirect

from overc.api.jsonio import json_error

MAX_BODY = 1024 * 1024
PUSH_SEGMENTS = frozenset({b"ping", b"set"})


class _Discard(io.BytesIO):
    """Where the rest of a too-large body goes: nowhere."""

    def write(self, data: bytes) -> int:  # type: ignore[override]
        return len(data)


class OvercRequest(server.Request):
    """A Request that refuses bodies over 1 MiB (413) without keeping them."""

    too_large = False
    _received = 0

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > MAX_BODY:
            self.too_large = True
            self.content = _Discard()
            return
        # At most 1 MiB: always in memory. (twisted.web's default asks the Site for a
        # getContentFile it does not have, through a caught AttributeError, on every request.)
        self.content = io.BytesIO()

    def handleContentChunk(self, data: bytes) -> None:
        if not self.too_large:
            self._received += len(data)
            if self._received > MAX_BODY:  # chunked bodies announce no length
                self.too_large = True
                self.content = _Discard()
                return
        self.content.write(data)

    def process(self) -> None:
        if self.too_large:
            self.site = self.channel.site
            self.setHeader(b"Connection", b"close")
            body = json_error(self, 413, f"The body is larger than {MAX_BODY} bytes")
            self.setHeader(b"Content-Length", str(len(body)).encode())
            self.write(body)
            self.finish()
            return
        super().process()


class JSONNotFound(Resource):
    isLeaf = True

    def render(self, request: IRequest) -> bytes:
        return json_error(request, 404, "Not found")


class ApiBranch(Resource):
    """``/api/...``: push paths to the push app, everything else to the read API."""

    def __init__(self, push: IResource, read: IResource | None) -> None:
        super().__init__()
        self.push = push
        self.read = read

    def getChild(self, path: bytes, request: IRequest) -> IResource:
        # Hand the whole branch (this segment included) to the Klein app that owns it.
        request.postpath.insert(0, path)
        request.prepath.pop()
        if path in PUSH_SEGMENTS:
            return self.push
        return self.read if self.read is not None else JSONNotFound()


class Root(Resource):
    def __init__(self, push: IResource, health: IResource,
                 extra: Mapping[str, IResource] | None = None) -> None:
        super().__init__()
        extra = dict(extra or {})
        self.putChild(b"", Redirect(b"/ui/"))
        self.putChild(b"healthz", health)
        self.putChild(b"api", ApiBranch(push, extra.pop("api", None)))
        for name, resource in extra.items():
            self.putChild(name.encode("ascii"), resource)

    def getChild(self, path: bytes, request: IRequest) -> IResource:
        return JSONNotFound()


class OvercSite(server.Site):
    """A Site whose per-request access log line is optional (``[overc] access-log``).

    At thousands of pushes a second the access log is the single largest cost of a request
    (about 15 % of the reactor thread, measured with py-spy); errors are logged regardless.
    """

    access_log = False

    def log(self, request: IRequest) -> None:
        if self.access_log:
            super().log(request)


def make_site(root: IResource, access_log: bool = False) -> server.Site:
    # Form bodies are not parsed into request.args: the push API reads JSON whatever the
    # Content-Type says, and skipping it saves Twisted's costly Content-Type parsing
    # (PERF-NOTES). UI forms parse their own bodies.
    site = OvercSite(root, requestFactory=OvercRequest, parsePOSTFormSubmission=False)
    site.displayTracebacks = False
    site.access_log = access_log
    return site
