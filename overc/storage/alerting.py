"""Storage of the watchdog and of notification delivery: stale claims, dispatch, leases, retention.

Every public method is one :meth:`Database.run`, one transaction. Exactly once across processes
rests on two mechanisms, both in the database:

* each coordinated job (watchdog tick, dispatch) first updates its row in ``coordination``; the
  row lock serializes that job across processes (SQLite: ``BEGIN IMMEDIATE`` does the same), so
  a tick's reads and claims cannot interleave with another process's tick;
* deliveries are leased: a notification is ``sending`` with an owner and an expiry; a process
  killed mid-delivery only delays it until the lease expires, then any process takes it over.

Rules (what to route where, backoff, repeats) are pure functions passed in or imported from
:mod:`overc.notify.rules`; this module only moves rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from overc.config import Grace
from overc.monitoring.rules import (
    fresh_deadline_sql, heartbeat_due, offline_message, was_away,
)
from overc.notify.rules import (
    AlertView, HeldAlert, Route, decide_release, decide_repeat, group_by_server, is_silenced,
    route_alert,
)
from overc.storage.db import Cursor, Database

WATCHDOG, DISPATCH, RETENTION = 1, 2, 3
PENDING, DISPATCHED, HELD, SUPERSEDED = 0, 1, 2, 3


@dataclass(frozen=True)
class TickResult:
    """What one watchdog tick did."""

    expired: list[int] = field(default_factory=list)  # services that went stale
    refreshed: int = 0  # services given a fresh period (restart awareness)
    away_since: float | None = None  # last tick before the gap, when one was found


@dataclass(frozen=True)
class DispatchResult:
    notifications: int = 0
    alerts: int = 0
    held: int = 0
    released: int = 0
    repeats: int = 0
    more: bool = False  # the batch was full: call again


@dataclass(frozen=True)
class Claimed:
    """A notification this process now holds the lease of, with its alerts."""

    id: int
    channel: str
    kind: str
    server_id: int
    attempts: int  # including this one
    attempt_id: int
    alerts: list[AlertView]


@dataclass(frozen=True)
class NotificationRecord:
    id: int
    channel: str
    kind: str
    server_id: int
    status: str
    attempts: int
    next_attempt: float
    last_error: str | None
    alert_ids: list[int]


@dataclass(frozen=True)
class AttemptRecord:
    notification_id: int
    owner: str
    started: float
    finished: float | None
    ok: bool | None
    error: str | None


_ALERT_COLUMNS = (
    "a.id, a.time, a.kind, a.severity, a.server_id, s.name, a.service_id, v.name, a.message,"
    " a.state, a.info, a.skip_channel"
)
_ALERT_FROM = (
    " FROM alerts a JOIN servers s ON s.id = a.server_id"
    " LEFT JOIN services v ON v.id = a.service_id"
)


def _alert_view(row: Sequence) -> AlertView:
    return AlertView(
        id=row[0], time=row[1], kind=row[2], severity=row[3], server_id=row[4], server=row[5],
        service_id=row[6], service=row[7], message=row[8], state=row[9], info=row[10],
        skip_channel=row[11],
    )


def _marks(values: Sequence) -> str:
    return ", ".join("?" * len(values))


def _chunks(values: list, size: int = 500) -> Iterable[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


class AlertingStore:
    """The watchdog's and the dispatcher's view of the database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------ watchdog

    async def watchdog_tick(self, now: float, *, interval: float, grace: Grace,
                            limit: int = 5000) -> TickResult:
        """Restart awareness, then mark overdue services stale with one `offline` alert each."""
        return await self.db.run(_txn_watchdog_tick, now, interval, grace, limit)

    # ------------------------------------------------------------------ dispatch

    async def dispatch(self, now: float, routes: Sequence[Route], *,
                       limit: int = 1000) -> DispatchResult:
        """Turn new alerts into notifications (grouped per server and channel), hold silenced
        ones, release what a finished silence still needs, and queue due repeats."""
        return await self.db.run(_txn_dispatch, now, tuple(routes), limit)

    async def claim(self, now: float, owner: str, leases: dict[str, float],
                    limit: int) -> list[Claimed]:
        """Lease up to ``limit`` due notifications of the channels in ``leases`` (name → lease
        seconds); an expired lease of a dead process is taken over."""
        if limit <= 0 or not leases:
            return []
        return await self.db.run(_txn_claim, now, owner, dict(leases), limit)

    async def finish(self, claimed: Claimed, owner: str, now: float, *, error: str | None,
                     retry_at: float | None, internal_message: str | None = None) -> bool:
        """Record an attempt's outcome. ``error`` None: sent. Else ``retry_at`` (None: failed
        for good, and ``internal_message`` becomes an `internal` alert for the other channels).
        False when the lease was lost meanwhile (another process took over)."""
        return await self.db.run(_txn_finish, claimed.id, claimed.attempt_id, claimed.channel,
                                 claimed.server_id, owner, now, error, retry_at,
                                 internal_message)

    # ------------------------------------------------------------------ retention

    async def purge(self, cutoff: float, table: str, batch: int) -> int:
        """Delete up to ``batch`` rows older than ``cutoff`` from one history table."""
        if table not in _PURGE:
            raise ValueError(f"not a history table: {table}")
        return await self.db.run(_txn_purge, cutoff, table, batch)

    # ------------------------------------------------------------------ reading

    async def notifications(self, *, alert_id: int | None = None) -> list[NotificationRecord]:
        return await self.db.run(_txn_notifications, alert_id)

    async def attempts(self, notification_id: int) -> list[AttemptRecord]:
        return await self.db.run(_txn_attempts, notification_id)

    async def alerts(self, *, kind: str | None = None) -> list[AlertView]:
        return await self.db.run(_txn_alerts, kind)

    async def undelivered(self) -> int:
        """Alerts not yet through the pipeline plus notifications not finished (for tests,
        benchmarks and health)."""
        return await self.db.run(_txn_undelivered)

    # ------------------------------------------------------------------ acknowledge/silence

    async def set_acknowledged(self, service_id: int, acked: bool, comment: str | None = None
                               ) -> None:
        """What the UI's acknowledge action writes (the UI owns its endpoint; tests use this)."""
        await self.db.run(_txn_set_ack, service_id, acked, comment)

    async def set_silence(self, *, until: float | None, reason: str | None = None,
                          service_id: int | None = None, server_id: int | None = None) -> None:
        """What the UI's silence action writes, on a service or a whole server."""
        await self.db.run(_txn_set_silence, until, reason, service_id, server_id)


