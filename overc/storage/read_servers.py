"""The servers and their services as the overview, the server page and the read API see them.

Each ``_txn_*`` runs in one transaction (``Database.run``) and returns plain dataclasses. The
overview reads every service in one query, one JSON array per server: at 10,000 services that
is cheaper than one query per server and than 10,000 rows through the MySQL driver.
"""
from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from typing import Any, Sequence

from overc.core.held import ServiceQuiet, held_reason, parent_holds
from overc.core.maintenance import WindowIndex
from overc.core.policy import DEFAULT_FLAPPING, flapping_value
from overc.storage.db import Cursor
from overc.storage.maintenance_store import window_index

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
    # SPEC 9: the promise of the latest report and the current run.
    schedule: str | None = None
    tz: str | None = None
    grace: float | None = None
    run_started: float | None = None
    run_timeout: int | None = None
    run_late: bool = False
    duration: float | None = None
    # SPEC 10: effective settings (and each one's source), soft state, flapping.
    attempts: int = 1
    flapping_thresholds: str = DEFAULT_FLAPPING
    depends_on: str | None = None
    settings_source: dict[str, str] = field(default_factory=dict)
    soft_state: str | None = None
    soft_count: int = 0
    flapping: bool = False
    flapping_percent: float = 0.0
    # SPEC 10.5: the acknowledgement lasts until OK (sticky) and/or ends at ack_expires.
    ack_sticky: bool = False
    ack_expires: float | None = None
    #: SPEC 10.3: its server stopped pushing (read with the service, for :attr:`held`).
    server_offline: bool = False
    #: Why a problem of it would not be notified now (:mod:`overc.core.held`); None: it would
    #: be, or the caller did not ask (no ``now``).
    held: str | None = None


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
    #: SPEC 10.3: the server stopped pushing; its deadline (None while offline).
    offline: bool = False
    deadline: float | None = None


@dataclass
class OverviewServer:
    """A server on the overview: just what its card shows."""

    id: int
    name: str
    silenced_until: float | None
    silence_reason: str | None
    #: SPEC 10.3: the server stopped pushing (one banner, its tiles dimmed).
    offline: bool = False
    #: ``(id, name, state, info excerpt, stale, acked, silenced_until)`` per service: plain sequences, because
    #: the overview reads 10,000 of them per render and objects would cost more than the query.
    tiles: list[Sequence[Any]] = field(default_factory=list)


#: The columns :func:`service_row` reads, in its order; ``{info}`` is the info expression.
SERVICE_COLUMNS = (
    "s.id, s.server_id, s.name, s.state, {info}, s.period, s.last_time, s.deadline, s.stale,"
    " s.acked, s.ack_comment, s.silenced_until, s.silence_reason, v.name,"
    " s.schedule, s.tz, s.grace, s.run_started, s.run_timeout, s.run_late, s.duration,"
    " s.attempts, s.flap_thresholds, s.depends_on, s.settings_source, s.soft_state,"
    " s.soft_count, s.flap_bits, s.flapping, s.ack_sticky, s.ack_expires, v.offline"
)
_SETTING_KEYS = ("attempts", "flapping", "depends_on")
_SERVER_COLUMNS = ("id, name, ip, created, last_seen, silenced_until, silence_reason, offline,"
                   " deadline")


def service_row(row: Sequence[Any]) -> ServiceRow:
    """A row of :data:`SERVICE_COLUMNS` as a :class:`ServiceRow`."""
    (service_id, server_id, name, state, info, period, last_time, deadline, stale, acked,
     ack_comment, silenced_until, silence_reason, server_name, schedule, tz, grace,
     run_started, run_timeout, run_late, duration, *noise, ack_sticky, ack_expires,
     server_offline) = row
    return ServiceRow(
        id=service_id, server_id=server_id, name=name, state=state, info=info, period=period,
        last_time=last_time, deadline=deadline, stale=bool(stale), acked=bool(acked),
        ack_comment=ack_comment, silenced_until=silenced_until, silence_reason=silence_reason,
        server_name=server_name, schedule=schedule, tz=tz, grace=grace,
        run_started=run_started, run_timeout=run_timeout, run_late=bool(run_late),
        duration=duration, ack_sticky=bool(ack_sticky), ack_expires=ack_expires,
        server_offline=bool(server_offline), **_noise(noise),
    )


def _noise(row: Sequence[Any]) -> dict[str, Any]:
    """The SPEC 10 fields of a :data:`SERVICE_COLUMNS` row (after ``v.name``)."""
    attempts, thresholds, depends_on, source, soft_state, soft_count, bits, flapping = row
    sources = (source or "").split("\n") if source else []
    return {
        "attempts": attempts or 1, "flapping_thresholds": thresholds or DEFAULT_FLAPPING,
        "depends_on": depends_on,
        "settings_source": dict(zip(_SETTING_KEYS, sources)) or dict.fromkeys(_SETTING_KEYS,
                                                                              "default"),
        "soft_state": soft_state, "soft_count": soft_count or 0, "flapping": bool(flapping),
        "flapping_percent": flapping_value(bits or 0),
    }


def _server_row(row: Sequence[Any]) -> ServerRow:
    server_id, name, ip, created, last_seen, silenced_until, silence_reason, offline, \
        deadline = row
    return ServerRow(id=server_id, name=name, ip=ip, created=created, last_seen=last_seen,
                     silenced_until=silenced_until, silence_reason=silence_reason,
                     offline=bool(offline), deadline=deadline)


