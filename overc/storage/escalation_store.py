"""Escalation and the end of acknowledgements (SPEC 10.5), inside the dispatcher's transaction.

A channel with ``after`` is not told about a service problem at once: the dispatch records an
``escalations`` row (channel, service) due ``after`` seconds after the problem became hard, and
each dispatch reads only the rows that are due (the ``due`` index), as repeats do. When a row
comes due the problem must still be there and unacknowledged (:mod:`overc.core.escalation`);
the channel is then told with the newest problem alert and, being told, it gets repeats and
the recovery like any other channel. An acknowledgement parks the row (due NULL); the end of
an acknowledgement without a state change (expiry, or a user removing it) re-arms parked
escalations and repeats, so a channel whose ``after`` passed meanwhile gets the problem then.
"""
from __future__ import annotations

from typing import Callable, Sequence

from overc.core.alerts import Alert
from overc.core.escalation import EscalationAction, ack_active, decide_escalation, escalation_due
from overc.core.maintenance import WindowIndex
from overc.core.routing import Route
from overc.storage.alert_tables import create_notification
from overc.storage.db import Cursor
from overc.storage.dependency_store import held_now
from overc.storage.rows import Columns, chunks, marks

#: ``remember(cursor, channel, service_id, alert_id, repeat_due)``: the channel was told.
Remember = Callable[[Cursor, str, int, int, "float | None"], None]


def anything_due(cursor: Cursor, now: float) -> bool:
    """An escalation or the expiry of an acknowledgement is due: two index probes."""
    return (
        cursor.execute("SELECT 1 FROM escalations WHERE due <= ? LIMIT 1", (now,)).fetchone()
        is not None
        or cursor.execute("SELECT 1 FROM services WHERE ack_expires <= ? LIMIT 1",
                          (now,)).fetchone() is not None
    )


def end_expired_acks(cursor: Cursor, now: float, limit: int) -> int:
    """Acknowledgements whose expiry passed end now; their parked repeats and escalations
    resume. Returns how many ended."""
    ids = [service_id for (service_id,) in cursor.execute(
        "SELECT id FROM services WHERE ack_expires <= ? ORDER BY ack_expires LIMIT ?",
        (now, limit)).fetchall()]
    for chunk in chunks(ids):
        cursor.execute(
            "UPDATE services SET acked = 0, ack_sticky = 0, ack_expires = NULL"
            f" WHERE id IN ({marks(chunk)}) AND ack_expires <= ?", (*chunk, now))
    resume(cursor, ids, now)
    return len(ids)


def resume(cursor: Cursor, service_ids: Sequence[int], now: float) -> None:
    """The acknowledgement of these services ended without a state change: repeats and
    escalations it parked are due now (a channel with no ``repeat`` parks again at once)."""
    for chunk in chunks(service_ids):
        cursor.execute(f"UPDATE channel_problems SET repeat_due = ? WHERE service_id IN"
                       f" ({marks(chunk)}) AND repeat_due IS NULL", (now, *chunk))
        cursor.execute(f"UPDATE escalations SET due = ? WHERE service_id IN ({marks(chunk)})"
                       " AND due IS NULL", (now, *chunk))


def delay(cursor: Cursor, alert: Alert, names: list[str], told: set[str],
          routes: dict[str, Route]) -> list[str]:
    """The channels of a service problem alert that are told now; the others (``after``, not
    told about this problem yet) get an escalation row, or keep theirs with the newest alert.

    A channel with a waiting row that this alert no longer reaches (the problem fell below its
    ``min-severity``) forgets it.
    """
    assert alert.service_id is not None
    now_names = []
    waiting = []
    for name in names:
        after = routes[name].after
        if after is None or name in told:
            now_names.append(name)
            continue
        waiting.append(name)
        cursor.execute(
            "UPDATE escalations SET alert_id = ?, due = COALESCE(due, since + ?)"
            " WHERE channel = ? AND service_id = ?", (alert.id, after, name, alert.service_id))
        if cursor.rowcount == 0:
            cursor.execute(
                "INSERT INTO escalations (channel, service_id, alert_id, since, due)"
                " VALUES (?, ?, ?, ?, ?)",
                (name, alert.service_id, alert.id, alert.time,
                 escalation_due(alert.time, after)))
    cursor.execute(
        "DELETE FROM escalations WHERE service_id = ?"
        + (f" AND channel NOT IN ({marks(waiting)})" if waiting else ""),
        (alert.service_id, *waiting))
    return now_names