# ====================================================================== transactions


def _txn_lock(cursor: Cursor, job: int, now: float) -> float:
    """Serialize ``job`` across processes; return the job's previous ``last_tick``."""
    cursor.execute("UPDATE coordination SET ticks = ticks + 1 WHERE id = ?", (job,))
    if cursor.rowcount == 0:
        raise RuntimeError("the coordination table has no row %d: run the migrations" % job)
    row = cursor.execute("SELECT last_tick FROM coordination WHERE id = ?", (job,)).fetchone()
    cursor.execute(
        "UPDATE coordination SET last_tick = ? WHERE id = ? AND last_tick < ?", (now, job, now)
    )
    return row[0]


def _txn_watchdog_tick(cursor: Cursor, now: float, interval: float, grace: Grace,
                       limit: int) -> TickResult:
    # The common tick finds nothing: answer it read-only (no lock, no write, no disk flush).
    last_seen = cursor.execute("SELECT last_tick FROM coordination WHERE id = ?",
                               (WATCHDOG,)).fetchone()
    if last_seen is None:
        raise RuntimeError("the coordination table has no watchdog row: run the migrations")
    if not was_away(now, last_seen[0], interval) and not heartbeat_due(
        now, last_seen[0], interval
    ):
        due = cursor.execute(
            "SELECT id FROM services WHERE stale = 0 AND deadline < ? LIMIT 1", (now,)
        ).fetchone()
        if due is None:
            return TickResult()
    last_tick = _txn_lock(cursor, WATCHDOG, now)
    refreshed = 0
    away_since = None
    if was_away(now, last_tick, interval):
        # Nobody watched since last_tick (OverC down, or its database): agents could not report,
        # so every overdue service gets one fresh period from now instead of an offline alert.
        away_since = last_tick
        expression, extra = fresh_deadline_sql(grace)
        cursor.execute(
            f"UPDATE services SET deadline = {expression} WHERE stale = 0 AND deadline < ?",
            (now, *extra, now),
        )
        refreshed = max(0, cursor.rowcount)
    # Through the (stale, deadline) index: cost follows the services that expire.
    rows = cursor.execute(
        "SELECT id, server_id, period, last_time, state, info FROM services"
        " WHERE stale = 0 AND deadline < ? ORDER BY deadline LIMIT ?",
        (now, limit),
    ).fetchall()
    if not rows:
        return TickResult([], refreshed, away_since)
    claimed: list[Sequence] = []
    for chunk in _chunks(rows):
        ids = [row[0] for row in chunk]
        # The job lock makes this tick the only watchdog now; ingest only ever clears stale and
        # moves deadlines, so a row this UPDATE skips got a report meanwhile.
        cursor.execute(
            f"UPDATE services SET stale = 1 WHERE id IN ({_marks(ids)})"
            " AND stale = 0 AND deadline < ?",
            (*ids, now),
        )
        if cursor.rowcount == len(ids):
            claimed.extend(chunk)
            continue
        stale_now = {
            r[0] for r in cursor.execute(
                f"SELECT id FROM services WHERE id IN ({_marks(ids)}) AND stale = 1", ids
            ).fetchall()
        }
        claimed.extend(row for row in chunk if row[0] in stale_now)
    # Only placeholders in VALUES: pymysql turns executemany into one multi-row INSERT then
    # (a literal there makes it one round trip per row).
    cursor.executemany(
        "INSERT INTO alerts (server_id, service_id, time, kind, severity, message, state, info,"
        " dispatched) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (row[1], row[0], now, "offline", "FAIL", offline_message(now, row[3], row[2]),
             row[4], row[5], PENDING)
            for row in claimed
        ],
    )
    return TickResult(sorted(row[0] for row in claimed), refreshed, away_since)