def _attach_held(index: WindowIndex, services: Sequence[ServiceRow],
                 parents: dict[int, str]) -> None:
    """Set :attr:`ServiceRow.held` on rows read in this transaction: ``index`` holds the windows
    running now (read once per page), ``parents`` the services whose parent is down now."""
    for s in services:
        if not (index or s.server_offline or s.flapping or s.soft_state or s.acked
                or s.id in parents):
            continue  # nothing could hold it (the usual row): None, without the rule's object
        s.held = held_reason(ServiceQuiet(
            maintenance=bool(index) and index.covering(
                s.server_id, s.server_name, s.id, s.name) is not None,
            server_offline=s.server_offline, parent_hold=parents.get(s.id),
            flapping=s.flapping, soft_state=s.soft_state, soft_count=s.soft_count,
            attempts=s.attempts, acked=s.acked, state=s.state, stale=s.stale))


def _held_of_servers(cursor: Cursor, servers: Sequence[ServerRow], now: float) -> None:
    """The held reasons of every service of these servers: two queries (the maintenance
    windows) whatever their number; dependencies are judged on the rows read already. A
    server no running window can reach skips the per-service window check (10,000 services
    under one config glob window would otherwise cost 10,000 glob matches)."""
    index = window_index(cursor, now)
    nothing = WindowIndex((), now)
    for server in servers:
        reachable = index and (server.id in index.by_server or any(
            not w.servers or any(fnmatch.fnmatchcase(server.name, p) for p in w.servers)
            for w in index.globs))
        _attach_held(index if reachable else nothing, server.services,
                     parent_holds(server.services))


def _txn_servers(cursor: Cursor, after: int, limit: int | None, excerpt: int,
                 now: float | None = None) -> list[ServerRow]:
    """Servers with id > after (by id), each with its services; ``limit=None`` means all.
    With ``now``, each service carries its held reason at that time."""
    sql = f"SELECT {_SERVER_COLUMNS} FROM servers WHERE id > ? ORDER BY id"
    params: list[Any] = [after]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    servers = [_server_row(r) for r in cursor.execute(sql, params).fetchall()]
    if not servers:
        return []
    by_id = {s.id: s for s in servers}
    info = f"SUBSTR(s.info, 1, {int(excerpt)})" if excerpt else "s.info"
    columns = SERVICE_COLUMNS.format(info=info)
    rows = cursor.execute(
        f"SELECT {columns} FROM services s JOIN servers v ON v.id = s.server_id"
        " WHERE s.server_id >= ? AND s.server_id <= ? ORDER BY s.server_id, s.name",
        (servers[0].id, servers[-1].id),
    ).fetchall()
    for row in rows:
        service = service_row(row)
        server = by_id.get(service.server_id)
        if server is not None:
            server.services.append(service)
    if now is not None:
        _held_of_servers(cursor, servers, now)
    return servers


def _txn_overview(cursor: Cursor, excerpt: int) -> list[OverviewServer]:
    """Every server with its services' tile data: one row per server, its tiles as JSON.

    10,000 services as 10,000 rows cost the MySQL driver ~13 us each to read and decode in
    Python (most of the page on MariaDB); one JSON array per server is built by the database
    and parsed by ``json.loads`` in C. Strings travel JSON-escaped, so any text survives.
    """
    servers = {
        server_id: OverviewServer(server_id, name, silenced_until, silence_reason,
                                  bool(offline))
        for server_id, name, silenced_until, silence_reason, offline in cursor.execute(
            "SELECT id, name, silenced_until, silence_reason, offline FROM servers").fetchall()
    }
    head, aggregate = cursor.dialect.json_array_aggregate(cursor)
    for server_id, tiles in cursor.execute(
        f"{head}SELECT server_id, {aggregate}(JSON_ARRAY(id, name, state,"
        f" SUBSTR(info, 1, {int(excerpt)}), stale, acked, silenced_until))"
        " FROM services GROUP BY server_id"
    ).fetchall():
        server = servers.get(server_id)
        if server is not None:
            server.tiles = json.loads(tiles)
    return list(servers.values())


def _txn_server(cursor: Cursor, server_id: int, now: float | None = None) -> ServerRow | None:
    row = cursor.execute(
        f"SELECT {_SERVER_COLUMNS} FROM servers WHERE id = ?", (server_id,)
    ).fetchone()
    if row is None:
        return None
    server = _server_row(row)
    columns = SERVICE_COLUMNS.format(info="s.info")
    server.services = [
        service_row(r)
        for r in cursor.execute(
            f"SELECT {columns} FROM services s JOIN servers v ON v.id = s.server_id"
            " WHERE s.server_id = ? ORDER BY s.name",
            (server_id,),
        ).fetchall()
    ]
    if now is not None:
        _held_of_servers(cursor, [server], now)
    return server


@dataclass(frozen=True)
class _Related:
    id: int
    name: str
    depends_on: str | None
    state: str | None
    stale: bool


def _txn_service(cursor: Cursor, service_id: int, now: float | None = None) -> ServiceRow | None:
    """One service; with ``now``, with its held reason (one more query when it has a parent:
    its server's services that have a parent or are that parent, for the cycle rule)."""
    columns = SERVICE_COLUMNS.format(info="s.info")
    row = cursor.execute(
        f"SELECT {columns} FROM services s JOIN servers v ON v.id = s.server_id WHERE s.id = ?",
        (service_id,),
    ).fetchone()
    if row is None:
        return None
    service = service_row(row)
    if now is not None:
        parents: dict[int, str] = {}
        if service.depends_on:
            related = [_Related(i, name, parent, state, bool(stale)) for i, name, parent, state,
                       stale in cursor.execute(
                           "SELECT id, name, depends_on, state, stale FROM services"
                           " WHERE server_id = ? AND (depends_on IS NOT NULL OR name = ?)",
                           (service.server_id, service.depends_on)).fetchall()]
            parents = parent_holds(related)
        _attach_held(window_index(cursor, now), [service], parents)
    return service
