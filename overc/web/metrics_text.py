"""The ``/metrics`` exposition text (Prometheus text format, SPEC 8): pure functions.

:func:`render_metrics` renders a whole snapshot (the definition, and the oracle the
incremental builder of :mod:`overc.web.metrics_build` is tested against); the helpers below it
are shared by both, so a line is written by one piece of code.
"""
from __future__ import annotations

from collections import defaultdict
from operator import attrgetter, itemgetter
from typing import Callable, Iterable, Mapping

from overc.core.counters import Counters
from overc.core.policy import flapping_value
from overc.storage.read_metrics import LatestValue, MetricsService, MetricsSnapshot

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
    # _number(round(max(0.0, now - t), 3)) inlined: the one gauge rendered for every service
    # at every build (10,000 calls: 16 ms -> 6 ms).
    ages = [None if t is None else round(now - t if now - t > 0.0 else 0.0, 3)
            for t in map(itemgetter(8), services)]
    return [None if a is None else str(int(a)) if a.is_integer()
            else _SPECIAL.get(text := repr(a), text) for a in ages]


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


SERVICE_GAUGES_BY_NAME = {gauge[0]: gauge for gauge in SERVICE_GAUGES}

#: The gauges whose samples depend on ``now`` as well as on the row: an incremental build
#: (:mod:`overc.web.metrics_build`) renders them for every service at every build.
TIME_DEPENDENT = frozenset({"overc_service_silenced", "overc_service_last_report_age_seconds"})
assert TIME_DEPENDENT <= {name for name, _, _ in SERVICE_GAUGES}

PERFDATA_HELP = "Latest performance data value reported by a plugin"


def family(name: str, kind: str, help_text: str) -> str:
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}"


def service_heads(services: list[MetricsService]) -> list[str]:
    """Each service's label set, left open (``{server="..",service=".."``): perfdata adds
    more labels. Server names escaped once each."""
    servers: dict[str, str] = {}
    for server in map(itemgetter(1), services):
        if server not in servers:
            servers[server] = _escape(server)
    return [f'{{server="{servers[server]}",service="{_escape(name)}"'
            for server, name in map(itemgetter(1, 2), services)]


def perfdata_lines(head: str, values: Iterable[LatestValue]) -> list[str]:
    """The ``overc_perfdata`` lines of one service (``head``: :func:`service_heads`)."""
    return [f'overc_perfdata{head},label="{_escape(label)}",'
            f'uom="{_escape(uom) if uom else ""}"}} {_number(value)}'
            for _, label, value, uom in values]


def tail_lines(counts: Mapping[str, int], counter_values: CounterValues) -> list[str]:
    """``overc_services`` from the counts by displayed state, then the process's counters."""
    blocks = [family("overc_services", "gauge", "Services by displayed state")]
    for state in ("OK", "WARN", "FAIL", "UNK", "STALE", "NONE"):
        blocks.append(f'overc_services{{state="{state}"}} {counts.get(state, 0)}')
    for name, help_text in Counters.HELP.items():
        blocks.append(family(f"overc_{name}_total", "counter", help_text))
        for key, count in sorted(counter_values.get(name, {}).items()):
            blocks.append(f"overc_{name}_total{_labels(key)} {_number(count)}")
    return blocks


def render_metrics(snapshot: MetricsSnapshot, now: float, counter_values: CounterValues) -> str:
    """The exposition text; pure, so it tests without a database.

    ~100,000 lines for 10,000 services: the label set of each service is built once, each
    family is one comprehension over a column of values, and the text is joined once.
    """
    services = snapshot.services
    heads = service_heads(services)
    blocks: list[str] = []
    for name, help_text, column in SERVICE_GAUGES:
        blocks.append(family(name, "gauge", help_text))
        blocks.extend([f"{name}{head}}} {v}"
                       for head, v in zip(heads, column(services, now)) if v is not None])
    by_id = dict(zip(map(itemgetter(0), services), heads))
    blocks.append(family("overc_perfdata", "gauge", PERFDATA_HELP))
    blocks.extend([f'overc_perfdata{by_id[service_id]},label="{_escape(label)}",'
                   f'uom="{_escape(uom) if uom else ""}"}} {_number(value)}'
                   for service_id, label, value, uom in snapshot.perfdata
                   if service_id in by_id])
    counts: dict[str, int] = defaultdict(int)
    for s in services:
        counts["STALE" if s.stale else (s.state or "NONE")] += 1
    blocks.extend(tail_lines(counts, counter_values))
    return "\n".join(blocks) + "\n"
