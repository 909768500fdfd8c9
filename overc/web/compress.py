"""gzip for the browser's HTML pages, never for the push or JSON APIs.

The overview with 10,000 services is ~2.8 MB of markup that repeats itself; gzip makes it ~30
times smaller, and on a slow link the page's paint is its transfer time. Only the UI's pages are
compressed: the push API's requests and answers are small and their CPU belongs to ingest.

A page may reflect attacker-chosen text (a filter in the URL, names pushed by any registered
server) beside its CSRF token, which is what BREACH needs to read a secret through compressed
sizes: the token is masked afresh on every response (:func:`overc.web.auth.mask_token`), so
the secret never repeats in the compressed bytes. The session and nonce cookies travel in
headers, which gzip does not touch.

A large page is compressed in the reactor's thread pool (zlib releases the GIL), so pushes
are served meanwhile; small ones inline, where a thread hop would cost more than the work.
"""
from __future__ import annotations

import gzip
from typing import Awaitable, Callable

from twisted.internet.interfaces import IReactorThreads
from twisted.web.iweb import IRequest

#: Bodies smaller than this are sent as they are (a packet or two: nothing to win).
MIN_SIZE = 1024
#: From this size on, compress off the reactor thread (when there is a thread pool).
THREAD_SIZE = 64 * 1024
#: zlib level 6: the overview's 2.8 MB become ~100 KB in ~30 ms; level 9 saves 6 % more for
#: four times the CPU.
LEVEL = 6

Compressor = Callable[[bytes], Awaitable[bytes]]


def accepts_gzip(request: IRequest) -> bool:
    """Whether ``Accept-Encoding`` allows gzip: listed (or ``*``) with a quality above 0."""
    header = request.getHeader(b"accept-encoding")
    if not header:
        return False
    star = False
    for item in header.decode("latin-1").lower().split(","):
        name, _, params = item.partition(";")
        name = name.strip()
        if name not in ("gzip", "x-gzip", "*"):
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        if name == "*":
            star = quality > 0
        else:
            return quality > 0  # an explicit gzip entry wins over *
    return star


def add_vary(request: IRequest) -> None:
    """``Vary: Accept-Encoding``: a cache must not hand a gzip body to a client that did not
    ask for one (set on every page, compressed or not, 304s included)."""
    existing = request.responseHeaders.getRawHeaders(b"vary") or []
    if not any(b"accept-encoding" in v.lower() for v in existing):
        request.responseHeaders.addRawHeader(b"vary", b"Accept-Encoding")


#: /metrics' level: 10,000 services' 7.0 MB become 647 KB in 15 ms (level 6: 557 KB in 44 ms),
#: in the metrics process, on every build a scraper asks gzip for.
METRICS_LEVEL = 1


def _gzip(body: bytes, level: int = LEVEL) -> bytes:
    return gzip.compress(body, compresslevel=level, mtime=0)


def metrics_body(text: bytes, compressed: bool) -> bytes:
    """The /metrics exposition as sent: gzip-compressed when the scraper accepts it."""
    return _gzip(text, METRICS_LEVEL) if compressed else text


async def _inline(body: bytes) -> bytes:
    return _gzip(body)


def thread_compressor(reactor: IReactorThreads) -> Compressor:
    """Compress large bodies in ``reactor``'s thread pool, small ones inline."""
    from twisted.internet.threads import deferToThreadPool

    async def compress(body: bytes) -> bytes:
        if len(body) < THREAD_SIZE:
            return _gzip(body)
        return await deferToThreadPool(reactor, reactor.getThreadPool(), _gzip, body)

    return compress


async def encode_page(request: IRequest, body: bytes,
                      compress: Compressor | None = None) -> bytes:
    """The page ``body`` as the client accepts it: gzip with ``Content-Encoding`` when it
    asks for it and the page is worth it, else as it is; ``Vary`` either way."""
    add_vary(request)
    if len(body) < MIN_SIZE or not accepts_gzip(request):
        return body
    packed = await (compress or _inline)(body)
    request.setHeader(b"content-encoding", b"gzip")
    return packed
