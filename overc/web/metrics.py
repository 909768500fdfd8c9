"""``GET /metrics``: Prometheus text format (SPEC 8), same login as the read API.

Per-service gauges come from the database at scrape time (any process answers for all), the
perfdata of each service's latest report becomes gauges (a metric the plugin stops reporting
disappears with its next report), and OverC's own counters (reports, alerts, notifications by
result) are per process, counted by whoever does the work into the injected
:class:`~overc.core.counters.Counters`: Prometheus sums them across processes.
"""
from __future__ import annotations

from typing import Mapping

from twisted.internet.defer import Deferred, DeferredLock
from twisted.internet.interfaces import IReactorThreads, IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Request

from overc.core.counters import Counters
from overc.storage.db import DatabaseUnavailable
from overc.storage.queries import Queries
from overc.storage.read_metrics import MetricsChanges, ServiceRow
from overc.web.auth import Auth
from overc.web.compress import accepts_gzip, add_vary, metrics_body
from overc.web.http import answer_later
from overc.web.metrics_build import IncrementalMetrics
from overc.web.metrics_text import CounterValues, render_metrics
from overc.web.metrics_worker import MetricsWorker

__all__ = ["MetricsResource", "render_metrics"]

log = Logger()


class MetricsResource(Resource):
    """A leaf resource (not Klein): ``/metrics`` has no sub-paths and no trailing slash.

    A scrape of 10,000 services is ~100,000 lines: builds are incremental (each reads the rows
    and the perfdata that may have changed, and renders again only what changed:
    :mod:`overc.web.metrics_build`). The server builds in a process of its own
    (``worker``, :mod:`overc.web.metrics_worker`): even incremental, a build is tens of ms of
    Python, which in this process would hold the GIL every push needs. Without a worker (tests,
    a reactor that cannot spawn) it builds here, reading through ``queries`` and rendering in a
    thread of ``threads`` (inline when ``None``). A build is kept for :data:`CACHE_SECONDS`:
    scrapes that arrive while one is being built, or within that second, share it (several
    Prometheus servers, or a retrying one, cost one build).
    """

    isLeaf = True
    #: How long one exposition serves every scrape (its ages and counters are that old at most).
    CACHE_SECONDS = 1.0

    def __init__(self, queries: Queries, auth: Auth, clock: IReactorTime,
                 counters: Counters, threads: IReactorThreads | None = None,
                 worker: MetricsWorker | None = None) -> None:
        super().__init__()
        self.queries = queries
        self.auth = auth
        self.clock = clock
        self.counters = counters
        self.threads = threads
        self.worker = worker
        #: The last build's ``(time, body)``, plain (False) and gzip-compressed (True).
        self._cached: dict[bool, tuple[float, bytes]] = {}
        self._waiting: dict[bool, list[Deferred[bytes]]] = {False: [], True: []}
        self._one_build = DeferredLock()  # the builder and the worker take one at a time
        self.builder = IncrementalMetrics()

    async def read(self, known: Mapping[int, ServiceRow], perf_ids: Mapping[int, int],
                   since: int | None, rows_since: float | None = None) -> MetricsChanges:
        """The rows, and the perfdata that changed since the builder's last build."""
        return await self.queries.metrics_changes(known, perf_ids, since, rows_since)

    def render_GET(self, request: Request) -> int:
        return answer_later(request, self._metrics(request))

    render_HEAD = render_GET

    async def _metrics(self, request: Request) -> bytes:
        try:
            return await self._exposition(request)
        except DatabaseUnavailable:
            request.setResponseCode(503)
            request.setHeader(b"retry-after", b"5")
            return b"# database unreachable\n"
        except Exception:
            log.failure("/metrics failed")
            request.setResponseCode(500)
            return b"# internal error\n"

    async def _exposition(self, request: Request) -> bytes:
        if await self.auth.identify(request, basic=True) is None:
            request.setResponseCode(401)
            request.setHeader(b"www-authenticate", b'Basic realm="OverC", charset="UTF-8"')
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"log in: HTTP Basic credentials of a [ui] users account\n"
        compressed = accepts_gzip(request)
        body = await self._text(compressed)
        request.setHeader(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        add_vary(request)
        if compressed:
            request.setHeader(b"content-encoding", b"gzip")
        return body

    async def _text(self, compressed: bool) -> bytes:
        """The cached exposition, or the one being built, or a new one (gzip-compressed or
        not: Prometheus asks for gzip, which makes the ~7 MB of 10,000 services ~11 times
        smaller, and a curl without ``--compressed`` gets it plain)."""
        now = self.clock.seconds()
        cached = self._cached.get(compressed)
        if cached is not None and 0 <= now - cached[0] < self.CACHE_SECONDS:
            return cached[1]
        waiter: Deferred[bytes] = Deferred()
        waiting = self._waiting[compressed]
        waiting.append(waiter)
        if len(waiting) == 1:
            Deferred.fromCoroutine(self._build(now, compressed))
        return await waiter

    async def _build(self, now: float, compressed: bool) -> None:
        try:
            async with self._one_build:
                counters = self.counters.snapshot()
                if self.worker is not None:
                    body = await self.worker.build(now, counters, compressed)
                else:
                    body = await self._build_here(now, counters, compressed)
        except BaseException:
            failure = Failure()
            self.builder = IncrementalMetrics()  # a build that failed half-way: start afresh
            waiting, self._waiting[compressed] = self._waiting[compressed], []
            for waiter in waiting:
                waiter.errback(failure)
            return
        self._cached[compressed] = (now, body)
        waiting, self._waiting[compressed] = self._waiting[compressed], []
        for waiter in waiting:
            waiter.callback(body)

    async def _build_here(self, now: float, counters: CounterValues, compressed: bool
                          ) -> bytes:
        builder = self.builder
        changes = await self.read(builder.known, builder.perf_ids, builder.since,
                                  builder.rows_since)
        if self.threads is None:
            return _encoded(builder, changes, now, counters, compressed)
        return await deferToThreadPool(self.threads, self.threads.getThreadPool(),
                                       _encoded, builder, changes, now, counters, compressed)


def _encoded(builder: IncrementalMetrics, changes: MetricsChanges, now: float,
             counters: CounterValues, compressed: bool = False) -> bytes:
    builder.apply(changes)
    return metrics_body(builder.exposition(now, counters), compressed)

