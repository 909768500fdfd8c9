"""``GET /metrics``: Prometheus text format (SPEC 8), same login as the read API.

Per-service gauges come from the database at scrape time (any process answers for all), the
perfdata of each service's latest report becomes gauges (a metric the plugin stops reporting
disappears with its next report), and OverC's own counters (reports, alerts, notifications by
result) are per process, counted by whoever does the work into the injected
:class:`~overc.core.counters.Counters`: Prometheus sums them across processes.
"""
from __future__ import annotations

from collections import defaultdict
from operator import attrgetter, itemgetter
from typing import Callable, Iterable, Mapping

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorThreads, IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Request

from overc.core.counters import Counters
from overc.core.policy import flapping_value
from overc.storage.db import DatabaseUnavailable
from overc.storage.queries import Queries
from overc.storage.read_metrics import MetricsService, MetricsSnapshot
from overc.web.auth import Auth
from overc.web.http import answer_later

log = Logger()

STATE_CODES = {"OK": 0, "WARN": 1, "FAIL": 2, "UNK": 3}

#: Counter values as :meth:`Counters.snapshot` returns them: name -> label pairs -> value.
CounterValues = Mapping[str, Mapping[tuple[tuple[str, str], ...], float]]


def _escape(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{_escape(str(v))}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


_SPECIAL = {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}


def _number(value: float) -> str:
    value = float(value)
    if value.is_integer():
        return str(int(value))
    text = repr(value)
    return _SPECIAL.get(text, text)


#: A gauge's samples: one value per service, in the snapshot's order (``None``: no sample).
Column = Callable[[list[MetricsService], float], list]


def _states(services: list[MetricsService], now: float) -> list:
    codes = STATE_CODES
    return [codes.get(state, -1) for state in map(itemgetter(3), services)]


def _silenced(services: list[MetricsService], now: float) -> list:
    return [int((s.silenced_until or 0.0) > now or (s.server_silenced_until or 0.0) > now)
            for s in services]


def _ages(services: list[MetricsService], now: float) -> list:
    return [None if t is None else _number(round(max(0.0, now - t), 3))
            for t in map(itemgetter(8), services)]


def _durations(services: list[MetricsService], now: float) -> list:
    return [None if d is None else _number(round(d, 3)) for d in map(attrgetter("duration"),
                                                                      services)]


def _flapping(services: list[MetricsService], now: float) -> list:
    return ["0" if not bits else _number(flapping_value(bits))
            for bits in map(attrgetter("flap_bits"), services)]


def _flags(field: str) -> Column:
    return lambda services, now: [int(v) for v in map(attrgetter(field), services)]


#: The per-service gauges in the order they are exposed: name, help text, and the samples of
#: all services at ``now``. A new gauge is one more line here (and its column in
#: :mod:`overc.storage.read_metrics`).
SERVICE_GAUGES: list[tuple[str, str, Column]] = [
    ("overc_service_state",
     "Last reported state: 0 OK, 1 WARN, 2 FAIL, 3 UNK (-1 never reported)", _states),
    ("overc_service_stale", "1 when the service missed its deadline", _flags("stale")),
    ("overc_service_acknowledged", "1 when a user acknowledged the problem", _flags("acked")),
    ("overc_service_silenced", "1 while the service or its server is silenced", _silenced),
    ("overc_service_last_report_age_seconds", "Seconds since the last report", _ages),
    ("overc_service_period_seconds", "Reporting period the service promised",
     lambda services, now: list(map(attrgetter("period"), services))),
    ("overc_service_duration_seconds",
     "How long the service's latest run took (start signal or reported duration)", _durations),
    ("overc_service_running_late",
     "1 when a started run exceeded its timeout and has not reported yet", _flags("run_late")),
    ("overc_service_flapping_percent",
     "Weighted state changes over the last 21 reports (SPEC 10.2)", _flapping),
]


def _family(name: str, kind: str, help_text: str) -> str:
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}"


