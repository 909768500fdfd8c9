"""What ``/metrics`` exposes from the database: every service and its latest perfdata.

Built for 10,000+ services on every scrape: only the columns a gauge needs, as light named
tuples; on MariaDB the rows travel as one JSON document per statement, because PyMySQL decodes
a row in Python (~13 us each: 30,000 rows were most of a scrape) while ``json.loads`` runs in C.
SQLite keeps plain rows: its driver is C already, and its JSON functions print doubles with 15
digits only (perfdata values and times must survive exactly).

A scrape after the first reads only what changed (:func:`read_metrics_changes`): every service
id, the rows changed since a time the caller gives (``services.changed_at``, which every
writer keeps: acks, silences and the watchdog change rows without a report), every server,
the latest perfdata only of the services whose values may have changed since the build whose
rows the caller keeps, and a service's name only once (ids are never reused: AUTOINCREMENT).
Which values may have changed is decided here, from what the schema guarantees.

A new per-service gauge adds a field to :class:`MetricsService` and its column to
:data:`METRICS_COLUMNS`, at the same place in both, and to :data:`ROW_COLUMNS` and
:func:`service_of`.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Mapping, NamedTuple, Sequence

from overc.storage.db import Cursor, Database
from overc.storage.rows import chunks, marks

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


# -- incremental reads -------------------------------------------------------------------------

#: A service's row as every incremental read fetches it: no names (a service is never renamed:
#: its name is read once; servers, ~1/10 as many, are read whole), no join. On MariaDB the JSON
#: of 10,000 such rows took the server ~30 ms instead of ~80 with the names from the join.
ROW_COLUMNS = ("s.id", "s.server_id", "s.state", "s.stale", "s.acked", "s.silenced_until",
               "s.last_time", "s.period", "s.duration", "s.run_late", "s.flap_bits")
_LAST_TIME = ROW_COLUMNS.index("s.last_time")

#: A row of :data:`ROW_COLUMNS` (a tuple, or a list on MariaDB: compare rows of one database).
ServiceRow = Sequence[Any]


def service_of(row: ServiceRow, server: tuple[str, float | None], name: str
               ) -> MetricsService:
    """The :class:`MetricsService` of a row, its server's ``(name, silenced_until)`` and its
    name."""
    return MetricsService(row[0], server[0], name, row[2], row[3], row[4], row[5], server[1],
                          row[6], row[7], row[8], row[9], row[10])


@dataclass
class MetricsChanges:
    """What an incremental read found (see :func:`read_metrics_changes`)."""

    #: Every service's row by id.
    rows: dict[int, ServiceRow]
    #: Every server: ``(name, silenced_until)`` by id (a row whose server is missing here was
    #: deleted while the read went on: leave it out).
    servers: dict[int, tuple[str, float | None]]
    #: The name of every service that was not in ``known``.
    names: dict[int, str]
    #: The latest values ``(service id, label, value, unit)`` by label, of every service whose
    #: values were read again (an empty list: it has none). A service that is new (not in
    #: ``known``) is always here; one missing here kept the values it had.
    perfdata: dict[int, list[LatestValue]]
    #: The highest perfdata id read for each service in :attr:`perfdata` (0: none).
    perf_ids: dict[int, int]
    #: The highest perfdata id when the read began (a later read's ``since``).
    mark: int
    #: The database's clock when the read began, Unix seconds (a later read's ``rows_since``).
    clock: float = 0.0
    #: Whether every service row was read (else those changed since ``rows_since``).
    full: bool = True


@dataclass
class _Marks:
    """What the perfdata table says before the services are read (one short transaction)."""

    #: MAX(id) now.
    top: int
    #: The oldest time among the rows with an id at or below ``since`` (None: no such row).
    bottom: float | None
    #: The highest perfdata id of each service that has rows with an id above ``since``.
    written: dict[int, int]
    #: The database's clock (Unix seconds), read first.
    clock: float = 0.0


async def read_metrics_changes(db: Database, known: Mapping[int, ServiceRow],
                               perf_ids: Mapping[int, int], since: int | None,
                               rows_since: float | None = None) -> MetricsChanges:
    """Every service row and server, and the latest perfdata of the services whose values may
    differ from what the caller kept: ``known`` (the rows it has, by id), ``perf_ids`` (the
    highest perfdata id it read for each) and ``since`` (a :attr:`MetricsChanges.mark` of a
    read made before it last read the values it keeps, the earlier the safer; None reads
    everything).

    A service's latest values are read again, in the same transaction as its row, when

    * it is new, or its ``last_time`` changed: ingest writes a report's perfdata with the
      report's time, which becomes ``last_time``, in one transaction;
    * it has a perfdata row above ``since`` and above the highest id read for it: a second
      report with the same time adds values without changing ``last_time`` (a late report's
      rows, dated before ``last_time``, cause a harmless read too);
    * retention may have deleted them. It deletes the oldest rows first, so a row purged since
      ``since`` was at most as old as every row at or below ``since`` that is still there:
      values at ``last_time`` can only be gone if ``last_time`` is at or below the oldest of
      those (:attr:`_Marks.bottom`), or if none is left.

    On MariaDB a transaction can commit after one holding higher ids: a row in flight when
    ``since`` was taken would be missed by the second rule, which is why the caller passes the
    older of its last two marks (an ingest transaction is shorter than a build interval).

    With ``rows_since`` (Unix seconds, the database's clock: a :attr:`MetricsChanges.clock`),
    only the rows changed at or after it are read (``services.changed_at``), in one
    transaction with every id: the others are taken from ``known``. A row changed before
    ``rows_since`` by a transaction that committed only after the caller's last read began
    is missed, which is why the caller passes a clock some seconds older than that read, and
    reads everything now and then (:class:`~overc.web.metrics_build.IncrementalMetrics`).
    """
    first = since is None or not known
    marks_now = await db.run(_txn_marks, None if first else since)
    if rows_since is not None and not first:
        found, new_names, values, value_ids = await db.run(_txn_changed, rows_since, known,
                                                           perf_ids, marks_now)
        return MetricsChanges(found, await db.run(_txn_servers), new_names, values, value_ids,
                              marks_now.top, marks_now.clock, full=False)
    rows: dict[int, ServiceRow] = {}
    names: dict[int, str] = {}
    perfdata: dict[int, list[LatestValue]] = {}
    read_ids: dict[int, int] = {}
    after = 0
    while True:
        chunk, chunk_names, values, ids = await db.run(
            _txn_changes_chunk, after, CHUNK, known, perf_ids, marks_now, first)
        rows.update((row[0], row) for row in chunk)
        names.update(chunk_names)
        perfdata.update(values)
        read_ids.update(ids)
        if len(chunk) < CHUNK:
            break
        after = chunk[-1][0]
    servers = await db.run(_txn_servers)
    return MetricsChanges(rows, servers, names, perfdata, read_ids, marks_now.top,
                          marks_now.clock)


def _txn_servers(cursor: Cursor) -> dict[int, tuple[str, float | None]]:
    if cursor.dialect.name == "mysql":
        found = _json_rows(cursor, "v.id, v.name, v.silenced_until", "FROM servers v")
    else:
        found = cursor.execute("SELECT id, name, silenced_until FROM servers").fetchall()
    return {server_id: (name, silenced) for server_id, name, silenced in found}


def _txn_marks(cursor: Cursor, since: int | None) -> _Marks:
    now = cursor.execute(f"SELECT {cursor.dialect.clock}").fetchone()
    clock = float(now[0]) if now else 0.0
    found = cursor.execute("SELECT MAX(id) FROM perfdata").fetchone()
    top = found[0] or 0 if found else 0
    if since is None:
        return _Marks(top, None, {}, clock)
    # perfdata_time from its oldest end: the first row at or below ``since`` ends the scan
    # (MariaDB chose a range scan of the primary key for MIN(time): 1 s for 1.7 M rows).
    hint = " FORCE INDEX (perfdata_time)" if cursor.dialect.name == "mysql" else ""
    oldest = cursor.execute(f"SELECT time FROM perfdata{hint} WHERE id <= ? ORDER BY time"
                            " LIMIT 1", (since,)).fetchone()
    # "+service_id": group the rows of the id range; with a plain column SQLite walked the
    # whole perfdata_service_label_time index instead (170 ms for 1.7 M rows).
    written = dict(cursor.execute("SELECT service_id, MAX(id) FROM perfdata WHERE id > ?"
                                  " GROUP BY +service_id", (since,)).fetchall())
    return _Marks(top, oldest[0] if oldest else None, written, clock)


def _txn_changes_chunk(cursor: Cursor, after: int, limit: int,
                       known: Mapping[int, ServiceRow], perf_ids: Mapping[int, int],
                       marks_now: _Marks, first: bool
                       ) -> tuple[list[ServiceRow], dict[int, str],
                                  dict[int, list[LatestValue]], dict[int, int]]:
    """Up to ``limit`` service rows with id > ``after`` (by id) and, read in the same
    transaction, the names of the new ones and the latest perfdata of those
    :func:`read_metrics_changes` says."""
    row = cursor.execute("SELECT MAX(id) FROM (SELECT s.id FROM services s WHERE s.id > ?"
                         " ORDER BY s.id LIMIT ?) ids", (after, limit)).fetchone()
    if not row or row[0] is None:
        return [], {}, {}, {}
    where, bounds = "WHERE s.id > ? AND s.id <= ?", (after, row[0])
    mysql = cursor.dialect.name == "mysql"
    columns = ", ".join(ROW_COLUMNS)
    source = f"FROM services s {where} ORDER BY s.id"
    if mysql:
        rows = _json_rows(cursor, columns, f"FROM services s {where}", bounds)
        rows.sort(key=itemgetter(0))
    else:
        rows = cursor.execute(f"SELECT {columns} {source}", bounds).fetchall()
    if first:  # everything: by the id range, not by lists of ids
        reread: list[int] = [r[0] for r in rows]
        names = _select(cursor, "s.id, s.name", f"FROM services s {where}", bounds)
        values = _select(cursor, _PERF_COLUMNS, f"{_perfdata_from(cursor)} {where}", bounds)
        return (rows, dict(names), *_latest_by_service(reread, values))
    reread, new = _to_read_again(rows, known, perf_ids, marks_now)
    return (rows, *_names_and_values(cursor, new, reread))


_PERF_COLUMNS = "p.service_id, p.label, p.value, p.uom, p.id"


def _to_read_again(rows: Sequence[ServiceRow], known: Mapping[int, ServiceRow],
                   perf_ids: Mapping[int, int], marks_now: _Marks
                   ) -> tuple[list[int], list[int]]:
    """The ids among ``rows`` whose latest values are to be read again, and the new ids.

    The rules of :func:`read_metrics_changes`, inlined (10,000 calls were ~10 ms): new,
    another last_time, at or below the bottom (none left: any), rows above what was read."""
    get, read_id = known.get, perf_ids.get
    bottom = math.inf if marks_now.bottom is None else marks_now.bottom
    written = marks_now.written
    reread = [r[0] for r in rows
              if (before := get(r[0])) is None or before[_LAST_TIME] != (t := r[_LAST_TIME])
              or (t is not None and t <= bottom)
              or (written and written.get(r[0], 0) > read_id(r[0], 0))]
    return reread, [r[0] for r in rows if r[0] not in known]


def _names_and_values(cursor: Cursor, new: list[int], reread: list[int]
                      ) -> tuple[dict[int, str], dict[int, list[LatestValue]], dict[int, int]]:
    """The names of ``new`` and the latest values of ``reread``, by lists of ids."""
    names: list[Any] = []
    values: list[Any] = []
    for ids in chunks(new):
        names += _select(cursor, "s.id, s.name",
                         f"FROM services s WHERE s.id IN ({marks(ids)})", tuple(ids))
    for ids in chunks(reread):
        values += _select(cursor, _PERF_COLUMNS,
                          f"{_perfdata_from(cursor)} WHERE s.id IN ({marks(ids)})", tuple(ids))
    return (dict(names), *_latest_by_service(reread, values))


def _txn_changed(cursor: Cursor, rows_since: float, known: Mapping[int, ServiceRow],
                 perf_ids: Mapping[int, int], marks_now: _Marks
                 ) -> tuple[dict[int, ServiceRow], dict[int, str],
                            dict[int, list[LatestValue]], dict[int, int]]:
    """Every service row, reading only those changed at or after ``rows_since`` (and the new
    ones) and taking the others from ``known``; then what :func:`_txn_changes_chunk` reads."""
    ids = [r[0] for r in _select(cursor, "s.id", "FROM services s", ())]
    columns = ", ".join(ROW_COLUMNS)
    fresh = {r[0]: r for r in _select(cursor, columns,
                                      f"FROM services s WHERE {cursor.dialect.changed_since}",
                                      (rows_since,))}
    unseen = [i for i in ids if i not in known and i not in fresh]  # never updated yet
    for chunk in chunks(unseen):
        fresh.update((r[0], r) for r in _select(
            cursor, columns, f"FROM services s WHERE s.id IN ({marks(chunk)})", tuple(chunk)))
    rows: dict[int, ServiceRow] = {}
    for service_id in ids:  # (on MariaDB a row may come or go between two statements)
        row = fresh.get(service_id) or known.get(service_id)
        if row is not None:
            rows[service_id] = row
    reread, new = _to_read_again(list(rows.values()), known, perf_ids, marks_now)
    return (rows, *_names_and_values(cursor, new, reread))


def _select(cursor: Cursor, columns: str, source: str, params: tuple) -> list[Any]:
    """Rows of ``SELECT columns source``: as one JSON document on MariaDB (module docstring)."""
    if cursor.dialect.name == "mysql":
        return _json_rows(cursor, columns, source, params)
    return cursor.execute(f"SELECT {columns} {source}", params).fetchall()


def _latest_by_service(service_ids: list[int], values: list[Any]
                       ) -> tuple[dict[int, list[LatestValue]], dict[int, int]]:
    """Rows ``(service id, label, value, unit, perfdata id)`` as each service's latest value
    per label (of a label reported twice, the higher id wins), ordered by label, and the
    highest perfdata id read for each service."""
    values.sort(key=itemgetter(4))
    latest = {(v[0], v[1]): (v[0], v[1], v[2], v[3]) for v in values}
    grouped: dict[int, list[LatestValue]] = {service_id: [] for service_id in service_ids}
    top = dict.fromkeys(service_ids, 0)
    for value in values:
        top[value[0]] = value[4]  # ascending ids: the last is the highest
    for value in sorted(latest.values()):
        grouped[value[0]].append(value)
    return grouped, top
