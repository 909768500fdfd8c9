"""What ``/metrics`` exposes from the database: every service and its latest perfdata.

Built for 10,000+ services on every scrape: only the columns a gauge needs, as light named
tuples; on MariaDB the rows travel as one JSON document per statement, because PyMySQL decodes
a row in Python (~13 us each: 30,000 rows were most of a scrape) while ``json.loads`` runs in C.
SQLite keeps plain rows: its driver is C already, and its JSON functions print doubles with 15
digits only (perfdata values and times must survive exactly).

A new per-service gauge adds a field to :class:`MetricsService` and its column to
:data:`METRICS_COLUMNS`, at the same place in both.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, NamedTuple

from overc.storage.db import Cursor, Database

#: ``(service id, label, value, unit)`` of one perfdata value.
LatestValue = tuple[int, str, float, str | None]


class MetricsService(NamedTuple):
    """One service as ``/metrics`` needs it."""

    id: int
    server_name: str
    name: str
    state: str | None
    stale: int
    acked: int
    silenced_until: float | None
    server_silenced_until: float | None
    last_time: float | None
    period: int | None
    duration: float | None = None
    run_late: int = 0
    flap_bits: int = 0


#: The SELECT list of :class:`MetricsService`, field by field (``s`` services, ``v`` servers).
METRICS_COLUMNS = (
    "s.id", "v.name", "s.name", "s.state", "s.stale", "s.acked", "s.silenced_until",
    "v.silenced_until", "s.last_time", "s.period", "s.duration", "s.run_late", "s.flap_bits",
)
assert len(METRICS_COLUMNS) == len(MetricsService._fields)


@dataclass
class MetricsSnapshot:
    #: Ordered by server name, then service name.
    services: list[MetricsService]
    #: The newest value of each (service, label), ordered by service id, then label.
    perfdata: list[LatestValue]


#: Services per transaction: SQLite has one connection and one writer, so a scrape of 10,000
#: services in one transaction held every push's commit for its whole length; in slices of this
#: size pushes commit between them (each slice is consistent; the scrape as a whole need not be).
CHUNK = 2000

_SERVICES_FROM = "FROM services s JOIN servers v ON v.id = s.server_id"


def _perfdata_from(cursor: Cursor) -> str:
    # Ingest writes a report's perfdata with the report's time, which becomes the service's
    # ``last_time``: so the join on ``perfdata.time = services.last_time`` finds exactly the
    # newest values, one index seek (``perfdata_time``) per service, whatever the history
    # length. "+p.service_id": the seek must be on perfdata_time (a few rows per timestamp),
    # never on perfdata_service_label_time (every row of the service); MySQL reads it as
    # p.service_id, and its optimizer picked perfdata_service_label_time anyway once many
    # rows shared a timestamp (300 ms instead of 100 for 10,000 services): the index is forced
    # there. A metric the plugin stopped reporting disappears with its next report.
    hint = " FORCE INDEX (perfdata_time)" if cursor.dialect.name == "mysql" else ""
    return (f"FROM services s {cursor.dialect.join_in_written_order} perfdata p{hint}"
            " ON p.time = s.last_time AND +p.service_id = s.id")


async def read_metrics(db: Database) -> MetricsSnapshot:
    """Every service, and the perfdata of its latest report: one transaction per
    :data:`CHUNK` services (by id), then ordered as :class:`MetricsSnapshot` says."""
    services: list[MetricsService] = []
    values: list[Any] = []
    after = 0
    while True:
        chunk, chunk_values = await db.run(_txn_metrics_chunk, after, CHUNK)
        services.extend(chunk)
        values.extend(chunk_values)
        if len(chunk) < CHUNK:
            break
        after = max(map(itemgetter(0), chunk))
    return _assembled(services, values)


def _assembled(services: list[MetricsService], values: list[Any]) -> MetricsSnapshot:
    services.sort(key=itemgetter(1, 2))  # code point order: SQLite's BINARY, utf8mb4_bin
    values.sort(key=itemgetter(4))  # by perfdata id: of a label reported twice, the last wins
    latest = {(v[0], v[1]): (v[0], v[1], v[2], v[3]) for v in values}
    return MetricsSnapshot(services=services, perfdata=sorted(latest.values()))


def _txn_metrics_chunk(cursor: Cursor, after: int, limit: int
                       ) -> tuple[list[MetricsService], list[Any]]:
    """Up to ``limit`` services with id > ``after`` (the lowest ids), and their latest
    perfdata rows ``(service id, label, value, unit, perfdata id)``."""
    columns = ", ".join(METRICS_COLUMNS)
    # The id bound of this slice first: the perfdata join then seeks from the same services.
    row = cursor.execute("SELECT MAX(id) FROM (SELECT s.id FROM services s WHERE s.id > ?"
                         " ORDER BY s.id LIMIT ?) ids", (after, limit)).fetchone()
    if not row or row[0] is None:
        return [], []
    where, bounds = "WHERE s.id > ? AND s.id <= ?", (after, row[0])
    perf_columns = "p.service_id, p.label, p.value, p.uom, p.id"
    if cursor.dialect.name == "mysql":
        rows = _json_rows(cursor, columns, f"{_SERVICES_FROM} {where}", bounds)
        values = _json_rows(cursor, perf_columns, f"{_perfdata_from(cursor)} {where}", bounds)
    else:
        rows = cursor.execute(f"SELECT {columns} {_SERVICES_FROM} {where}", bounds).fetchall()
        values = cursor.execute(f"SELECT {perf_columns} {_perfdata_from(cursor)} {where}"
                                " ORDER BY p.id", bounds).fetchall()
    return list(map(MetricsService._make, rows)), values


def _txn_metrics(cursor: Cursor) -> MetricsSnapshot:
    """The whole snapshot in one transaction (tests and small databases)."""
    return _assembled(*_txn_metrics_chunk(cursor, 0, 2**62))  # LIMIT: a 64-bit integer


def _json_rows(cursor: Cursor, columns: str, source: str, params: tuple = ()) -> list[Any]:
    """``SELECT columns source`` as one JSON document built by the database, parsed: a list
    of rows (lists). Strings travel JSON-escaped and MariaDB prints doubles exactly."""
    head, aggregate = cursor.dialect.json_array_aggregate(cursor)
    row = cursor.execute(f"{head}SELECT {aggregate}(JSON_ARRAY({columns})) {source}",
                         params).fetchone()
    return json.loads(row[0]) if row and row[0] else []
