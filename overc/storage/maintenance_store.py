"""Maintenance windows in the database (SPEC 11): create, end, list, and the dispatch hooks.

The write side (:class:`MaintenanceStore`) serves the push API, the read/write API, the UI and
section 3's silences; each method is one transaction. The ``hold_*``/``release_*`` functions
run inside the dispatcher's transaction (:mod:`overc.storage.dispatch_store`), which is
serialized across processes by its coordination row: an alert is held by a committed write,
and the end of a window is claimed by the conditional write that moves its held alerts back to
dispatch (``dispatched = HELD`` -> ``PENDING``), so the catch-up is sent once however many
processes share the database. The rules themselves are :mod:`overc.core.maintenance`.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

from overc.core.maintenance import (
    CONFIG, PUSH, SILENCE, HeldAlert, ServiceNow, Window, WindowIndex, WindowRequest,
    decide_catch_up, told_status,
)
from overc.core.alerts import SERVER_OFFLINE, Alert
from overc.storage.alert_tables import ALERT_FROM, Dispatch, Job, lock_job
from overc.storage.db import Cursor, Database
from overc.storage.rows import Columns, chunks, marks

_WINDOW = Columns(
    "WindowRow", id="m.id", source="m.source", name="m.name", server_id="m.server_id",
    service_id="m.service_id", servers="m.servers", services="m.services",
    start="m.start_time", end="m.end_time", schedule="m.schedule", tz="m.tz",
    duration="m.duration", reason="m.reason", created_by="m.created_by",
    created="m.created", server_name="s.name", service_name="v.name",
)
_WINDOW_FROM = (" FROM maintenance m LEFT JOIN servers s ON s.id = m.server_id"
                " LEFT JOIN services v ON v.id = m.service_id")


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(json.loads(text)) if text else ()


def _window(row: Sequence[Any]) -> Window:
    r = _WINDOW.read(row)
    return Window(
        id=r.id, source=r.source, name=r.name, server_id=r.server_id, service_id=r.service_id,
        servers=_names(r.servers), services=_names(r.services), start=r.start, end=r.end,
        schedule=r.schedule, tz=r.tz or "UTC", duration=r.duration, reason=r.reason or "",
        created_by=r.created_by, created=r.created, server_name=r.server_name,
        service_name=r.service_name,
    )


def _select(cursor: Cursor, where: str, params: Sequence[Any] = ()) -> list[Window]:
    return [_window(row) for row in cursor.execute(
        f"SELECT {_WINDOW.sql}{_WINDOW_FROM} WHERE {where} ORDER BY m.id", params).fetchall()]


def live_windows(cursor: Cursor, now: float) -> list[Window]:
    """Windows that may run at ``now``: one-off ones not over yet (the ``end_time`` index) and
    every recurring one (few: config and UI schedules)."""
    return (_select(cursor, "m.end_time > ? AND m.start_time <= ?", (now, now))
            + _select(cursor, "m.schedule IS NOT NULL"))


def window_index(cursor: Cursor, now: float) -> WindowIndex:
    return WindowIndex(live_windows(cursor, now), now)


# -- Dispatch hooks (inside the dispatcher's transaction) ---------------------------------

def hold_alerts(cursor: Cursor, index: WindowIndex, alerts: Sequence[Alert]) -> list[int]:
    """Mark the alerts a running window covers as held by it; return their ids. Each alert
    costs the windows of its server plus the glob windows, never a scan of services."""
    if not index:
        return []
    held: dict[int, list[int]] = {}
    for alert in alerts:
        window = index.covering(alert.server_id, alert.server_name, alert.service_id,
                                alert.service_name)
        if window is not None:
            held.setdefault(window.id, []).append(alert.id)
    for window_id, ids in held.items():
        for chunk in chunks(ids):
            cursor.execute(
                f"UPDATE alerts SET dispatched = {Dispatch.HELD.value}, maintenance_id = ?"
                f" WHERE id IN ({marks(chunk)}) AND dispatched = {Dispatch.PENDING.value}",
                (window_id, *chunk),
            )
    return sorted(i for ids in held.values() for i in ids)


_HELD = Columns(
    "Held", id="a.id", server_id="a.server_id", server_name="s.name",
    service_id="a.service_id", service_name="v.name", state="v.state", stale="v.stale",
    acked="v.acked", kind="a.kind", server_offline="s.offline",
)


def release_held(cursor: Cursor, now: float, index: WindowIndex, limit: int) -> int:
    """Held alerts whose window is over go through the catch-up rule: per service at most its
    newest is sent back to dispatch, the others are superseded. Only alerts whose holding
    window is no longer running are read, so a long window holding many alerts costs nothing
    per tick and cannot keep the end of another window waiting."""
    running = index.ids()
    still = "" if not running else f" AND (a.maintenance_id IS NULL OR a.maintenance_id" \
        f" NOT IN ({marks(running)}))"
    rows = _HELD.read_all(cursor.execute(
        f"SELECT {_HELD.sql}{ALERT_FROM}"
        f" WHERE a.dispatched = {Dispatch.HELD.value}{still} ORDER BY a.id LIMIT ?",
        (*running, limit),
    ).fetchall())
    over = []
    for row in rows:
        window = index.covering(row.server_id, row.server_name, row.service_id,
                                row.service_name)
        if window is None:
            over.append(row)
        else:  # another window covers it (overlap): that one holds it now
            cursor.execute("UPDATE alerts SET maintenance_id = ? WHERE id = ?",
                           (window.id, row.id))
    if not over:
        return 0
    service_ids = sorted({row.service_id for row in over if row.service_id is not None})
    told = _told_status(cursor, service_ids)
    services = {
        row.service_id: ServiceNow(row.state, bool(row.stale), bool(row.acked),
                                   told.get(row.service_id))
        for row in over if row.service_id is not None and row.state is not None
    }
    decision = decide_catch_up([HeldAlert(row.id, row.service_id) for row in over], services)
    # SPEC 10.3: a server still offline at the window's end is owed its newest server-offline
    # (its services' offline alerts were held for it, so it is the one word about them).
    owed = {row.server_id: row.id for row in sorted(over, key=lambda row: row.id)
            if row.kind == SERVER_OFFLINE and row.server_offline}
    decision.supersede = [i for i in decision.supersede if i not in set(owed.values())]
    decision.notify = sorted([*decision.notify, *owed.values()])
    _move(cursor, decision.notify, Dispatch.PENDING)
    _move(cursor, decision.supersede, Dispatch.SUPERSEDED)
    return len(decision.notify)


def _move(cursor: Cursor, alert_ids: Sequence[int], status: Dispatch) -> None:
    for chunk in chunks(alert_ids):
        cursor.execute(
            f"UPDATE alerts SET dispatched = {status.value} WHERE id IN ({marks(chunk)})"
            f" AND dispatched = {Dispatch.HELD.value}", chunk,
        )


def _told_status(cursor: Cursor, service_ids: Sequence[int]) -> dict[int, str]:
    """What the channels were last told about each service's problem (services whose
    channels hold no problem, i.e. were told nothing or the recovery, are absent)."""
    told: dict[int, str] = {}
    for chunk in chunks(service_ids):
        for service_id, kind, state, severity in cursor.execute(
            "SELECT p.service_id, a.kind, a.state, a.severity FROM channel_problems p"
            f" LEFT JOIN alerts a ON a.id = p.alert_id WHERE p.service_id IN ({marks(chunk)})",
            chunk,
        ).fetchall():
            # A purged alert: unknown, so anything current differs from it.
            told[service_id] = told_status(kind, state, severity) if kind else "?"
    return told


# -- The write side ----------------------------------------------------------------------

def _insert(cursor: Cursor, request: WindowRequest, now: float) -> int:
    cursor.execute(
        "INSERT INTO maintenance (source, name, server_id, service_id, servers, services,"
        " start_time, end_time, schedule, tz, duration, reason, created_by, created)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (request.source, request.name, request.server_id, request.service_id,
         json.dumps(list(request.servers)) if request.servers else None,
         json.dumps(list(request.services)) if request.services else None,
         request.start, request.end, request.schedule,
         request.tz if request.schedule else None, request.duration, request.reason,
         request.created_by, now),
    )
    return cursor.lastrowid


class ScopeNotFound(Exception):
    """The server or service a window names does not exist."""


class WindowNotFound(Exception):
    pass


class ConfigWindow(Exception):
    """A window of the config file: it ends by editing the file, not through the API."""


def _txn_create(cursor: Cursor, request: WindowRequest, now: float) -> int:
    if request.server_id is not None and cursor.execute(
            "SELECT 1 FROM servers WHERE id = ?", (request.server_id,)).fetchone() is None:
        raise ScopeNotFound("server_id")
    if request.service_id is not None and cursor.execute(
            "SELECT 1 FROM services WHERE id = ? AND server_id = ?",
            (request.service_id, request.server_id)).fetchone() is None:
        raise ScopeNotFound("service_id")
    return _insert(cursor, request, now)


def _txn_end_push(cursor: Cursor, server_id: int, now: float) -> int:
    """End this server's push-created windows now (those not begun yet are dropped)."""
    cursor.execute("DELETE FROM maintenance WHERE source = ? AND server_id = ?"
                   " AND start_time > ?", (PUSH, server_id, now))
    cursor.execute("UPDATE maintenance SET end_time = ? WHERE source = ? AND server_id = ?"
                   " AND end_time > ?", (now, PUSH, server_id, now))
    return cursor.rowcount