def forget(cursor: Cursor, service_id: int) -> None:
    """The problem is over: channels still waiting never hear of it (nor of its recovery)."""
    cursor.execute("DELETE FROM escalations WHERE service_id = ?", (service_id,))


def carry_newest(cursor: Cursor, alerts: Sequence[Alert]) -> None:
    """Alerts held by a sticky acknowledgement (WARN -> FAIL) are not sent, but the repeats
    and escalations that resume when it expires carry them: the truth, not the older state."""
    for alert in alerts:
        if alert.service_id is None or not alert.is_problem:
            continue
        for table in ("channel_problems", "escalations"):
            cursor.execute(f"UPDATE {table} SET alert_id = ? WHERE service_id = ?",
                           (alert.id, alert.service_id))


_DUE = Columns(
    "DueEscalation", channel="e.channel", service_id="e.service_id", alert_id="e.alert_id",
    server_id="v.server_id", state="v.state", stale="v.stale", acked="v.acked",
    ack_expires="v.ack_expires", server_name="s.name", service_name="v.name",
)


def queue_escalations(cursor: Cursor, now: float, routes: dict[str, Route], limit: int,
                      windows: WindowIndex, remember: Remember) -> int:
    """Tell the channels whose escalations are due, one notification per server and channel;
    returns how many notifications were created."""
    rows = _DUE.read_all(cursor.execute(
        f"SELECT {_DUE.sql} FROM escalations e"
        " JOIN services v ON v.id = e.service_id JOIN servers s ON s.id = v.server_id"
        " WHERE e.due <= ? ORDER BY e.due LIMIT ?", (now, limit)).fetchall())
    groups: dict[tuple[int, str], list[tuple[int, int]]] = {}
    parent_down = held_now(cursor, [row.service_id for row in rows]) if rows else {}
    for row in rows:
        key = (row.channel, row.service_id)
        route = routes.get(row.channel)
        decision = decide_escalation(
            now, state=row.state, stale=bool(row.stale),
            acked=ack_active(bool(row.acked), row.ack_expires, now),
            in_maintenance=windows.covering(row.server_id, row.server_name, row.service_id,
                                            row.service_name) is not None,
            parent_down=row.service_id in parent_down)
        if route is None or decision.action in (EscalationAction.DROP, EscalationAction.SEND):
            cursor.execute("DELETE FROM escalations WHERE channel = ? AND service_id = ?", key)
            if route is not None and decision.action == EscalationAction.SEND:
                groups.setdefault((row.server_id, row.channel), []).append(
                    (row.alert_id, row.service_id))
            continue
        cursor.execute("UPDATE escalations SET due = ? WHERE channel = ? AND service_id = ?",
                       (decision.next_due, *key))
    created = 0
    for (server_id, channel), told in groups.items():
        ids = [alert_id for alert_id, _ in told]
        present = {alert_id for (alert_id,) in cursor.execute(
            f"SELECT id FROM alerts WHERE id IN ({marks(ids)})", ids).fetchall()}
        if not present:  # purged by retention: nothing left to tell
            continue
        repeat = routes[channel].repeat
        for alert_id, service_id in told:
            if alert_id in present:
                remember(cursor, channel, service_id, alert_id,
                         now + repeat if repeat else None)
        create_notification(cursor, now, channel, server_id, "alert", sorted(present))
        created += 1
    return created
