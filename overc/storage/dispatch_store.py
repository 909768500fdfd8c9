"""The dispatcher's storage: new alerts become notifications, grouped per server and channel.

One dispatch is one transaction serialized across processes by the ``coordination`` row: it
holds the alerts a maintenance window covers (silences are windows too), releases what a
finished window still owes (:mod:`overc.storage.maintenance_store`), holds the alerts of
children whose parent is down and catches up on them once it is back
(:mod:`overc.storage.dependency_store`), routes the new alerts
(rules from :mod:`overc.core.routing` and :mod:`overc.core.repeats`), and queues due repeats
and escalations (:mod:`overc.storage.escalation_store`).
This module only moves rows; delivery of the notifications is :mod:`overc.storage.delivery_store`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from overc.core.alerts import SERVER_OFFLINE, SERVER_ONLINE, Alert
from overc.core.maintenance import WindowIndex, WindowRequest
from overc.core.repeats import RepeatAction, decide_repeat
from overc.core.routing import Route, group_by_server, route_alert
from overc.core.states import OK
from overc.storage.alert_tables import (
    ALERT, ALERT_FROM, Dispatch, Job, create_notification, lock_job, read_alert,
)
from overc.storage.db import Cursor, Database
from overc.storage.dependency_store import (
    catch_up_children, catch_up_due, held_now, hold_dependents,
)
from overc.storage import escalation_store as escalation
from overc.storage.maintenance_store import _txn_sync_config, hold_alerts, release_held, window_index
from overc.storage.rows import Columns, chunks, marks
from overc.storage.server_watch import told_of_servers


@dataclass(frozen=True)
class DispatchResult:
    notifications: int = 0
    alerts: int = 0
    held: int = 0
    released: int = 0
    repeats: int = 0
    caught_up: int = 0  # children notified because their parent is back (SPEC 10.4)
    escalated: int = 0  # notifications to channels whose `after` passed (SPEC 10.5)
    more: bool = False  # the batch was full: call again


class DispatchStore:
    def __init__(self, db: Database, config_windows: Sequence[WindowRequest] = ()) -> None:
        self.db = db
        #: ``[maintenance:*]`` windows, written to the database before the first dispatch.
        self.config_windows: tuple[WindowRequest, ...] | None = tuple(config_windows)

    async def dispatch(self, now: float, routes: Sequence[Route], *,
                       limit: int = 1000) -> DispatchResult:
        """Turn new alerts into notifications (grouped per server and channel), hold those a
        maintenance window covers, release what a finished window owes, and queue repeats."""
        if self.config_windows is not None:
            await self.db.run(_txn_sync_config, self.config_windows, now)
            self.config_windows = None
        return await self.db.run(_txn_dispatch, now, tuple(routes), limit)


def _txn_dispatch(cursor: Cursor, now: float, routes: tuple[Route, ...],
                  limit: int) -> DispatchResult:
    # Nothing new, nothing held, no repeat, escalation or catch-up due (the usual second): a
    # read-only answer.
    waiting = f"{Dispatch.PENDING.value}, {Dispatch.HELD.value}"
    if (
        cursor.execute(f"SELECT 1 FROM alerts WHERE dispatched IN ({waiting}) LIMIT 1"
                       ).fetchone() is None
        and cursor.execute("SELECT 1 FROM channel_problems WHERE repeat_due <= ? LIMIT 1",
                           (now,)).fetchone() is None
        and not escalation.anything_due(cursor, now)
        and not catch_up_due(cursor)
    ):
        return DispatchResult()
    lock_job(cursor, Job.DISPATCH, now)
    windows = window_index(cursor, now)  # maintenance windows and silences (SPEC 11)
    escalation.end_expired_acks(cursor, now, limit)  # their repeats and escalations resume
    released = release_held(cursor, now, windows, limit)
    caught_up = catch_up_children(cursor, now, limit)  # queued as new alerts: routed below
    by_name = {route.name: route for route in routes}

    rows = cursor.execute(
        f"SELECT {ALERT.sql}{ALERT_FROM}"
        f" WHERE a.dispatched = {Dispatch.PENDING.value} ORDER BY a.id LIMIT ?",
        (limit,),
    ).fetchall()
    alerts = [read_alert(row) for row in rows]
    # Two kinds of hold: an alert recorded with a reason (flapping) is never notified; one a
    # maintenance window covers waits for the window's end (Dispatch.HELD).
    kept_back = {a.id for a in alerts if hold_reason(a) is not None}
    # A parent that is down holds its children's alerts the same way (SPEC 10.4).
    kept_back |= hold_dependents(cursor, [a for a in alerts if a.id not in kept_back])
    held = hold_alerts(cursor, windows, [a for a in alerts if a.id not in kept_back])
    held_set = set(held) | kept_back
    live = [a for a in alerts if a.id not in held_set]
    escalation.carry_newest(cursor, [a for a in alerts if a.held == "acknowledged"])
    escalating = any(route.after is not None for route in routes)

    told = _told(cursor, sorted({a.service_id for a in live if a.service_id is not None}))
    servers_told = told_of_servers(cursor, live)  # SPEC 10.3: server-online after -offline
    # ... and where this run routes a server-offline, its server-online later in the run goes
    # too (told_of_servers reads notifications, which this run creates only at its end).
    offline_now: dict[int, list[str]] = {}
    channels_of: dict[int, list[str]] = {}
    for alert in live:
        if alert.service_id is not None:
            already = told.get(alert.service_id, set())
        elif alert.kind == SERVER_ONLINE and alert.server_id in offline_now:
            already = set(offline_now[alert.server_id])
        else:
            already = servers_told.get(alert.id, set())
        names = route_alert(routes, alert, already)
        if alert.kind == SERVER_OFFLINE:
            offline_now[alert.server_id] = names
        if escalating and alert.service_id is not None and alert.is_problem:
            names = escalation.delay(cursor, alert, names, already, by_name)  # `after`
        channels_of[alert.id] = names
        if alert.service_id is None:
            continue
        if alert.is_problem:
            for name in names:
                repeat = by_name[name].repeat
                _remember_problem(cursor, name, alert.service_id, alert.id,
                                  now + repeat if repeat else None)
                told.setdefault(alert.service_id, set()).add(name)
        elif alert.state is None or alert.state.upper() == OK:
            # Recovered: forget who was told, so the next problem starts afresh.
            cursor.execute("DELETE FROM channel_problems WHERE service_id = ?",
                           (alert.service_id,))
            escalation.forget(cursor, alert.service_id)
            told.pop(alert.service_id, None)
    groups = group_by_server(live, channels_of)
    for (server_id, channel), members in groups.items():
        create_notification(cursor, now, channel, server_id, "alert", [a.id for a in members])

    repeats = _queue_repeats(cursor, now, by_name, limit, windows)
    escalated = escalation.queue_escalations(cursor, now, by_name, limit, windows,
                                            _remember_problem)
    _set_dispatched(cursor, [a.id for a in live] + sorted(kept_back), Dispatch.DISPATCHED)
    return DispatchResult(
        notifications=len(groups) + repeats + escalated, alerts=len(live),
        held=len(held) + len(kept_back), released=released, repeats=repeats,
        caught_up=caught_up, escalated=escalated, more=len(rows) >= limit,
    )


def hold_reason(alert: Alert) -> str | None:
    """Why an alert is recorded but never notified (``flapping``, SPEC 10), or None.
    (``depends on <parent>`` is decided at dispatch: :mod:`overc.storage.dependency_store`.)

    Such an alert is marked dispatched with no notification; a maintenance window (a silence
    is one), which only delays, is a different matter (``Dispatch.HELD``, released at its end).
    """
    return alert.held


def _set_dispatched(cursor: Cursor, alert_ids: Sequence[int], status: Dispatch,
                    only_from: Dispatch | None = None) -> None:
    condition = "" if only_from is None else f" AND dispatched = {only_from.value}"
    for chunk in chunks(alert_ids):
        cursor.execute(
            f"UPDATE alerts SET dispatched = {status.value} WHERE id IN ({marks(chunk)})"
            + condition, chunk,
        )


def _told(cursor: Cursor, service_ids: Sequence[int]) -> dict[int, set[str]]:
    """The channels already told about each service's current problem."""
    told: dict[int, set[str]] = {}
    for chunk in chunks(service_ids):
        for channel, service_id in cursor.execute(
            f"SELECT channel, service_id FROM channel_problems"
            f" WHERE service_id IN ({marks(chunk)})", chunk
        ).fetchall():
            told.setdefault(service_id, set()).add(channel)
    return told


