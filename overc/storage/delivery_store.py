"""Delivery's storage: lease due notifications, record each attempt's outcome.

A notification being delivered is ``sending`` with an owner and an expiry; a process killed
mid-delivery only delays it until the lease expires, then any process takes it over. Claims
are conditional UPDATEs, so two processes never hold the same notification.
"""
from __future__ import annotations

from dataclasses import dataclass

from overc.core.alerts import INTERNAL, Alert
from overc.core.states import FAIL
from overc.storage.alert_tables import (
    ALERT, ALERT_FROM, Dispatch, NotificationStatus, read_alert,
)
from overc.storage.db import Cursor, Database
from overc.storage.rows import marks

PENDING, SENDING = NotificationStatus.PENDING.value, NotificationStatus.SENDING.value


@dataclass(frozen=True)
class Claimed:
    """A notification this process now holds the lease of, with its alerts."""

    id: int
    channel: str
    kind: str
    server_id: int
    attempts: int  # including this one
    attempt_id: int
    alerts: list[Alert]


class DeliveryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

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
        return await self.db.run(_txn_finish, claimed, owner, now, error, retry_at,
                                 internal_message)


def _txn_claim(cursor: Cursor, now: float, owner: str, leases: dict[str, float],
               limit: int) -> list[Claimed]:
    channels = sorted(leases)
    candidates = cursor.execute(
        "SELECT id, channel FROM notifications WHERE status = ? AND next_attempt <= ?"
        f" AND channel IN ({marks(channels)}) ORDER BY next_attempt LIMIT ?",
        (PENDING, now, *channels, limit),
    ).fetchall()
    if len(candidates) < limit:
        candidates += cursor.execute(
            "SELECT id, channel FROM notifications WHERE status = ? AND lease_until < ?"
            f" AND channel IN ({marks(channels)}) ORDER BY lease_until LIMIT ?",
            (SENDING, now, *channels, limit - len(candidates)),
        ).fetchall()
    claimed: list[Claimed] = []
    for notification_id, channel in candidates:
        cursor.execute(
            "UPDATE notifications SET status = ?, lease_owner = ?, lease_until = ?,"
            " attempts = attempts + 1 WHERE id = ? AND ("
            "(status = ? AND next_attempt <= ?) OR (status = ? AND lease_until < ?))",
            (SENDING, owner, now + leases[channel], notification_id, PENDING, now, SENDING, now),
        )
        if cursor.rowcount != 1:
            continue  # another process was faster
        # An attempt left open by a process that died is closed as failed.
        cursor.execute(
            "UPDATE notification_attempts SET finished = ?, ok = 0, error = ?"
            " WHERE notification_id = ? AND finished IS NULL",
            (now, "lease expired: the process delivering it stopped", notification_id),
        )
        row = cursor.execute(
            "SELECT kind, server_id, attempts FROM notifications WHERE id = ?",
            (notification_id,),
        ).fetchone()
        assert row is not None
        kind, server_id, attempts = row
        alerts = [
            read_alert(alert) for alert in cursor.execute(
                f"SELECT {ALERT.sql}{ALERT_FROM}"
                " JOIN notification_alerts n ON n.alert_id = a.id"
                " WHERE n.notification_id = ? ORDER BY a.id",
                (notification_id,),
            ).fetchall()
        ]
        if not alerts:  # every alert was deleted (service removed, retention)
            cursor.execute(
                "UPDATE notifications SET status = ?, finished = ?, lease_owner = NULL,"
                " lease_until = NULL WHERE id = ?",
                (NotificationStatus.DROPPED.value, now, notification_id),
            )
            continue
        cursor.execute(
            "INSERT INTO notification_attempts (notification_id, owner, started)"
            " VALUES (?, ?, ?)", (notification_id, owner, now),
        )
        claimed.append(Claimed(notification_id, channel, kind, server_id, attempts,
                               cursor.lastrowid, alerts))
    return claimed


def _txn_finish(cursor: Cursor, claimed: Claimed, owner: str, now: float, error: str | None,
                retry_at: float | None, internal_message: str | None) -> bool:
    cursor.execute(
        "UPDATE notification_attempts SET finished = ?, ok = ?, error = ?"
        " WHERE id = ? AND finished IS NULL",
        (now, 0 if error else 1, error, claimed.attempt_id),
    )
    next_attempt: float | None = None
    if error is None:
        status = NotificationStatus.SENT
    elif retry_at is not None:
        status, next_attempt = NotificationStatus.PENDING, retry_at
    else:
        status = NotificationStatus.FAILED
    cursor.execute(
        "UPDATE notifications SET status = ?, last_error = ?, lease_owner = NULL,"
        " lease_until = NULL, next_attempt = COALESCE(?, next_attempt), finished = ?"
        " WHERE id = ? AND status = ? AND lease_owner = ?",
        (status.value, error, next_attempt,
         None if status is NotificationStatus.PENDING else now, claimed.id, SENDING, owner),
    )
    if cursor.rowcount != 1:
        return False  # lease lost: the process that took over records its own outcome
    if status is NotificationStatus.FAILED and internal_message:
        cursor.execute(
            "INSERT INTO alerts (server_id, service_id, time, kind, severity, message,"
            " dispatched, skip_channel) VALUES (?, NULL, ?, ?, ?, ?, ?, ?)",
            (claimed.server_id, now, INTERNAL, FAIL, internal_message, Dispatch.PENDING.value,
             claimed.channel),
        )
    return True
