"""``/metrics`` built incrementally: each service's lines are kept between scrapes.

A full build of 10,000 services is ~100,000 lines: ~160 ms of Python under the GIL (decoding
30,000 rows, then rendering), which every push waits behind. Between two scrapes 15 s apart
only the services that reported (about a quarter) or whose row changed otherwise (acks,
silences, the watchdog, renames) differ, so a build keeps, per service, its row, its label
head, its lines of the gauges that depend on the row alone and its perfdata lines, and renders
again only the services whose row changed or whose perfdata
:func:`~overc.storage.read_metrics.read_metrics_changes` read again. The gauges computed from
``now`` (silenced, last report age) are rendered for every service at every build, by the same
column functions as the full renderer: the text is always byte for byte what
:func:`~overc.web.metrics_text.render_metrics` makes of the same rows (tests/ui/test_metrics_build.py).

Not thread-safe: one build at a time (``MetricsResource`` runs one, in its thread pool).
"""
from __future__ import annotations

from collections import defaultdict
from operator import attrgetter
from overc.storage.read_metrics import LatestValue, MetricsChanges, MetricsService
from overc.web import metrics_text as m


class _Entry:
    """One service as the previous build rendered it."""

    __slots__ = ("row", "head", "lines", "values", "perf")

    def __init__(self, row: MetricsService, head: str, lines: tuple,
                 values: list[LatestValue], perf: str) -> None:
        self.row = row
        self.head = head
        self.lines = lines  # one line (or None) per static gauge, in STATIC order
        self.values = values
        self.perf = perf  # its overc_perfdata lines, joined ("" for none)


#: Indices (into SERVICE_GAUGES) of the gauges that depend on the row alone.
STATIC = [i for i, (name, _, _) in enumerate(m.SERVICE_GAUGES) if name not in m.TIME_DEPENDENT]


class IncrementalMetrics:
    def __init__(self) -> None:
        self._entries: dict[int, _Entry] = {}
        #: The rows of the last build by id: what the next read compares with.
        self.known: dict[int, MetricsService] = {}
        #: The highest perfdata id read for each service (the next read's ``perf_ids``).
        self.perf_ids: dict[int, int] = {}
        self._marks: list[int] = []
        self._rows: list[MetricsService] = []
        self._heads: list[str] = []
        self._static: list[list[str]] = []  # per static gauge: its lines, in service order
        self._perf: list[str] = []
        self._counts: dict[str, int] = {}

    @property
    def since(self) -> int | None:
        """The next read's ``since``: the older mark of the last two builds (see
        :func:`~overc.storage.read_metrics.read_metrics_changes`)."""
        return min(self._marks) if self._marks else None

    def apply(self, changes: MetricsChanges) -> None:
        """Take a read's rows and values; render again what changed."""
        entries = self._entries
        fresh = changes.perfdata
        dirty = [row for row in changes.services
                 if row.id in fresh or (e := entries.get(row.id)) is None or e.row != row]
        present = {row.id for row in changes.services}
        gone = [service_id for service_id in entries if service_id not in present]
        for service_id in gone:
            del entries[service_id]
            self.perf_ids.pop(service_id, None)
        self.perf_ids.update(changes.perf_ids)
        if dirty:
            heads = dict(zip(map(attrgetter("id"), dirty), m.service_heads(dirty)))
            columns = []
            for i in STATIC:
                name, _, column = m.SERVICE_GAUGES[i]
                columns.append([None if v is None else f"{name}{heads[row.id]}}} {v}"
                                for row, v in zip(dirty, column(dirty, 0.0))])
            for k, row in enumerate(dirty):
                values = fresh[row.id] if row.id in fresh else entries[row.id].values
                head = heads[row.id]
                entries[row.id] = _Entry(row, head, tuple(c[k] for c in columns), values,
                                         "\n".join(m.perfdata_lines(head, values)))
        if dirty or gone or not self._marks:
            rows = changes.services
            self._rows = rows
            ordered = [entries[row.id] for row in rows]
            self._heads = [e.head for e in ordered]
            self._static = [[e.lines[k] for e in ordered if e.lines[k] is not None]
                            for k in range(len(STATIC))]
            self._perf = [e.perf for _, e in sorted(entries.items()) if e.perf]
            counts: dict[str, int] = defaultdict(int)
            for row in rows:
                counts["STALE" if row.stale else (row.state or "NONE")] += 1
            self._counts = counts
            self.known = {row.id: row for row in rows}
        self._marks = [*self._marks[-1:], changes.mark]

    def render(self, now: float, counter_values: m.CounterValues) -> str:
        """The exposition at ``now``, from the rows of the last :meth:`apply`."""
        blocks: list[str] = []
        static = iter(self._static)
        for name, help_text, column in m.SERVICE_GAUGES:
            blocks.append(m.family(name, "gauge", help_text))
            if name in m.TIME_DEPENDENT:
                blocks.extend([f"{name}{head}}} {v}"
                               for head, v in zip(self._heads, column(self._rows, now))
                               if v is not None])
            else:
                blocks.extend(next(static))
        blocks.append(m.family("overc_perfdata", "gauge", m.PERFDATA_HELP))
        blocks.extend(self._perf)
        blocks.extend(m.tail_lines(self._counts, counter_values))
        return "\n".join(blocks) + "\n"

