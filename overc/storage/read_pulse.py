"""Cheap fingerprints of what one page shows: live pages poll them and re-render on change.

A few aggregate queries, scoped to the page's subject (``scope``), so an unchanged page costs
them and a 304 (``overc.ui.pages``), and a report from another server does not change a
server or service page's fingerprint. Silences that end by the clock count too (``now``), and
so do maintenance windows (SPEC 11): those not over yet, and which of them run at ``now`` (a
recurring window starts by the clock alone: the ``maintenance`` held reason and the marks
follow them), and a service's parent and its server's offline flag (its held reason).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from overc.storage.db import Cursor
from overc.storage.maintenance_store import current_windows


@dataclass
class Pulse:
    token: str


@dataclass(frozen=True)
class PulseScope:
    """What a page shows: everything (``kind="all"``), one server, one service, or the alerts."""

    kind: str = "all"
    id: int = 0


_SERVICES = ("SELECT COUNT(*), MAX(last_time), SUM(last_time), SUM(stale), SUM(acked),"
             " SUM(silenced_until),"
             " SUM(CASE WHEN silenced_until > ? THEN 1 ELSE 0 END),"
             " SUM(COALESCE(deadline, 0)), MAX(id), SUM(id) FROM services")
_SERVERS = ("SELECT COUNT(*), MAX(id), SUM(silenced_until),"
            " SUM(CASE WHEN silenced_until > ? THEN 1 ELSE 0 END), MAX(last_seen) FROM servers")
_ALERTS = "SELECT COUNT(*), MAX(id) FROM alerts"
#: A service page's held reason (overc.core.held) also follows its parent and its server.
_HELD_BY = ("SELECT v.offline, p.state, p.stale FROM services s"
            " JOIN servers v ON v.id = s.server_id"
            " LEFT JOIN services p ON p.server_id = s.server_id AND p.name = s.depends_on"
            " WHERE s.id = ?")
_DELIVERY = ("SELECT COUNT(*), MAX(id), SUM(attempts), SUM(COALESCE(finished, 0))"
             " FROM notifications")


def _queries(scope: PulseScope, now: float) -> list[tuple[str, tuple[Any, ...]]]:
    one = scope.id
    if scope.kind == "server":
        return [(_SERVICES + " WHERE server_id = ?", (now, one)),
                (_SERVERS + " WHERE id = ?", (now, one)),
                (_ALERTS + " WHERE server_id = ?", (one,)),
                (_DELIVERY + " WHERE server_id = ?", (one,))]
    if scope.kind == "service":
        return [(_SERVICES + " WHERE id = ?", (now, one)), (_HELD_BY, (one,)),
                (_ALERTS + " WHERE service_id = ?", (one,)),
                (_DELIVERY + " WHERE server_id = (SELECT server_id FROM services WHERE id = ?)",
                 (one,))]
    if scope.kind == "alerts":
        return [(_ALERTS, ()), (_DELIVERY, ())]
    return [(_SERVICES, (now,)), (_SERVERS, (now,)), (_ALERTS, ())]


def _windows(cursor: Cursor, scope: PulseScope, now: float) -> list[object]:
    if scope.kind == "alerts":
        return []
    server_id: int | None = None
    if scope.kind == "server":
        server_id = scope.id
    elif scope.kind == "service":
        row = cursor.execute("SELECT server_id FROM services WHERE id = ?",
                             (scope.id,)).fetchone()
        if row is None:
            return []
        server_id = row[0]
    return [(w.id, w.end, w.active(now)) for w in current_windows(cursor, now, server_id)]


def _txn_pulse(cursor: Cursor, scope: PulseScope = PulseScope(), now: float = 0.0) -> Pulse:
    parts: list[object] = [scope.kind, scope.id]
    for sql, params in _queries(scope, now):
        parts.extend(cursor.execute(sql, params).fetchone() or ())  # aggregates: one row
    parts.extend(_windows(cursor, scope, now))
    return Pulse(token="|".join(str(v) for v in parts))