def _txn_dispatch(cursor: Cursor, now: float, routes: tuple[Route, ...],
                  limit: int) -> DispatchResult:
    # Nothing new, nothing held, no repeat due (the usual second): a read-only answer.
    if (
        cursor.execute(f"SELECT 1 FROM alerts WHERE dispatched IN ({PENDING}, {HELD}) LIMIT 1"
                       ).fetchone() is None
        and cursor.execute("SELECT 1 FROM channel_problems WHERE repeat_due <= ? LIMIT 1",
                           (now,)).fetchone() is None
    ):
        return DispatchResult()
    _txn_lock(cursor, DISPATCH, now)
    released = _release_silences(cursor, now, limit)
    by_name = {route.name: route for route in routes}

    rows = cursor.execute(
        f"SELECT {_ALERT_COLUMNS}, s.silenced_until, v.silenced_until{_ALERT_FROM}"
        " WHERE a.dispatched = 0 ORDER BY a.id LIMIT ?",
        (limit,),
    ).fetchall()
    alerts = [_alert_view(row) for row in rows]
    held = [a.id for a, row in zip(alerts, rows) if is_silenced(now, row[12], row[13])]
    held_set = set(held)
    live = [a for a in alerts if a.id not in held_set]

    told = _told(cursor, sorted({a.service_id for a in live if a.service_id is not None}))
    channels_of: dict[int, list[str]] = {}
    for alert in live:
        names = route_alert(routes, alert, told.get(alert.service_id, set()))
        channels_of[alert.id] = names
        if alert.service_id is None:
            continue
        if alert.is_problem:
            for name in names:
                repeat = by_name[name].repeat
                _remember_problem(cursor, name, alert.service_id, alert.id,
                                  now + repeat if repeat else None)
                told.setdefault(alert.service_id, set()).add(name)
        elif alert.state is None or alert.state.upper() == "OK":
            # Recovered: forget who was told, so the next problem starts afresh.
            cursor.execute("DELETE FROM channel_problems WHERE service_id = ?",
                           (alert.service_id,))
            told.pop(alert.service_id, None)
    groups = group_by_server(live, channels_of)
    for (server_id, channel), members in groups.items():
        _create_notification(cursor, now, channel, server_id, "alert", [a.id for a in members])

    repeats = _queue_repeats(cursor, now, by_name, limit)

    for chunk in _chunks([a.id for a in live]):
        cursor.execute(f"UPDATE alerts SET dispatched = {DISPATCHED} WHERE id IN ({_marks(chunk)})",
                       chunk)
    for chunk in _chunks(held):
        cursor.execute(f"UPDATE alerts SET dispatched = {HELD} WHERE id IN ({_marks(chunk)})",
                       chunk)
    return DispatchResult(
        notifications=len(groups) + repeats, alerts=len(live), held=len(held),
        released=released, repeats=repeats, more=len(rows) >= limit,
    )


