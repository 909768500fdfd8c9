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
It also says which rows the next read needs (:attr:`IncrementalMetrics.rows_since`): those
changed since shortly before the last read, and every row once a minute.

Not thread-safe: one build at a time (the metrics process, or ``MetricsResource`` in a test).
"""
from __future__ import annotations

from collections import defaultdict
from overc.storage.read_metrics import (LatestValue, MetricsChanges, MetricsService, ServiceRow,
                                        service_of)
from overc.web import metrics_text as m


class _Entry:
    """One service as the previous build rendered it."""

    __slots__ = ("raw", "row", "head", "lines", "values", "perf")

    def __init__(self, raw: ServiceRow, row: MetricsService, head: str, lines: tuple,
                 values: list[LatestValue], perf: str) -> None:
        self.raw = raw  # as read: what the next read compares with
        self.row = row
        self.head = head
        self.lines = lines  # one line (or None) per static gauge, in STATIC order
        self.values = values
        self.perf = perf  # its overc_perfdata lines, joined ("" for none)


#: A build reads the service rows changed since the last build began, less this many seconds:
#: a row written before that began by a transaction that committed after (a long watchdog
#: batch), or stamped by a Galera node whose clock lags this one's, is still read...
LOOKBACK = 10.0
#: ... and every row is read again when the last full read is this old (database clock), so
#: that a transaction longer still shows within this time.
FULL_EVERY = 60.0

#: Services per block of kept text: a changed service renders its block's lines again (its
#: other gauges' lines are kept as strings; only the block's bytes are joined again).
BLOCK = 256

#: Indices (into SERVICE_GAUGES) of the gauges that depend on the row alone.
STATIC = [i for i, (name, _, _) in enumerate(m.SERVICE_GAUGES) if name not in m.TIME_DEPENDENT]


class IncrementalMetrics:
    def __init__(self) -> None:
        self._entries: dict[int, _Entry] = {}
        #: The rows of the last build by id, as read: the next read's ``known``.
        self.known: dict[int, ServiceRow] = {}
        #: The highest perfdata id read for each service (the next read's ``perf_ids``).
        self.perf_ids: dict[int, int] = {}
        self._servers: dict[int, tuple[str, float | None]] = {}
        self._marks: list[int] = []
        self._clock: float | None = None  # the database's clock at the last read
        self._full_clock: float | None = None  # ... at the last read of every row
        self._order: list[int] = []  # service ids by server name, then service name
        self._position: dict[int, int] = {}  # service id -> index in _order
        self._by_id: list[int] = []  # service ids in id order (the perfdata's order)
        self._id_position: dict[int, int] = {}
        self._blocks: list[list[bytes]] = []  # per BLOCK services of _order: STATIC's parts
        self._perf_blocks: list[bytes] = []  # per BLOCK services of _by_id: their perfdata
        self._rows: list[MetricsService] = []  # in that order
        self._heads: list[str] = []
        #: The text in order: encoded static parts, and the names of the gauges rendered at
        #: each build (TIME_DEPENDENT) where they go.
        self._segments: list[bytes | str] = []
        self._counts: dict[str, int] = {}

    @property
    def since(self) -> int | None:
        """The next read's ``since``: the older mark of the last two builds (see
        :func:`~overc.storage.read_metrics.read_metrics_changes`)."""
        return min(self._marks) if self._marks else None

    @property
    def rows_since(self) -> float | None:
        """The next read's ``rows_since`` (see :data:`LOOKBACK`); None: read every row."""
        if self._clock is None or self._full_clock is None:
            return None
        if self._clock - self._full_clock >= FULL_EVERY:
            return None
        return self._clock - LOOKBACK

    def apply(self, changes: MetricsChanges) -> None:
        """Take a read's rows and values; render again what changed."""
        entries = self._entries
        fresh, servers = changes.perfdata, changes.servers
        moved = {server_id for server_id, server in servers.items()
                 if self._servers.get(server_id) != server}  # renamed or (un)silenced
        rows = changes.rows
        if not {raw[1] for raw in rows.values()} <= servers.keys():  # a server went meanwhile
            rows = {service_id: raw for service_id, raw in rows.items() if raw[1] in servers}
        gone = [service_id for service_id in entries if service_id not in rows]
        for service_id in gone:
            del entries[service_id]
            self.perf_ids.pop(service_id, None)
        self.perf_ids.update(changes.perf_ids)
        # The ids to render again: new or changed rows (``known`` holds every entry's row, so
        # one comparison a service, in a comprehension), re-read values, moved servers.
        get = self.known.get
        ids = [service_id for service_id, raw in rows.items() if get(service_id) != raw]
        ids.extend(service_id for service_id in fresh
                   if service_id in rows and get(service_id) == rows[service_id])
        if moved:
            chosen = set(ids)
            ids.extend(service_id for service_id, raw in rows.items()
                       if raw[1] in moved and service_id not in chosen)
        dirty: list[MetricsService] = []
        raws: list[ServiceRow] = []
        for service_id in ids:
            raw, entry = rows[service_id], entries.get(service_id)
            name = entry.row.name if entry is not None else changes.names[service_id]
            dirty.append(service_of(raw, servers[raw[1]], name))
            raws.append(raw)
        renamed = any(servers[server_id][0] != self._servers.get(server_id, ("",))[0]
                      for server_id in moved)
        if dirty:
            heads = m.service_heads(dirty)
            columns = []
            for i in STATIC:
                name, _, column = m.SERVICE_GAUGES[i]
                columns.append([None if v is None else f"{name}{head}}} {v}"
                                for head, v in zip(heads, column(dirty, 0.0))])
            for k, row in enumerate(dirty):
                values = fresh[row.id] if row.id in fresh else entries[row.id].values
                entries[row.id] = _Entry(raws[k], row, heads[k], tuple(c[k] for c in columns),
                                         values, "\n".join(m.perfdata_lines(heads[k], values)))
        self._servers = servers
        if gone or renamed or len(entries) != len(self._order) or not self._marks:
            self._restructure()
        elif dirty:
            self._update([row.id for row in dirty], raws)
        self._marks = [*self._marks[-1:], changes.mark]
        self._clock = changes.clock
        if changes.full:
            self._full_clock = changes.clock

    def _restructure(self) -> None:
        """Services came or went, or a server was renamed: order and render every block."""
        entries = self._entries
        self._order = sorted(entries, key=lambda i: (entries[i].row.server_name,
                                                     entries[i].row.name))
        self._position = {service_id: k for k, service_id in enumerate(self._order)}
        self._by_id = sorted(entries)
        self._id_position = {service_id: k for k, service_id in enumerate(self._by_id)}
        ordered = [entries[service_id] for service_id in self._order]
        self._rows = [e.row for e in ordered]
        self._heads = [e.head for e in ordered]
        self._blocks = [self._block(start) for start in range(0, len(ordered), BLOCK)]
        self._perf_blocks = [self._perf_block(start)
                             for start in range(0, len(self._by_id), BLOCK)]
        self.known = {service_id: e.raw for service_id, e in entries.items()}
        self._finish()

    def _update(self, changed: list[int], raws: list[ServiceRow]) -> None:
        """Only rows changed: render again the blocks that hold them."""
        entries, position, id_position = self._entries, self._position, self._id_position
        blocks, perf_blocks = set(), set()
        for service_id, raw in zip(changed, raws):
            k = position[service_id]
            self._rows[k] = entries[service_id].row
            self.known[service_id] = raw
            blocks.add(k // BLOCK)
            perf_blocks.add(id_position[service_id] // BLOCK)
        for b in blocks:
            self._blocks[b] = self._block(b * BLOCK)
        for b in perf_blocks:
            self._perf_blocks[b] = self._perf_block(b * BLOCK)
        self._finish()

    def _block(self, start: int) -> list[bytes]:
        """The encoded lines of each static gauge for services ``start`` to ``start + BLOCK``
        in display order (each part ends with a newline, or is empty)."""
        entries = [self._entries[service_id] for service_id in self._order[start:start + BLOCK]]
        parts = []
        for k in range(len(STATIC)):
            lines = [e.lines[k] for e in entries if e.lines[k] is not None]
            parts.append(("\n".join(lines) + "\n").encode("utf-8") if lines else b"")
        return parts

    def _perf_block(self, start: int) -> bytes:
        lines = [perf for perf in (self._entries[service_id].perf
                                   for service_id in self._by_id[start:start + BLOCK]) if perf]
        return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""

    def _finish(self) -> None:
        counts: dict[str, int] = defaultdict(int)
        for row in self._rows:
            counts["STALE" if row.stale else (row.state or "NONE")] += 1
        self._counts = counts
        self._segments = self._static_segments()

    def _static_segments(self) -> list[bytes | str]:
        segments: list[bytes | str] = []
        parts: list[bytes] = []
        k = 0
        for name, help_text, _ in m.SERVICE_GAUGES:
            if name in m.TIME_DEPENDENT:
                if parts:
                    segments.append(b"".join(parts))
                    parts = []
                segments.append(name)
                continue
            parts.append((m.family(name, "gauge", help_text) + "\n").encode("utf-8"))
            parts.extend(block[k] for block in self._blocks)
            k += 1
        parts.append((m.family("overc_perfdata", "gauge", m.PERFDATA_HELP) + "\n").encode())
        parts.extend(self._perf_blocks)
        segments.append(b"".join(parts))
        return segments

    def exposition(self, now: float, counter_values: m.CounterValues) -> bytes:
        """The exposition text at ``now`` (UTF-8), from the rows of the last :meth:`apply`:
        the kept parts as they are, the gauges of :data:`~overc.web.metrics_text.TIME_DEPENDENT`
        and the tail (service counts, this process's counters) rendered now."""
        pieces: list[bytes] = []
        for segment in self._segments:
            if isinstance(segment, bytes):
                pieces.append(segment)
                continue
            name, help_text, column = m.SERVICE_GAUGES_BY_NAME[segment]
            lines = [m.family(name, "gauge", help_text)]
            lines.extend([f"{name}{head}}} {v}"
                          for head, v in zip(self._heads, column(self._rows, now))
                          if v is not None])
            pieces.append(("\n".join(lines) + "\n").encode("utf-8"))
        tail = m.tail_lines(self._counts, counter_values)
        pieces.append(("\n".join(tail) + "\n").encode("utf-8"))
        return b"".join(pieces)