def _remember_problem(cursor: Cursor, channel: str, service_id: int, alert_id: int,
                      repeat_due: float | None) -> None:
    cursor.execute(
        "UPDATE channel_problems SET alert_id = ?, repeat_due = ?"
        " WHERE channel = ? AND service_id = ?",
        (alert_id, repeat_due, channel, service_id),
    )
    if cursor.rowcount == 0:
        cursor.execute(
            "INSERT INTO channel_problems (channel, service_id, alert_id, repeat_due)"
            " VALUES (?, ?, ?, ?)",
            (channel, service_id, alert_id, repeat_due),
        )


_DUE_REPEAT = Columns(
    "DueRepeat", channel="p.channel", service_id="p.service_id", alert_id="p.alert_id",
    server_id="v.server_id", state="v.state", stale="v.stale", acked="v.acked",
    server_name="s.name", service_name="v.name",
)


def _queue_repeats(cursor: Cursor, now: float, routes: dict[str, Route], limit: int,
                   windows: WindowIndex) -> int:
    rows = _DUE_REPEAT.read_all(cursor.execute(
        f"SELECT {_DUE_REPEAT.sql} FROM channel_problems p"
        " JOIN services v ON v.id = p.service_id JOIN servers s ON s.id = v.server_id"
        " WHERE p.repeat_due <= ? ORDER BY p.repeat_due LIMIT ?",
        (now, limit),
    ).fetchall())
    groups: dict[tuple[int, str], list[int]] = {}
    # A child's repeats wait while its parent is down, as its alerts do (SPEC 10.4).
    parent_down = held_now(cursor, [row.service_id for row in rows]) if rows else {}
    for row in rows:
        route = routes.get(row.channel)
        decision = decide_repeat(
            now, repeat=route.repeat if route else None, state=row.state,
            stale=bool(row.stale), acked=bool(row.acked),
            silenced=windows.covering(row.server_id, row.server_name, row.service_id,
                                      row.service_name) is not None,
            parent_down=row.service_id in parent_down,
        )
        key = (row.channel, row.service_id)
        if decision.action == RepeatAction.DROP:
            cursor.execute("DELETE FROM channel_problems WHERE channel = ? AND service_id = ?",
                           key)
            continue
        cursor.execute(
            "UPDATE channel_problems SET repeat_due = ? WHERE channel = ? AND service_id = ?",
            (decision.next_due, *key),
        )
        if decision.action == RepeatAction.SEND:
            groups.setdefault((row.server_id, row.channel), []).append(row.alert_id)
    for (server_id, channel), alert_ids in groups.items():
        present = [
            alert_id for (alert_id,) in cursor.execute(
                f"SELECT id FROM alerts WHERE id IN ({marks(alert_ids)})", alert_ids
            ).fetchall()
        ]
        if present:  # the alert may have been purged by retention: nothing to repeat then
            create_notification(cursor, now, channel, server_id, "repeat", sorted(present))
    return len(groups)

