"""The root of the resource tree: which branch answers which path.

Dispatch is a plain twisted.web tree (cheap) with Klein apps as its branches: ``/api/ping`` and
``/api/set/*`` go to the push API, other ``/api/*`` to the read API, ``/ui`` to the pages,
``/metrics`` and ``/healthz`` to their resources. ``/`` redirects to ``/ui/``.
"""
from __future__ import annotations

from typing import Mapping

from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from twisted.web.util import Redirect

from overc.web.http import json_error

PUSH_SEGMENTS = frozenset({b"ping", b"set"})


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
