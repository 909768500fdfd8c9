"""Test-only reads and writes of the alerting tables, in plain SQL.

The server never needs these (the UI owns acknowledge and silence; the read model owns
listing), so they live with the tests instead of in a store.
"""
from __future__ import annotations

from dataclasses import dataclass

from overc.core.alerts import Alert
from overc.storage.alert_tables import ALERT, ALERT_FROM, Dispatch, read_alert
from overc.storage.db import Cursor, Database


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


class AlertingTables:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def notifications(self, *, alert_id: int | None = None) -> list[NotificationRecord]:
        return await self.db.run(_txn_notifications, alert_id)

    async def attempts(self, notification_id: int) -> list[AttemptRecord]:
        return await self.db.run(_txn_attempts, notification_id)

    async def alerts(self, *, kind: str | None = None) -> list[Alert]:
        return await self.db.run(_txn_alerts, kind)

    async def undelivered(self) -> int:
        """Alerts not yet through the pipeline plus notifications not finished."""
        return await self.db.run(_txn_undelivered)

    async def set_acknowledged(self, service_id: int, acked: bool,
                               comment: str | None = None) -> None:
        """What the UI's acknowledge action writes."""
        await self.db.run(lambda c: c.execute(
            "UPDATE services SET acked = ?, ack_comment = ? WHERE id = ?",
            (int(acked), comment, service_id)))

    async def set_silence(self, *, until: float | None, reason: str | None = None,
                          service_id: int | None = None, server_id: int | None = None,
                          now: float = 0.0) -> None:
        """What the UI's silence action writes, on a service or a whole server: a one-off
        maintenance window from ``now`` (SPEC 11)."""
        await self.db.run(_txn_set_silence, until, reason, service_id, server_id, now)


def _txn_notifications(cursor: Cursor, alert_id: int | None) -> list[NotificationRecord]:
    columns = ("n.id, n.channel, n.kind, n.server_id, n.status, n.attempts, n.next_attempt,"
               " n.last_error FROM notifications n")
    if alert_id is None:
        rows = cursor.execute(f"SELECT {columns} ORDER BY n.id").fetchall()
    else:
        rows = cursor.execute(
            f"SELECT {columns} JOIN notification_alerts x ON x.notification_id = n.id"
            " WHERE x.alert_id = ? ORDER BY n.id", (alert_id,),
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


def _txn_alerts(cursor: Cursor, kind: str | None) -> list[Alert]:
    where, params = ("WHERE a.kind = ?", (kind,)) if kind else ("", ())
    return [
        read_alert(row)
        for row in cursor.execute(
            f"SELECT {ALERT.sql}{ALERT_FROM} {where} ORDER BY a.id", params
        ).fetchall()
    ]


def _txn_undelivered(cursor: Cursor) -> int:
    alerts = cursor.execute(
        f"SELECT COUNT(*) FROM alerts WHERE dispatched = {Dispatch.PENDING.value}"
    ).fetchone()[0]
    pending = cursor.execute(
        "SELECT COUNT(*) FROM notifications WHERE status IN ('pending', 'sending')"
    ).fetchone()[0]
    return alerts + pending


def _txn_set_silence(cursor: Cursor, until: float | None, reason: str | None,
                     service_id: int | None, server_id: int | None, now: float) -> None:
    from overc.storage.actions import _txn_silence

    if service_id is not None:
        _txn_silence(cursor, "services", service_id, until, reason, now)
    if server_id is not None:
        _txn_silence(cursor, "servers", server_id, until, reason, now)
