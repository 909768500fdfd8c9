"""Read queries for the UI, the read API and /metrics: plain dataclasses out, never cursors.

Each public coroutine is one ``Database.run`` of a ``_txn_*`` function (one transaction, so a
page never mixes two moments of the database). The overview reads every service in one query,
one JSON array per server: at 10,000 services that is cheaper than one query per server and
than 10,000 rows through the MySQL driver.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

from overc.storage.db import Cursor, Database

#: Longest info excerpt carried by list views (the service page reads the whole text).
EXCERPT = 300


@dataclass
class ServiceRow:
    id: int
    server_id: int
    name: str
    state: str | None
    info: str | None
    period: int | None
    last_time: float | None
    deadline: float | None
    stale: bool
    acked: bool
    ack_comment: str | None
    silenced_until: float | None
    silence_reason: str | None
    server_name: str = ""

    def as_json(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies every field and cost most of /api/servers.
        return {
            "id": self.id, "server_id": self.server_id, "name": self.name, "state": self.state,
            "info": self.info, "period": self.period, "last_time": self.last_time,
            "deadline": self.deadline, "stale": self.stale, "acked": self.acked,
            "ack_comment": self.ack_comment, "silenced_until": self.silenced_until,
            "silence_reason": self.silence_reason, "server_name": self.server_name,
        }


@dataclass
class ServerRow:
    id: int
    name: str
    ip: str | None
    created: float
    last_seen: float | None
    silenced_until: float | None
    silence_reason: str | None
    services: list[ServiceRow] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "ip": self.ip, "created": self.created,
            "last_seen": self.last_seen, "silenced_until": self.silenced_until,
            "silence_reason": self.silence_reason,
            "services": [s.as_json() for s in self.services],
        }


@dataclass
class StateRow:
    id: int
    time: float
    state: str
    info: str | None
    late: bool


@dataclass
class PerfPoint:
    time: float
    label: str
    value: float
    uom: str | None
    warn: str | None
    crit: str | None
    min: float | None
    max: float | None


@dataclass
class AlertRow:
    id: int
    server_id: int
    server_name: str
    service_id: int | None
    service_name: str | None
    time: float
    kind: str
    severity: str
    message: str
    state: str | None
    info: str | None
    delivery: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "server_id": self.server_id, "server_name": self.server_name,
            "service_id": self.service_id, "service_name": self.service_name,
            "time": self.time, "kind": self.kind, "severity": self.severity,
            "message": self.message, "state": self.state, "info": self.info,
            "delivery": dict(self.delivery),
        }


_SERVICE_COLUMNS = (
    "s.id, s.server_id, s.name, s.state, {info}, s.period, s.last_time, s.deadline, s.stale,"
    " s.acked, s.ack_comment, s.silenced_until, s.silence_reason, v.name"
)


def _service(row: tuple) -> ServiceRow:
    return ServiceRow(
        id=row[0], server_id=row[1], name=row[2], state=row[3], info=row[4], period=row[5],
        last_time=row[6], deadline=row[7], stale=bool(row[8]), acked=bool(row[9]),
        ack_comment=row[10], silenced_until=row[11], silence_reason=row[12],
        server_name=row[13],
    )


def _server(row: tuple) -> ServerRow:
    return ServerRow(id=row[0], name=row[1], ip=row[2], created=row[3], last_seen=row[4],
                     silenced_until=row[5], silence_reason=row[6])


_SERVER_COLUMNS = "id, name, ip, created, last_seen, silenced_until, silence_reason"


def _txn_servers(cursor: Cursor, after: int, limit: int | None, excerpt: int) -> list[ServerRow]:
    """Servers with id > after (by id), each with its services; ``limit=None`` means all."""
    sql = f"SELECT {_SERVER_COLUMNS} FROM servers WHERE id > ? ORDER BY id"
    params: list[Any] = [after]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    servers = [_server(r) for r in cursor.execute(sql, params).fetchall()]
    if not servers:
        return []
    by_id = {s.id: s for s in servers}
    info = f"SUBSTR(s.info, 1, {int(excerpt)})" if excerpt else "s.info"
    columns = _SERVICE_COLUMNS.format(info=info)
    rows = cursor.execute(
        f"SELECT {columns} FROM services s JOIN servers v ON v.id = s.server_id"
        " WHERE s.server_id >= ? AND s.server_id <= ? ORDER BY s.server_id, s.name",
        (servers[0].id, servers[-1].id),
    ).fetchall()
    for row in rows:
        server = by_id.get(row[1])
        if server is not None:
            server.services.append(_service(row))
    return servers


@dataclass
class OverviewServer:
    """A server on the overview: just what its card shows."""

    id: int
    name: str
    silenced_until: float | None
    silence_reason: str | None
    #: ``(id, name, state, info excerpt, stale, acked)`` per service: plain sequences, because
    #: the overview reads 10,000 of them per render and objects would cost more than the query.
    tiles: list[Sequence[Any]] = field(default_factory=list)


def _txn_overview(cursor: Cursor, excerpt: int) -> list[OverviewServer]:
    """Every server with its services' tile data: one row per server, its tiles as JSON.

    10,000 services as 10,000 rows cost the MySQL driver ~13 us each to read and decode in
    Python (most of the page on MariaDB); one JSON array per server is built by the database
    and parsed by ``json.loads`` in C. Strings travel JSON-escaped, so any text survives.
    """
    servers = {
        r[0]: OverviewServer(r[0], r[1], r[2], r[3])
        for r in cursor.execute(
            "SELECT id, name, silenced_until, silence_reason FROM servers").fetchall()
    }
    if cursor.dialect.name == "sqlite":
        head, aggregate = "", "json_group_array"
    elif _is_mariadb(cursor):
        # JSON_ARRAYAGG is capped by group_concat_max_len (1 MB by default): lift it for this
        # statement only, so a server with many services is never cut short.
        head, aggregate = "SET STATEMENT group_concat_max_len = 1073741824 FOR ", "JSON_ARRAYAGG"
    else:  # MySQL 8 has no SET STATEMENT: lift the cap for this pooled connection instead
        cursor.execute("SET SESSION group_concat_max_len = 1073741824")
        head, aggregate = "", "JSON_ARRAYAGG"
    for server_id, tiles in cursor.execute(
        f"{head}SELECT server_id, {aggregate}(JSON_ARRAY(id, name, state,"
        f" SUBSTR(info, 1, {int(excerpt)}), stale, acked)) FROM services GROUP BY server_id"
    ).fetchall():
        server = servers.get(server_id)
        if server is not None:
            server.tiles = json.loads(tiles)
    return list(servers.values())


def _txn_server(cursor: Cursor, server_id: int) -> ServerRow | None:
    row = cursor.execute(
        f"SELECT {_SERVER_COLUMNS} FROM servers WHERE id = ?", (server_id,)
    ).fetchone()
    if row is None:
        return None
    server = _server(row)
    columns = _SERVICE_COLUMNS.format(info="s.info")
    server.services = [
        _service(r)
        for r in cursor.execute(
            f"SELECT {columns} FROM services s JOIN servers v ON v.id = s.server_id"
            " WHERE s.server_id = ? ORDER BY s.name",
            (server_id,),
        ).fetchall()
    ]
    return server


def _txn_service(cursor: Cursor, service_id: int) -> ServiceRow | None:
    columns = _SERVICE_COLUMNS.format(info="s.info")
    row = cursor.execute(
        f"SELECT {columns} FROM services s JOIN servers v ON v.id = s.server_id WHERE s.id = ?",
        (service_id,),
    ).fetchone()
    return _service(row) if row else None


def _txn_states(
    cursor: Cursor, service_id: int, since: float, until: float, limit: int, after_id: int
) -> list[StateRow]:
    """Reports of one service in [since, until], oldest first; ``after_id`` breaks time ties."""
    rows = cursor.execute(
        "SELECT id, time, state, info, late FROM states WHERE service_id = ?"
        " AND ((time = ? AND id > ?) OR time > ?) AND time <= ? ORDER BY time, id LIMIT ?",
        (service_id, since, after_id, since, until, limit),
    ).fetchall()
    return [StateRow(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]


#: Reports per run of equal states that the service page lists (``views.collapse_runs``'s
#: ``keep_items``): on MariaDB only these rows' ``info`` and ``late`` are read.
RUN_DETAIL = 50


def _txn_recent_states(
    cursor: Cursor, service_id: int, since: float, limit: int, detail: int = RUN_DETAIL
) -> tuple[list[StateRow], StateRow | None]:
    """The newest ``limit`` reports since ``since`` (oldest first) and the one before them.

    Every row has its exact ``id``, ``time`` and ``state``. On MariaDB ``info`` and ``late`` are
    read only for the newest ``detail`` reports of each run of equal states (what the history
    lists; a run's newest report is among them); the other rows carry ``None`` and ``False``.
    """
    states = None
    if _is_mariadb(cursor):
        states = _recent_states_concat(cursor, service_id, since, limit, detail)
    if states is None:
        rows = cursor.execute(
            "SELECT id, time, state, info, late FROM states WHERE service_id = ? AND time >= ?"
            " ORDER BY time DESC, id DESC LIMIT ?",
            (service_id, since, limit),
        ).fetchall()
        states = [StateRow(r[0], r[1], r[2], r[3], bool(r[4])) for r in reversed(rows)]
    before_time = states[0].time if states else since
    prior = cursor.execute(
        "SELECT id, time, state, info, late FROM states WHERE service_id = ? AND time < ?"
        " ORDER BY time DESC, id DESC LIMIT 1",
        (service_id, before_time),
    ).fetchone()
    return states, (StateRow(prior[0], prior[1], prior[2], prior[3], bool(prior[4]))
                    if prior else None)


def _is_mariadb(cursor: Cursor) -> bool:
    """MariaDB (not MySQL 8): ``GROUP_CONCAT(... LIMIT n)`` and ``SET STATEMENT`` exist there."""
    if cursor.dialect.name == "sqlite":
        return False
    info = getattr(getattr(cursor.raw, "connection", None), "get_server_info", None)
    return bool(info and "mariadb" in str(info()).lower())


def _recent_states_concat(
    cursor: Cursor, service_id: int, since: float, limit: int, detail: int
) -> list[StateRow] | None:
    """MariaDB: the newest ``limit`` reports as one ``GROUP_CONCAT`` string, then ``info`` and
    ``late`` of the listed rows only; None when a state holds the separator (plain rows then).

    10,000 rows through pymysql cost ~110 ms, mostly per row; one string of ``id time state``
    items costs ~55 ms. MariaDB prints a DOUBLE in text with as many digits as it needs to
    read back exactly (``float()`` of it is the stored value; tests/ui checks it).
    """
    count, text = cursor.execute(
        "SET STATEMENT group_concat_max_len = 1073741824 FOR"
        " SELECT COUNT(*), GROUP_CONCAT(id, ' ', time, ' ', state"
        f" ORDER BY time DESC, id DESC SEPARATOR ',' LIMIT {int(limit)})"
        " FROM states WHERE service_id = ? AND time >= ?",
        (service_id, since),
    ).fetchone()
    expected = min(int(count), max(int(limit), 0))
    if not expected:
        return []
    items = text.split(",") if text else []
    if len(items) != expected:
        return None  # a state with a comma (ingest only writes OK/WARN/FAIL/UNK)
    states: list[StateRow] = []
    shown: dict[int, StateRow] = {}
    previous, position = None, 0
    for item in items:  # newest first
        row_id, when, state = item.split(" ", 2)
        row = StateRow(int(row_id), float(when), state, None, False)
        states.append(row)
        position = position + 1 if state == previous else 0
        previous = state
        if position < detail:
            shown[row.id] = row
    if shown:
        marks = ", ".join("?" for _ in shown)
        for row_id, info, late in cursor.execute(
            f"SELECT id, info, late FROM states WHERE service_id = ? AND id IN ({marks})",
            (service_id, *shown),
        ).fetchall():
            row = shown[row_id]
            row.info = info
            row.late = bool(late)
    states.reverse()
    return states


@dataclass
class PerfSeries:
    """One perfdata label over a time range, already reduced to ``columns`` time buckets.

    ``buckets`` are ``(column, low, high, sum, count)`` in column order; ``last`` is the newest
    point with its unit and thresholds (a chart needs them once)."""

    label: str
    buckets: list[tuple[int, float, float, float, int]]
    last: PerfPoint


def _bucket_sql(dialect_name: str) -> str:
    """The bucket of ``time`` as an integer: ``(time - start) * scale`` rounded down (>= 0)."""
    if dialect_name == "sqlite":
        return "CAST((time - ?) * ? AS INTEGER)"
    return "FLOOR((time - ?) * ?)"


def _txn_perfdata_series(
    cursor: Cursor, service_id: int, since: float, until: float, columns: int
) -> list[PerfSeries]:
    """Every label of a service since ``since``, grouped into ``columns`` equal time buckets by
    the database (20,000 points become a few hundred rows), plus the newest point per label."""
    scale = columns / ((until - since) or 1.0)
    bucket = _bucket_sql(cursor.dialect.name)
    rows = cursor.execute(
        f"SELECT label, {bucket} AS col, MIN(value), MAX(value), SUM(value), COUNT(*)"
        " FROM perfdata WHERE service_id = ? AND time >= ? GROUP BY label, col"
        " ORDER BY label, col",
        (since, scale, service_id, since),
    ).fetchall()
    series: list[PerfSeries] = []
    for label, col, low, high, total, count in rows:
        col = min(int(col), columns - 1)  # a report from the future: the last column
        if not series or series[-1].label != label:
            series.append(PerfSeries(label, [], None))  # type: ignore[arg-type]
        buckets = series[-1].buckets
        if buckets and buckets[-1][0] == col:
            _, b_low, b_high, b_total, b_count = buckets[-1]
            buckets[-1] = (col, min(low, b_low), max(high, b_high), b_total + total,
                           b_count + count)
        else:
            buckets.append((col, low, high, total, count))
    for one in series:
        row = cursor.execute(
            "SELECT time, value, uom, warn, crit, min, max FROM perfdata"
            " WHERE service_id = ? AND label = ? ORDER BY time DESC LIMIT 1",
            (service_id, one.label),
        ).fetchone()
        one.last = PerfPoint(row[0], one.label, *row[1:])
    return series


def _txn_has_table(cursor: Cursor, name: str) -> bool:
    if cursor.dialect.name == "sqlite":
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    else:
        sql = ("SELECT 1 FROM information_schema.tables"
               " WHERE table_schema = DATABASE() AND table_name = ?")
    return cursor.execute(sql, (name,)).fetchone() is not None


@dataclass(frozen=True)
class AlertFilter:
    server_id: int | None = None
    service_id: int | None = None
    server_name: str | None = None
    service_name: str | None = None
    kind: str | None = None
    severity: str | None = None
    since: float | None = None
    before_id: int | None = None
    limit: int = 100


def _txn_alerts(cursor: Cursor, filt: AlertFilter, delivery_table: str | None) -> list[AlertRow]:
    """Newest alerts first, keyset-paginated on id, with delivery counts when recorded."""
    where, params = ["1 = 1"], []
    for column, value in (
        ("a.server_id", filt.server_id), ("a.service_id", filt.service_id),
        ("v.name", filt.server_name), ("s.name", filt.service_name),
        ("a.kind", filt.kind), ("a.severity", filt.severity),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if filt.since is not None:
        where.append("a.time >= ?")
        params.append(filt.since)
    if filt.before_id is not None:
        where.append("a.id < ?")
        params.append(filt.before_id)
    params.append(filt.limit)
    rows = cursor.execute(
        "SELECT a.id, a.server_id, v.name, a.service_id, s.name, a.time, a.kind, a.severity,"
        " a.message, a.state, a.info FROM alerts a JOIN servers v ON v.id = a.server_id"
        " LEFT JOIN services s ON s.id = a.service_id"
        f" WHERE {' AND '.join(where)} ORDER BY a.id DESC LIMIT ?",
        params,
    ).fetchall()
    alerts = [AlertRow(*r) for r in rows]
    if alerts and delivery_table:
        ids = [a.id for a in alerts]
        marks = ", ".join("?" for _ in ids)
        by_id = {a.id: a for a in alerts}
        for alert_id, status, count in cursor.execute(
            "SELECT na.alert_id, n.status, COUNT(*) FROM notification_alerts na"
            " JOIN notifications n ON n.id = na.notification_id"
            f" WHERE na.alert_id IN ({marks}) GROUP BY na.alert_id, n.status",
            ids,
        ).fetchall():
            by_id[alert_id].delivery[str(status)] = int(count)
    return alerts


@dataclass
class Pulse:
    """A cheap fingerprint of everything a page shows: pages poll it and re-render on change."""

    token: str


def _txn_pulse(cursor: Cursor) -> Pulse:
    services = cursor.execute(
        "SELECT COUNT(*), MAX(last_time), SUM(stale), SUM(acked), SUM(silenced_until),"
        " SUM(COALESCE(deadline, 0)), MAX(id), SUM(id) FROM services"
    ).fetchone()
    servers = cursor.execute(
        "SELECT COUNT(*), MAX(id), SUM(silenced_until), MAX(last_seen) FROM servers"
    ).fetchone()
    alerts = cursor.execute("SELECT MAX(id) FROM alerts").fetchone()
    return Pulse(token="|".join(str(v) for v in (*services, *servers, *alerts)))


@dataclass
class MetricsSnapshot:
    services: list[ServiceRow]
    perfdata: list[tuple[int, str, float, str | None]]


def _txn_metrics(cursor: Cursor) -> MetricsSnapshot:
    """Every service, and the perfdata of its latest report.

    Ingest writes a report's perfdata with the report's time, which becomes the service's
    ``last_time``: so the join on ``perfdata.time = services.last_time`` finds exactly the
    newest values, one index seek (``perfdata_time``) per service, whatever the history length.
    A metric the plugin stopped reporting disappears with its next report instead of freezing.
    """
    columns = _SERVICE_COLUMNS.format(info="NULL")
    services = [
        _service(r)
        for r in cursor.execute(
            f"SELECT {columns} FROM services s JOIN servers v ON v.id = s.server_id"
            " ORDER BY v.name, s.name"
        ).fetchall()
    ]
    latest: dict[tuple[int, str], tuple[int, str, float, str | None]] = {}
    # "+p.service_id": the seek must be on perfdata_time (a few rows per timestamp), never on
    # perfdata_service_label_time (every row of the service); MySQL reads it as p.service_id.
    for service_id, label, value, uom in cursor.execute(
        f"SELECT p.service_id, p.label, p.value, p.uom FROM services s"
        f" {'CROSS ' if cursor.dialect.name == 'sqlite' else ''}JOIN perfdata p"
        " ON p.time = s.last_time AND +p.service_id = s.id ORDER BY p.id"
    ).fetchall():
        latest[(service_id, label)] = (service_id, label, value, uom)
    return MetricsSnapshot(services=services, perfdata=list(latest.values()))


class Queries:
    """The read side of the store, one coroutine per question a page or the API asks."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._delivery_table: str | None | bool = False  # False: not probed yet

    async def servers(
        self, after: int = 0, limit: int | None = None, excerpt: int = EXCERPT
    ) -> list[ServerRow]:
        return await self.db.run(_txn_servers, after, limit, excerpt)

    async def server(self, server_id: int) -> ServerRow | None:
        return await self.db.run(_txn_server, server_id)

    async def service(self, service_id: int) -> ServiceRow | None:
        return await self.db.run(_txn_service, service_id)

    async def states(
        self, service_id: int, since: float, until: float, limit: int, after_id: int = 0
    ) -> list[StateRow]:
        return await self.db.run(_txn_states, service_id, since, until, limit, after_id)

    async def recent_states(
        self, service_id: int, since: float, limit: int, detail: int = RUN_DETAIL
    ) -> tuple[list[StateRow], StateRow | None]:
        return await self.db.run(_txn_recent_states, service_id, since, limit, detail)

    async def overview(self, excerpt: int = EXCERPT) -> list[OverviewServer]:
        return await self.db.run(_txn_overview, excerpt)

    async def perfdata_series(
        self, service_id: int, since: float, until: float, columns: int
    ) -> list[PerfSeries]:
        return await self.db.run(_txn_perfdata_series, service_id, since, until, columns)

    async def alerts(self, filt: AlertFilter) -> list[AlertRow]:
        return await self.db.run(_txn_alerts, filt, await self._deliveries())

    async def pulse(self) -> Pulse:
        return await self.db.run(_txn_pulse)

    async def metrics(self) -> MetricsSnapshot:
        return await self.db.run(_txn_metrics)

    async def _deliveries(self) -> str | None:
        """The delivery-attempts table of the notifier, when its migration is in place."""
        if self._delivery_table is False or self._delivery_table is None:
            found = None
            if await self.db.run(_txn_has_table, "notification_alerts"):
                found = "notification_alerts"
            if found is None:
                return None  # probe again next time: the migration may arrive later
            self._delivery_table = found
        return self._delivery_table  # type: ignore[return-value]