def _told(cursor: Cursor, service_ids: list[int]) -> dict[int, set[str]]:
    told: dict[int, set[str]] = {}
    for chunk in _chunks(service_ids):
        for channel, service_id in cursor.execute(
            f"SELECT channel, service_id FROM channel_problems"
            f" WHERE service_id IN ({_marks(chunk)})", chunk
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


def _create_notification(cursor: Cursor, now: float, channel: str, server_id: int, kind: str,
                         alert_ids: list[int]) -> int:
    cursor.execute(
        "INSERT INTO notifications (channel, server_id, kind, created, status, attempts,"
        " next_attempt) VALUES (?, ?, ?, ?, 'pending', 0, ?)",
        (channel, server_id, kind, now, now),
    )
    notification_id = cursor.lastrowid
    cursor.executemany(
        "INSERT INTO notification_alerts (notification_id, alert_id) VALUES (?, ?)",
        [(notification_id, alert_id) for alert_id in alert_ids],
    )
    return notification_id


def _release_silences(cursor: Cursor, now: float, limit: int) -> int:
    """Held alerts whose silence is over: the newest per service that still matters goes back
    to dispatch (notified once), the rest are marked superseded."""
    rows = cursor.execute(
        "SELECT a.id, a.service_id, s.silenced_until, v.silenced_until, v.state, v.stale,"
        " v.acked FROM alerts a JOIN servers s ON s.id = a.server_id"
        " LEFT JOIN services v ON v.id = a.service_id"
        f" WHERE a.dispatched = {HELD} ORDER BY a.id LIMIT ?",
        (limit,),
    ).fetchall()
    over = [row for row in rows if not is_silenced(now, row[2], row[3])]
    if not over:
        return 0
    # One silence covers all the held alerts of a service, so they are all over together
    # (short of the LIMIT cutting a service's alerts in two: the rest comes next tick).
    held = [HeldAlert(row[0], row[1]) for row in over]
    status = {row[1]: (row[4], bool(row[5]), bool(row[6])) for row in over if row[1] is not None}
    told = set(_told(cursor, sorted(status)))
    decision = decide_release(held, service_status=status, told_services=told)
    for chunk in _chunks(decision.notify):
        cursor.execute(
            f"UPDATE alerts SET dispatched = {PENDING} WHERE id IN ({_marks(chunk)})"
            f" AND dispatched = {HELD}", chunk,
        )
    for chunk in _chunks(decision.supersede):
        cursor.execute(
            f"UPDATE alerts SET dispatched = {SUPERSEDED} WHERE id IN ({_marks(chunk)})"
            f" AND dispatched = {HELD}", chunk,
        )
    return len(decision.notify)


def _queue_repeats(cursor: Cursor, now: float, routes: dict[str, Route], limit: int) -> int:
    rows = cursor.execute(
        "SELECT p.channel, p.service_id, p.alert_id, v.server_id, v.state, v.stale, v.acked,"
        " v.silenced_until, s.silenced_until FROM channel_problems p"
        " JOIN services v ON v.id = p.service_id JOIN servers s ON s.id = v.server_id"
        " WHERE p.repeat_due <= ? ORDER BY p.repeat_due LIMIT ?",
        (now, limit),
    ).fetchall()
    groups: dict[tuple[int, str], list[int]] = {}
    for channel, service_id, alert_id, server_id, state, stale, acked, v_until, s_until in rows:
        route = routes.get(channel)
        decision = decide_repeat(
            now, repeat=route.repeat if route else None, state=state, stale=bool(stale),
            acked=bool(acked), silenced=is_silenced(now, v_until, s_until),
        )
        key = (channel, service_id)
        if decision.action == "drop":
            cursor.execute("DELETE FROM channel_problems WHERE channel = ? AND service_id = ?",
                           key)
            continue
        cursor.execute(
            "UPDATE channel_problems SET repeat_due = ? WHERE channel = ? AND service_id = ?",
            (decision.next_due, *key),
        )
        if decision.action == "send":
            groups.setdefault((server_id, channel), []).append(alert_id)
    for (server_id, channel), alert_ids in groups.items():
        present = [
            r[0] for r in cursor.execute(
                f"SELECT id FROM alerts WHERE id IN ({_marks(alert_ids)})", alert_ids
            ).fetchall()
        ]
        if present:  # the alert may have been purged by retention: nothing to repeat then
            _create_notification(cursor, now, channel, server_id, "repeat", sorted(present))
    return len(groups)


def _txn_claim(cursor: Cursor, now: float, owner: str, leases: dict[str, float],
               limit: int) -> list[Claimed]:
    channels = sorted(leases)
    candidates = cursor.execute(
        "SELECT id, channel FROM notifications WHERE status = 'pending' AND next_attempt <= ?"
        f" AND channel IN ({_marks(channels)}) ORDER BY next_attempt LIMIT ?",
        (now, *channels, limit),
    ).fetchall()
    if len(candidates) < limit:
        candidates += cursor.execute(
            "SELECT id, channel FROM notifications WHERE status = 'sending' AND lease_until < ?"
            f" AND channel IN ({_marks(channels)}) ORDER BY lease_until LIMIT ?",
            (now, *channels, limit - len(candidates)),
        ).fetchall()
    claimed: list[Claimed] = []
    for notification_id, channel in candidates:
        cursor.execute(
            "UPDATE notifications SET status = 'sending', lease_owner = ?, lease_until = ?,"
            " attempts = attempts + 1 WHERE id = ? AND ("
            "(status = 'pending' AND next_attempt <= ?) OR (status = 'sending' AND lease_until < ?))",
            (owner, now + leases[channel], notification_id, now, now),
        )
        if cursor.rowcount != 1:
            continue  # another process was faster
        # An attempt left open by a process that died is closed as failed.
        cursor.execute(
            "UPDATE notification_attempts SET finished = ?, ok = 0, error = ?"
            " WHERE notification_id = ? AND finished IS NULL",
            (now, "lease expired: the process delivering it stopped", notification_id),
        )
        kind, server_id, attempts = cursor.execute(
            "SELECT kind, server_id, attempts FROM notifications WHERE id = ?",
            (notification_id,),
        ).fetchone()
        alerts = [
            _alert_view(row) for row in cursor.execute(
                f"SELECT {_ALERT_COLUMNS}{_ALERT_FROM}"
                " JOIN notification_alerts n ON n.alert_id = a.id"
                " WHERE n.notification_id = ? ORDER BY a.id",
                (notification_id,),
            ).fetchall()
        ]
        if not alerts:  # every alert was deleted (service removed, retention)
            cursor.execute(
                "UPDATE notifications SET status = 'dropped', finished = ?, lease_owner = NULL,"
                " lease_until = NULL WHERE id = ?", (now, notification_id),
            )
            continue
        cursor.execute(
            "INSERT INTO notification_attempts (notification_id, owner, started)"
            " VALUES (?, ?, ?)", (notification_id, owner, now),
        )
        claimed.append(Claimed(notification_id, channel, kind, server_id, attempts,
                               cursor.lastrowid, alerts))
    return claimed


def _txn_finish(cursor: Cursor, notification_id: int, attempt_id: int, channel: str,
                server_id: int, owner: str, now: float, error: str | None,
                retry_at: float | None, internal_message: str | None) -> bool:
    cursor.execute(
        "UPDATE notification_attempts SET finished = ?, ok = ?, error = ?"
        " WHERE id = ? AND finished IS NULL",
        (now, 0 if error else 1, error, attempt_id),
    )
    if error is None:
        status, next_attempt = "sent", None
    elif retry_at is not None:
        status, next_attempt = "pending", retry_at
    else:
        status, next_attempt = "failed", None
    cursor.execute(
        "UPDATE notifications SET status = ?, last_error = ?, lease_owner = NULL,"
        " lease_until = NULL, next_attempt = COALESCE(?, next_attempt), finished = ?"
        " WHERE id = ? AND status = 'sending' AND lease_owner = ?",
        (status, error, next_attempt, None if status == "pending" else now,
         notification_id, owner),
    )
    if cursor.rowcount != 1:
        return False  # lease lost: the process that took over records its own outcome
    if status == "failed" and internal_message:
        cursor.execute(
            "INSERT INTO alerts (server_id, service_id, time, kind, severity, message,"
            " dispatched, skip_channel) VALUES (?, NULL, ?, 'internal', 'FAIL', ?, 0, ?)",
            (server_id, now, internal_message, channel),
        )
    return True


# History tables and the column that dates their rows.
_PURGE = {
    "states": "time",
    "perfdata": "time",
    "alerts": "time",
    "notifications": "created",
}


def _txn_purge(cursor: Cursor, cutoff: float, table: str, batch: int) -> int:
    column = _PURGE[table]
    extra = " AND status IN ('sent', 'failed', 'dropped')" if table == "notifications" else ""
    ids = [
        row[0] for row in cursor.execute(
            f"SELECT id FROM {table} WHERE {column} < ?{extra} ORDER BY {column} LIMIT ?",
            (cutoff, batch),
        ).fetchall()
    ]
    if table == "alerts" and ids:
        # Repeats refer to an alert: forget those whose alert goes.
        cursor.execute(f"DELETE FROM channel_problems WHERE alert_id IN ({_marks(ids)})", ids)
    for chunk in _chunks(ids):
        cursor.execute(f"DELETE FROM {table} WHERE id IN ({_marks(chunk)})", chunk)
    return len(ids)


def _txn_notifications(cursor: Cursor, alert_id: int | None) -> list[NotificationRecord]:
    if alert_id is None:
        rows = cursor.execute(
            "SELECT id, channel, kind, server_id, status, attempts, next_attempt, last_error"
            " FROM notifications ORDER BY id"
        ).fetchall()
    else:
        rows = cursor.execute(
            "SELECT n.id, n.channel, n.kind, n.server_id, n.status, n.attempts, n.next_attempt,"
            " n.last_error FROM notifications n JOIN notification_alerts x"
            " ON x.notification_id = n.id WHERE x.alert_id = ? ORDER BY n.id",
            (alert_id,),
        ).fetchall()
    out = []
    for row in rows:
        alert_ids = [r[0] for r in cursor.execute(
            "SELECT alert_id FROM notification_alerts WHERE notification_id = ? ORDER BY alert_id",
            (row[0],),
        ).fetchall()]
        out.append(NotificationRecord(*row, alert_ids=alert_ids))
    return out


def _txn_attempts(cursor: Cursor, notification_id: int) -> list[AttemptRecord]:
    return [
        AttemptRecord(r[0], r[1], r[2], r[3], None if r[4] is None else bool(r[4]), r[5])
        for r in cursor.execute(
            "SELECT notification_id, owner, started, finished, ok, error"
            " FROM notification_attempts WHERE notification_id = ? ORDER BY id",
            (notification_id,),
        ).fetchall()
    ]


def _txn_alerts(cursor: Cursor, kind: str | None) -> list[AlertView]:
    where, params = ("WHERE a.kind = ?", (kind,)) if kind else ("", ())
    return [
        _alert_view(row)
        for row in cursor.execute(
            f"SELECT {_ALERT_COLUMNS}{_ALERT_FROM} {where} ORDER BY a.id", params
        ).fetchall()
    ]


def _txn_undelivered(cursor: Cursor) -> int:
    alerts = cursor.execute(
        f"SELECT COUNT(*) FROM alerts WHERE dispatched = {PENDING}"
    ).fetchone()[0]
    pending = cursor.execute(
        "SELECT COUNT(*) FROM notifications WHERE status IN ('pending', 'sending')"
    ).fetchone()[0]
    return alerts + pending


def _txn_set_ack(cursor: Cursor, service_id: int, acked: bool, comment: str | None) -> None:
    cursor.execute("UPDATE services SET acked = ?, ack_comment = ? WHERE id = ?",
                   (int(acked), comment, service_id))


def _txn_set_silence(cursor: Cursor, until: float | None, reason: str | None,
                     service_id: int | None, server_id: int | None) -> None:
    if service_id is not None:
        cursor.execute(
            "UPDATE services SET silenced_until = ?, silence_reason = ? WHERE id = ?",
            (until, reason, service_id),
        )
    if server_id is not None:
        cursor.execute(
            "UPDATE servers SET silenced_until = ?, silence_reason = ? WHERE id = ?",
            (until, reason, server_id),
        )
