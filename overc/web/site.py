"""Our Request class and the Site: a body over 1 MiB is refused before it is kept."""
from __future__ import annotations

import io
from typing import TYPE_CHECKING
from twisted.web import http, server
from twisted.web.resource import IResource

from overc.web.http import json_error

if TYPE_CHECKING:
    from typing_extensions import Buffer  # what BytesIO.write takes

MAX_BODY = 1024 * 1024


class _Discard(io.BytesIO):
    """Where the rest of a too-large body goes: nowhere."""

    def write(self, data: Buffer, /) -> int:
        return memoryview(data).nbytes


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
        if self.content is not None:  # always: twisted.web calls gotLength first
            self.content.write(data)

    def process(self) -> None:
        if self.too_large:
            self.site = self.channel.factory  # what Request.process does: our Site
            self.setHeader(b"Connection", b"close")
            body = json_error(self, 413, f"The body is larger than {MAX_BODY} bytes")
            self.setHeader(b"Content-Length", str(len(body)).encode())
            self.write(body)
            self.finish()
            return
        super().process()


class OvercSite(server.Site):
    """A Site whose per-request access log line is optional (``[overc] access-log``).

    At thousands of pushes a second the access log is the single largest cost of a request
    (about 15 % of the reactor thread, measured with py-spy); errors are logged regardless.
    """

    access_log = False

    def log(self, request: http.Request) -> None:
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
