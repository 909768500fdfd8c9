"""The watchdog's part of SPEC 10.3 (server offline), inside its tick's transaction and under
its job lock (:mod:`overc.storage.watchdog_store`).

Order within a tick: servers that pushed again come back (``server-online``), then servers
whose deadline passed go offline (``server-offline``), then the services' deadlines are
claimed: a service of an offline server is marked stale with its ``offline`` alert held at
insert. No later step of the dispatcher decides anything, so nothing can race with it.
Every query goes through ``servers_watch`` (offline, deadline) or ``services_recheck``:
the cost follows the servers that expire or come back, not the servers that exist.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from overc.core.alerts import OFFLINE, SERVER_OFFLINE, SERVER_ONLINE
from overc.core.durations import Grace
from overc.core.server_offline import (
    HELD_SERVER_OFFLINE, offline_message, online_message, server_deadline, shortest_period,
)
from overc.core.states import FAIL, OK
from overc.core.watchdog_rules import offline_message as service_offline_message
from overc.storage.alert_tables import Dispatch
from overc.storage.db import Cursor
from overc.storage.rows import Columns, chunks, marks
from overc.storage.server_seen import allowance_sql

#: What the idle tick asks besides the services' own deadlines (one EXISTS each, one query).
PROBES = (
    "SELECT 1 FROM servers WHERE offline = 0 AND deadline < ?",
    "SELECT 1 FROM servers WHERE offline = 1 AND deadline >= 0",
    "SELECT 1 FROM services WHERE recheck < ?",
)


@dataclass
class ServerTick:
    offline: list[int] = field(default_factory=list)  # servers that went offline
    online: list[int] = field(default_factory=list)  # servers that came back
    rechecked: list[int] = field(default_factory=list)  # services notified after their return

    @property
    def alerts(self) -> int:
        return len(self.offline) + len(self.online) + len(self.rechecked)


def fresh_server_sql(grace: Grace) -> tuple[str, list[float]]:
    """:func:`overc.core.server_offline.fresh_server_deadline` over a ``servers`` row; the
    placeholder list is ``(now, ...)`` for the caller to prefix."""
    from overc.core.retry import AGENT_RETURN_WITHIN

    allowance, extra = allowance_sql("period", [], grace)
    # window + grace = allowance - period + max(period, 65 s)
    return (f"? + {allowance} - period + CASE WHEN period > ? THEN period ELSE ? END",
            [*extra, AGENT_RETURN_WITHIN, AGENT_RETURN_WITHIN])


def refresh(cursor: Cursor, now: float, grace: Grace, service_fresh: tuple[str, tuple]) -> int:
    """Restart awareness: after a gap in watching, no server deadline and no recheck may end
    before the agents turned away meanwhile can be back (the services' fresh window)."""
    expression, extra = fresh_server_sql(grace)
    cursor.execute(
        f"UPDATE servers SET deadline = {expression}"
        f" WHERE offline = 0 AND deadline < {expression}",
        (now, *extra, now, *extra),
    )
    refreshed = max(0, cursor.rowcount)
    service_expression, service_extra = service_fresh
    # ``recheck >= 0``: a range the recheck index answers (the bound alone is per row, and
    # would make SQLite read every service); recheck is a Unix time when it is set at all.
    cursor.execute(
        f"UPDATE services SET recheck = {service_expression}"
        f" WHERE recheck >= 0 AND recheck < {service_expression}",
        (now, *service_extra, now, *service_extra),
    )
    return refreshed


_BACK = Columns("Back", id="id", back="deadline", offline_since="offline_since",
                last_seen="last_seen", period="period")


def servers_back(cursor: Cursor, now: float, grace: Grace, limit: int,
                 service_fresh: tuple[str, tuple]) -> list[int]:
    """Offline servers that pushed again: online, one ``server-online`` alert each, and their
    services still stale get a fresh window to report before their ``offline`` alert is
    raised again, this time notified."""
    rows = _BACK.read_all(cursor.execute(
        f"SELECT {_BACK.sql} FROM servers WHERE offline = 1 AND deadline >= 0 LIMIT ?",
        (limit,)).fetchall())
    back = []
    for row in rows:
        cursor.execute(
            "UPDATE servers SET offline = 0, offline_since = NULL, deadline = ?"
            " WHERE id = ? AND offline = 1 AND deadline >= 0",
            (server_deadline(row.last_seen, row.period, grace), row.id))
        if cursor.rowcount != 1:
            continue
        back.append(row)
        held = [service_id for (service_id,) in cursor.execute(
            "SELECT DISTINCT service_id FROM alerts WHERE server_id = ? AND kind = ?"
            " AND held = ? AND time >= ?",
            (row.id, OFFLINE, HELD_SERVER_OFFLINE, row.offline_since or 0.0)).fetchall()]
        expression, extra = service_fresh
        for chunk in chunks(held):
            cursor.execute(
                f"UPDATE services SET recheck = {expression}"
                f" WHERE id IN ({marks(chunk)}) AND stale = 1",
                (now, *extra, *chunk))
    _insert(cursor, [(row.id, None, now, SERVER_ONLINE, OK,
                      online_message(row.back, row.offline_since), None, None, None)
                     for row in back])
    return [row.id for row in back]


_EXPIRED = Columns("Expired", id="id", last_seen="last_seen", period="period")


def claim_servers(cursor: Cursor, now: float, grace: Grace, limit: int) -> list[int]:
    """Servers whose deadline passed: check it against the shortest period of their live
    services (the stored one may be too short: a service went stale, changed its period or
    was deleted), then mark offline those truly overdue, one ``server-offline`` alert each."""
    rows = _EXPIRED.read_all(cursor.execute(
        f"SELECT {_EXPIRED.sql} FROM servers WHERE offline = 0 AND deadline < ?"
        " ORDER BY deadline LIMIT ?", (now, limit)).fetchall())
    if not rows:
        return []
    live: dict[int, tuple[Any, int]] = {}
    for chunk in chunks([row.id for row in rows]):
        for server_id, shortest, count in cursor.execute(
            "SELECT server_id, MIN(CASE WHEN stale = 0 THEN period END), COUNT(*)"
            f" FROM services WHERE server_id IN ({marks(chunk)}) GROUP BY server_id",
            chunk).fetchall():
            live[server_id] = (shortest, count)
    claimed = []
    for row in rows:
        shortest, count = live.get(row.id, (None, 0))
        period = shortest_period([shortest], row.period)
        deadline = server_deadline(row.last_seen or 0.0, period, grace)
        if deadline is None or deadline >= now:  # not overdue after all: the true deadline
            cursor.execute(
                "UPDATE servers SET period = ?, deadline = ?"
                " WHERE id = ? AND offline = 0 AND deadline < ?",
                (period, deadline, row.id, now))
            continue
        # Conditional: a push committed meanwhile moved the deadline and wins.
        cursor.execute(
            "UPDATE servers SET offline = 1, offline_since = last_seen, deadline = NULL"
            " WHERE id = ? AND offline = 0 AND deadline < ?", (row.id, now))
        if cursor.rowcount == 1:
            claimed.append((row, count))
    _insert(cursor, [(row.id, None, now, SERVER_OFFLINE, FAIL,
                      offline_message(now, row.last_seen, count), None, None, None)
                     for row, count in claimed])
    return [row.id for row, _ in claimed]


_RECHECK = Columns("Recheck", id="id", server_id="server_id", last_time="last_time",
                   period="period", state="state", info="info")


def claim_rechecks(cursor: Cursor, now: float, limit: int) -> list[int]:
    """Services of a server that came back whose fresh window passed: those still stale get
    their ``offline`` alert again, notified (held again if the server is offline again)."""
    lock = " FOR UPDATE" if cursor.dialect.name == "mysql" else ""
    # Only the watchdog (under its job lock) sets recheck, so clearing it is the claim; the
    # rows are locked on MySQL, so a report cannot clear stale in between.
    # ``stale + 0``: without it SQLite's planner prefers the (stale, deadline) index for the
    # equality and scans every live service (2-4 s a tick at 1,000,000); this way both
    # databases read only the few rows of the ``recheck`` index.
    rows = _RECHECK.read_all(cursor.execute(
        f"SELECT {_RECHECK.sql} FROM services WHERE recheck < ? AND stale + 0 = 1"
        f" ORDER BY recheck LIMIT ?{lock}", (now, limit)).fetchall())
    cursor.execute("UPDATE services SET recheck = NULL WHERE recheck < ? AND stale + 0 = 0",
                   (now,))
    offline: set[int] = set()
    for chunk in chunks([row.id for row in rows]):
        cursor.execute(f"UPDATE services SET recheck = NULL WHERE id IN ({marks(chunk)})",
                       chunk)
    for chunk in chunks(sorted({row.server_id for row in rows})):
        offline.update(server_id for (server_id,) in cursor.execute(
            f"SELECT id FROM servers WHERE id IN ({marks(chunk)}) AND offline = 1",
            chunk).fetchall())
    _insert(cursor, [(row.server_id, row.id, now, OFFLINE, FAIL,
                      service_offline_message(now, row.last_time, row.period), row.state,
                      row.info, HELD_SERVER_OFFLINE if row.server_id in offline else None)
                     for row in rows])
    return [row.id for row in rows]


def _insert(cursor: Cursor, rows: list[tuple]) -> None:
    # Only placeholders in VALUES: one multi-row INSERT on MySQL.
    cursor.executemany(
        "INSERT INTO alerts (server_id, service_id, time, kind, severity, message, state, info,"
        " held, dispatched) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(*row, Dispatch.PENDING.value) for row in rows],
    )


# -- The dispatcher's side: a server-online goes where its server-offline went ----------------

def told_of_servers(cursor: Cursor, alerts: list[Any]) -> dict[int, set[str]]:
    """Per ``server-online`` alert (:class:`overc.core.alerts.Alert`), the channels notified
    of its server's latest ``server-offline`` before it: the recovery goes to them whatever
    their ``min-severity``, as a service's does (:func:`overc.core.routing.route_alert`).
    Read from the notifications themselves, so a problem held by maintenance and never sent
    is never "recovered" either. Rare (a server back), so a query or two each."""
    told: dict[int, set[str]] = {}
    for alert in alerts:
        if alert.kind != SERVER_ONLINE:
            continue
        found = cursor.execute(
            "SELECT MAX(id) FROM alerts WHERE server_id = ? AND kind = ? AND id < ?",
            (alert.server_id, SERVER_OFFLINE, alert.id)).fetchone()
        problem = found[0] if found else None
        if problem is None:
            continue
        told[alert.id] = {channel for (channel,) in cursor.execute(
            "SELECT DISTINCT n.channel FROM notification_alerts na"
            " JOIN notifications n ON n.id = na.notification_id WHERE na.alert_id = ?",
            (problem,)).fetchall()}
    return told