def render_metrics(snapshot: MetricsSnapshot, now: float, counter_values: CounterValues) -> str:
    """The exposition text; pure, so it tests without a database.

    ~100,000 lines for 10,000 services: the label set of each service is built once, each
    family is one comprehension over a column of values, and the text is joined once.
    """
    services = snapshot.services
    servers: dict[str, str] = {}
    for server in map(itemgetter(1), services):
        if server not in servers:
            servers[server] = _escape(server)
    heads = [f'{{server="{servers[server]}",service="{_escape(name)}"'  # left open: perfdata
             for server, name in map(itemgetter(1, 2), services)]     # adds more labels
    blocks: list[str] = []
    for name, help_text, column in SERVICE_GAUGES:
        blocks.append(_family(name, "gauge", help_text))
        blocks.extend([f"{name}{head}}} {v}"
                       for head, v in zip(heads, column(services, now)) if v is not None])
    by_id = dict(zip(map(itemgetter(0), services), heads))
    blocks.append(_family("overc_perfdata", "gauge",
                          "Latest performance data value reported by a plugin"))
    blocks.extend([f'overc_perfdata{by_id[service_id]},label="{_escape(label)}",'
                   f'uom="{_escape(uom) if uom else ""}"}} {_number(value)}'
                   for service_id, label, value, uom in snapshot.perfdata
                   if service_id in by_id])
    counts: dict[str, int] = defaultdict(int)
    for s in services:
        counts["STALE" if s.stale else (s.state or "NONE")] += 1
    blocks.append(_family("overc_services", "gauge", "Services by displayed state"))
    for state in ("OK", "WARN", "FAIL", "UNK", "STALE", "NONE"):
        blocks.append(f'overc_services{{state="{state}"}} {counts.get(state, 0)}')
    for name, help_text in Counters.HELP.items():
        blocks.append(_family(f"overc_{name}_total", "counter", help_text))
        for key, count in sorted(counter_values.get(name, {}).items()):
            blocks.append(f"overc_{name}_total{_labels(key)} {_number(count)}")
    return "\n".join(blocks) + "\n"


class MetricsResource(Resource):
    """A leaf resource (not Klein): ``/metrics`` has no sub-paths and no trailing slash.

    A scrape of 10,000 services is ~100,000 lines: the text is rendered in a thread of
    ``threads`` (the reactor's pool; inline when ``None``, in tests) so the reactor keeps
    answering pushes meanwhile, and kept for :data:`CACHE_SECONDS`: scrapes that arrive while
    one is being built, or within that second, share it (several Prometheus servers, or a
    retrying one, cost one query).
    """

    isLeaf = True
    #: How long one exposition serves every scrape (its ages and counters are that old at most).
    CACHE_SECONDS = 1.0

    def __init__(self, queries: Queries, auth: Auth, clock: IReactorTime,
                 counters: Counters, threads: IReactorThreads | None = None) -> None:
        super().__init__()
        self.queries = queries
        self.auth = auth
        self.clock = clock
        self.counters = counters
        self.threads = threads
        self._cached: tuple[float, bytes] | None = None
        self._waiting: list[Deferred[bytes]] = []

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
        text = await self._text()
        request.setHeader(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        return text

    async def _text(self) -> bytes:
        """The cached exposition, or the one being built, or a new one."""
        now = self.clock.seconds()
        if self._cached is not None and 0 <= now - self._cached[0] < self.CACHE_SECONDS:
            return self._cached[1]
        waiter: Deferred[bytes] = Deferred()
        self._waiting.append(waiter)
        if len(self._waiting) == 1:
            Deferred.fromCoroutine(self._build(now))
        return await waiter

    async def _build(self, now: float) -> None:
        try:
            snapshot = await self.queries.metrics()
            counters = self.counters.snapshot()
            if self.threads is None:
                text = _encoded(snapshot, now, counters)
            else:
                text = await deferToThreadPool(self.threads, self.threads.getThreadPool(),
                                               _encoded, snapshot, now, counters)
        except BaseException:
            failure = Failure()
            waiting, self._waiting = self._waiting, []
            for waiter in waiting:
                waiter.errback(failure)
            return
        self._cached = (now, text)
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            waiter.callback(text)


def _encoded(snapshot: MetricsSnapshot, now: float, counters: CounterValues) -> bytes:
    return render_metrics(snapshot, now, counters).encode("utf-8")
