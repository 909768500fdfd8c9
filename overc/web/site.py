"""Our Request, channel and Site: the limits of one network service.

- A body over 1 MiB (announced by ``Content-Length`` or streamed chunked) is answered 413 the
  moment it is known to be too large, and the connection is closed: nothing more is parsed.
- A request must arrive whole (headers and body) within ``[overc] request-timeout`` seconds of
  its first byte, however slowly the client trickles it (slowloris): else 408 and close. An
  idle keep-alive connection is closed after the same time.
- At most ``[overc] max-connections`` connections are open at once; one more is answered 503
  and closed instead of running the process out of file descriptors.

An early answer is written straight to the transport, then the connection is half-closed: what
the client still sends is read and dropped for at most :data:`LINGER_SECONDS` (and
:data:`LINGER_BYTES`), so a client busy sending its body still reads the answer instead of a
connection reset (what nginx calls a lingering close).
"""
from __future__ import annotations

import io
import json
import resource
from typing import TYPE_CHECKING, Any

from twisted.internet import protocol
from twisted.internet.interfaces import IDelayedCall, IHalfCloseableDescriptor
from twisted.logger import Logger
from twisted.web import http, server
from twisted.web.resource import IResource

from overc.web.http import json_error

if TYPE_CHECKING:
    from typing_extensions import Buffer  # what BytesIO.write takes

log = Logger()

MAX_BODY = 1024 * 1024
REQUEST_TIMEOUT = 30.0
MAX_CONNECTIONS = 1000
#: Descriptors kept free for the database, log files, plugins and the listening sockets.
RESERVED_FDS = 64
LINGER_SECONDS = 2.0
LINGER_BYTES = 4 * 1024 * 1024


def _raw_answer(status: int, message: str, extra: bytes = b"") -> bytes:
    """A complete HTTP/1.1 response that closes the connection, JSON body included."""
    body = json.dumps({"error": message}).encode("utf-8")
    reason = http.RESPONSES.get(status, b"Error")
    return (b"HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\n"
            b"Content-Length: %d\r\nCache-Control: no-store\r\nConnection: close\r\n%s\r\n"
            % (status, reason, len(body), extra)) + body


def _close_lingering(transport: Any, clock: Any) -> IDelayedCall | None:
    """Half-close ``transport`` and abort it after :data:`LINGER_SECONDS` at the latest."""
    half_closeable: bool = IHalfCloseableDescriptor.providedBy(transport)
    if half_closeable:
        transport.loseWriteConnection()
        call: IDelayedCall = clock(LINGER_SECONDS, transport.abortConnection)
        return call
    transport.loseConnection()
    return None


class _Discard(io.BytesIO):
    """Where the rest of a too-large body goes: nowhere."""

    def write(self, data: Buffer, /) -> int:
        return memoryview(data).nbytes


class OvercChannel(http.HTTPChannel):
    """An HTTPChannel with a deadline per request and an early answer that closes."""

    request_timeout: float = REQUEST_TIMEOUT
    _deadline: IDelayedCall | None = None
    _linger: IDelayedCall | None = None
    #: Answered early: every further byte is dropped until the connection ends.
    closing = False
    _dropped = 0

    def connectionMade(self) -> None:
        super().connectionMade()
        factory = getattr(self, "factory", None)
        if isinstance(factory, OvercSite):
            factory.open_connections += 1

    def connectionLost(self, reason: Any = protocol.connectionDone) -> None:
        factory = getattr(self, "factory", None)
        if isinstance(factory, OvercSite):
            factory.open_connections -= 1
        self._cancel_deadline()
        if self._linger is not None and self._linger.active():
            self._linger.cancel()
        super().connectionLost(reason)

    def dataReceived(self, data: bytes) -> None:
        if self.closing:
            self._drop(len(data))
            return
        # The first byte of a request starts its clock (data arriving while a response is
        # being prepared is only buffered; it is replayed here once that response is done).
        if self._deadline is None and not self._handlingRequest and self.request_timeout:
            self._deadline = self.callLater(self.request_timeout, self._too_slow)
        super().dataReceived(data)

    def lineReceived(self, line: bytes) -> None:
        if not self.closing:
            super().lineReceived(line)

    def rawDataReceived(self, data: bytes) -> None:
        if self.closing:
            self._drop(len(data))
        else:
            super().rawDataReceived(data)

    def allContentReceived(self) -> None:
        self._cancel_deadline()
        if not self.closing:
            super().allContentReceived()

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            if self._deadline.active():
                self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        log.info("Closing {peer}: no whole request within {s} s",
                 peer=str(self._transport().getPeer()), s=self.request_timeout)
        self.refuse(408, f"the request did not arrive within {self.request_timeout:g} s")

    def _drop(self, count: int) -> None:
        self._dropped += count
        if self._dropped > LINGER_BYTES:
            self._transport().abortConnection()

    def _transport(self) -> Any:
        return self.transport

    def refuse(self, status: int, message: str) -> None:
        """Answer ``status`` now, stop parsing, and close the connection."""
        if self.closing:
            return
        self.closing = True
        self._cancel_deadline()
        self.setTimeout(None)
        transport = self._transport()
        transport.write(_raw_answer(status, message))
        self._linger = _close_lingering(transport, self.callLater)


