"""``GET /metrics``: Prometheus text format (SPEC 8), same login as the read API.

Per-service gauges come from the database at scrape time (any process answers for all), the
perfdata of each service's latest report becomes gauges (a metric the plugin stops reporting
disappears with its next report), and OverC's own counters (reports, alerts, notifications by
result) are per process, counted by whoever does the work into the injected
:class:`~overc.core.counters.Counters`: Prometheus sums them across processes.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Mapping

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request

from overc.core.counters import Counters
from overc.storage.db import DatabaseUnavailable
from overc.storage.queries import Queries
from overc.storage.read_metrics import MetricsSnapshot
from overc.web.auth import Auth
from overc.web.http import answer_later

log = Logger()

STATE_CODES = {"OK": 0, "WARN": 1, "FAIL": 2, "UNK": 3}

#: Counter values as :meth:`Counters.snapshot` returns them: name -> label pairs -> value.
CounterValues = Mapping[str, Mapping[tuple[tuple[str, str], ...], float]]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{_escape(str(v))}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


def _number(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def render_metrics(snapshot: MetricsSnapshot, now: float, counter_values: CounterValues) -> str:
    """The exposition text; pure, so it tests without a database."""
    out: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")

    services = snapshot.services
    # The label set of a service once, not once per family: 10,000 services x 6 families.
    servers: dict[str, str] = {}
    for s in services:
        if s.server_name not in servers:
            servers[s.server_name] = _escape(s.server_name)
    labels = [f'{{server="{servers[s.server_name]}",service="{_escape(s.name)}"}}'
              for s in services]
    rows = list(zip(services, labels))
    family("overc_service_state", "gauge",
           "Last reported state: 0 OK, 1 WARN, 2 FAIL, 3 UNK (-1 never reported)")
    out.extend(f"overc_service_state{lab} {STATE_CODES.get(s.state or '', -1)}" for s, lab in rows)
    family("overc_service_stale", "gauge", "1 when the service missed its deadline")
    out.extend(f"overc_service_stale{lab} {int(s.stale)}" for s, lab in rows)
    family("overc_service_acknowledged", "gauge", "1 when a user acknowledged the problem")
    out.extend(f"overc_service_acknowledged{lab} {int(s.acked)}" for s, lab in rows)
    family("overc_service_silenced", "gauge", "1 while the service or its server is silenced")
    out.extend(f"overc_service_silenced{lab}"
               f" {int(bool(s.silenced_until and s.silenced_until > now))}" for s, lab in rows)
    family("overc_service_last_report_age_seconds", "gauge", "Seconds since the last report")
    out.extend(f"overc_service_last_report_age_seconds{lab}"
               f" {_number(round(max(0.0, now - s.last_time), 3))}"
               for s, lab in rows if s.last_time is not None)
    family("overc_service_period_seconds", "gauge", "Reporting period the service promised")
    out.extend(f"overc_service_period_seconds{lab} {s.period}"
               for s, lab in rows if s.period is not None)
    family("overc_service_duration_seconds", "gauge",
           "How long the service's latest run took (start signal or reported duration)")
    out.extend(f"overc_service_duration_seconds{lab} {_number(round(s.duration, 3))}"
               for s, lab in rows if s.duration is not None)
    family("overc_service_running_late", "gauge",
           "1 when a started run exceeded its timeout and has not reported yet")
    out.extend(f"overc_service_running_late{lab} {int(s.run_late)}" for s, lab in rows)
    family("overc_service_flapping_percent", "gauge",
           "Weighted state changes over the last 21 reports (SPEC 10.2)")
    out.extend(f"overc_service_flapping_percent{lab} {_number(s.flapping_percent)}"
               for s, lab in rows)
    by_id = {s.id: lab[:-1] for s, lab in rows}  # the service's labels, left open
    family("overc_perfdata", "gauge", "Latest performance data value reported by a plugin")
    for service_id, label, value, uom in sorted(snapshot.perfdata, key=lambda p: (p[0], p[1])):
        head = by_id.get(service_id)
        if head is None:
            continue
        out.append(f'overc_perfdata{head},label="{_escape(label)}",uom="{_escape(uom or "")}"}}'
                   f" {_number(value)}")
    counts: dict[str, int] = defaultdict(int)
    for s in services:
        counts["STALE" if s.stale else (s.state or "NONE")] += 1
    family("overc_services", "gauge", "Services by displayed state")
    for state in ("OK", "WARN", "FAIL", "UNK", "STALE", "NONE"):
        out.append(f'overc_services{{state="{state}"}} {counts.get(state, 0)}')
    for name, help_text in Counters.HELP.items():
        family(f"overc_{name}_total", "counter", help_text)
        for key, value in sorted(counter_values.get(name, {}).items()):
            out.append(f"overc_{name}_total{_labels(key)} {_number(value)}")
    return "\n".join(out) + "\n"


class MetricsResource(Resource):
    """A leaf resource (not Klein): ``/metrics`` has no sub-paths and no trailing slash."""

    isLeaf = True

    def __init__(self, queries: Queries, auth: Auth, clock: IReactorTime,
                 counters: Counters) -> None:
        super().__init__()
        self.queries = queries
        self.auth = auth
        self.clock = clock
        self.counters = counters

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
        now = self.clock.seconds()
        snapshot = await self.queries.metrics()
        request.setHeader(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        return render_metrics(snapshot, now, self.counters.snapshot()).encode("utf-8")