def _txn_end(cursor: Cursor, window_id: int, now: float) -> None:
    found = _select(cursor, "m.id = ?", (window_id,))
    if not found:
        raise WindowNotFound()
    window = found[0]
    if window.source == CONFIG:
        raise ConfigWindow(window.name)
    if window.recurring or (window.start is not None and window.start > now):
        cursor.execute("DELETE FROM maintenance WHERE id = ?", (window_id,))
    elif window.end is not None and window.end > now:
        cursor.execute("UPDATE maintenance SET end_time = ? WHERE id = ? AND end_time > ?",
                       (now, window_id, now))
    if window.source == SILENCE:
        _clear_silence_columns(cursor, window)


def _clear_silence_columns(cursor: Cursor, window: Window) -> None:
    if window.service_id is not None:
        cursor.execute("UPDATE services SET silenced_until = NULL, silence_reason = NULL"
                       " WHERE id = ?", (window.service_id,))
    elif window.server_id is not None:
        cursor.execute("UPDATE servers SET silenced_until = NULL, silence_reason = NULL"
                       " WHERE id = ?", (window.server_id,))


def _txn_list(cursor: Cursor, now: float, server_id: int | None,
              recent: float) -> list[Window]:
    """Windows running or coming (and those over for less than ``recent`` seconds)."""
    scope = "" if server_id is None else " AND (m.server_id = ? OR m.server_id IS NULL)"
    params: tuple = () if server_id is None else (server_id,)
    return _select(cursor, f"(m.end_time > ? OR m.schedule IS NOT NULL){scope}",
                   (now - recent, *params))