class OvercRequest(server.Request):
    """A Request that refuses bodies over 1 MiB (413) without keeping them."""

    too_large = False
    _received = 0

    def _refuse_body(self) -> None:
        self.too_large = True
        self.content = _Discard()
        message = f"The body is larger than {MAX_BODY} bytes"
        if isinstance(self.channel, OvercChannel):
            self.channel.refuse(413, message)

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > MAX_BODY:
            self._refuse_body()  # at once, from the header: the body is never read
            return
        # At most 1 MiB: always in memory. (twisted.web's default asks the Site for a
        # getContentFile it does not have, through a caught AttributeError, on every request.)
        self.content = io.BytesIO()

    def handleContentChunk(self, data: bytes) -> None:
        if not self.too_large:
            self._received += len(data)
            if self._received > MAX_BODY:  # chunked bodies announce no length
                self._refuse_body()
                return
        if self.content is not None and not self.too_large:
            self.content.write(data)

    def process(self) -> None:
        if self.too_large:
            if isinstance(self.channel, OvercChannel) and self.channel.closing:
                return  # answered already, by the channel
            self.site = self.channel.factory  # what Request.process does: our Site
            self.setHeader(b"Connection", b"close")
            body = json_error(self, 413, f"The body is larger than {MAX_BODY} bytes")
            self.setHeader(b"Content-Length", str(len(body)).encode())
            self.write(body)
            self.finish()
            return
        super().process()


class _Busy(protocol.Protocol):
    """The connection beyond ``max-connections``: 503, then closed."""

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(_raw_answer(503, "too many connections; retry later",
                                         b"Retry-After: 5\r\n"))
        self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        pass


class OvercSite(server.Site):
    """A Site with our channel, a cap on open connections, and an optional access log.

    At thousands of pushes a second the access log (``[overc] access-log``) is the single
    largest cost of a request (about 15 % of the reactor thread, measured with py-spy);
    errors are logged regardless.
    """

    protocol = OvercChannel  # type: ignore[assignment]  # HTTP/1.1 only: no HTTP/2 here
    access_log = False
    request_timeout = REQUEST_TIMEOUT
    max_connections = MAX_CONNECTIONS
    open_connections = 0
    refused_connections = 0

    def buildProtocol(self, addr: Any) -> Any:
        if self.open_connections >= self.max_connections:
            self.refused_connections += 1
            if self.refused_connections % 1000 == 1:
                log.warn("{n} connections open (max-connections); answering 503",
                         n=self.open_connections)
            busy = _Busy()
            busy.factory = self
            return busy
        channel = super().buildProtocol(addr)
        if isinstance(channel, OvercChannel):
            channel.request_timeout = self.request_timeout
        return channel

    def log(self, request: http.Request) -> None:
        if self.access_log:
            super().log(request)


def connection_limit(wanted: int, reserved: int = RESERVED_FDS) -> int:
    """``wanted`` connections, lowered to fit the process's descriptor limit.

    The soft limit is raised towards the hard one first when that is what it takes.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + reserved
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted
    allowed = max(1, min(wanted, soft - reserved))
    if allowed < wanted:
        log.warn("max-connections {wanted} lowered to {allowed}: the process may open {soft}"
                 " files (ulimit -n)", wanted=wanted, allowed=allowed, soft=soft)
    return allowed


def make_site(root: IResource, access_log: bool = False, *,
              request_timeout: float = REQUEST_TIMEOUT,
              max_connections: int = MAX_CONNECTIONS) -> OvercSite:
    # Form bodies are not parsed into request.args: the push API reads JSON whatever the
    # Content-Type says, and skipping it saves Twisted's costly Content-Type parsing
    # (PERF-NOTES). UI forms parse their own bodies.
    # ``timeout`` is the idle timeout of a keep-alive connection between requests.
    site = OvercSite(root, requestFactory=OvercRequest, parsePOSTFormSubmission=False,
                     timeout=request_timeout)
    site.displayTracebacks = False
    site.access_log = access_log
    site.request_timeout = request_timeout
    site.max_connections = max_connections
    return site