def current_windows(cursor: Cursor, now: float, server_id: int | None = None) -> list[Window]:
    """Windows running or coming at ``now`` (of one server and the glob ones), one query: what
    the pages show, and what their live fingerprint (:mod:`overc.storage.read_pulse`) covers."""
    return _txn_list(cursor, now, server_id, 0.0)


def _txn_get(cursor: Cursor, window_id: int) -> Window | None:
    found = _select(cursor, "m.id = ?", (window_id,))
    return found[0] if found else None


def _txn_sync_config(cursor: Cursor, windows: tuple[WindowRequest, ...], now: float) -> None:
    """Make the config windows in the database those of this config file, keeping the id of
    a window whose section is still there. Several processes may start at once: the
    dispatcher's coordination row serializes them."""
    lock_job(cursor, Job.DISPATCH, now)
    existing = {name: window_id for window_id, name in cursor.execute(
        "SELECT id, name FROM maintenance WHERE source = ?", (CONFIG,)).fetchall()}
    for request in windows:
        window_id = existing.pop(request.name or "", None)
        if window_id is None:
            _insert(cursor, request, now)
            continue
        cursor.execute(
            "UPDATE maintenance SET servers = ?, services = ?, schedule = ?, tz = ?,"
            " duration = ?, reason = ? WHERE id = ?",
            (json.dumps(list(request.servers)) if request.servers else None,
             json.dumps(list(request.services)) if request.services else None,
             request.schedule, request.tz, request.duration, request.reason, window_id))
    for window_id in existing.values():
        cursor.execute("DELETE FROM maintenance WHERE id = ?", (window_id,))


def silence_window(cursor: Cursor, table: str, target_id: int, until: float | None,
                   reason: str | None, now: float) -> None:
    """Section 3's silence of one server or service, as a one-off window (inside the silence
    action's transaction): a new silence replaces the running one, ``until`` None ends it."""
    if table == "services":
        row = cursor.execute("SELECT server_id FROM services WHERE id = ?",
                             (target_id,)).fetchone()
        if row is None:
            return
        server_id, service_id = row[0], target_id
        scope, params = "service_id = ?", (service_id,)
    else:
        server_id, service_id = target_id, None
        scope, params = "server_id = ? AND service_id IS NULL", (server_id,)
    cursor.execute(f"UPDATE maintenance SET end_time = ? WHERE source = ? AND {scope}"
                   " AND end_time > ?", (now, SILENCE, *params, now))
    if until is not None:
        _insert(cursor, WindowRequest(source=SILENCE, start=now, end=until,
                                      server_id=server_id, service_id=service_id,
                                      reason=reason or ""), now)


class MaintenanceStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, request: WindowRequest, now: float) -> int:
        """A new window; ScopeNotFound names the field whose server or service is gone."""
        return await self.db.run(_txn_create, request, now)

    async def end_push(self, server_id: int, now: float) -> int:
        return await self.db.run(_txn_end_push, server_id, now)

    async def end(self, window_id: int, now: float) -> None:
        """End a running window now, or delete one not begun (or a recurring one)."""
        await self.db.run(_txn_end, window_id, now)

    async def list(self, now: float, server_id: int | None = None,
                   recent: float = 0.0) -> list[Window]:
        return await self.db.run(_txn_list, now, server_id, recent)

    async def get(self, window_id: int) -> Window | None:
        return await self.db.run(_txn_get, window_id)

    async def sync_config(self, windows: tuple[WindowRequest, ...], now: float) -> None:
        await self.db.run(_txn_sync_config, tuple(windows), now)
