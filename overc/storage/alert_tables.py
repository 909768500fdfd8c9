"""What the watchdog, dispatch, delivery and retention stores share about the alert tables:
the status enums, the one way an alert row is read, the job lock and how a notification row
is created.
"""
from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Sequence

from overc.core.alerts import Alert
from overc.storage.db import Cursor
from overc.storage.rows import Columns


class Dispatch(IntEnum):
    """``alerts.dispatched``: where an alert is on its way to the channels."""

    PENDING = 0  # new: the next dispatch routes it
    DISPATCHED = 1  # routed into notifications
    HELD = 2  # a maintenance window (a silence is one) holds it: waits for its end
    SUPERSEDED = 3  # a later alert of the service (or the end of the problem) replaced it


class NotificationStatus(StrEnum):
    """``notifications.status``."""

    PENDING = "pending"  # due at next_attempt
    SENDING = "sending"  # leased by lease_owner until lease_until
    SENT = "sent"
    FAILED = "failed"  # for good, after its retries
    DROPPED = "dropped"  # every alert it carried was deleted

    @classmethod
    def finished(cls) -> tuple[NotificationStatus, ...]:
        return (cls.SENT, cls.FAILED, cls.DROPPED)


class Job(IntEnum):
    """Rows of ``coordination``: one per job serialized across processes."""

    WATCHDOG = 1
    DISPATCH = 2
    RETENTION = 3


ALERT = Columns(
    "AlertColumns",
    id="a.id", server_id="a.server_id", server_name="s.name", service_id="a.service_id",
    service_name="v.name", time="a.time", kind="a.kind", severity="a.severity",
    message="a.message", state="a.state", info="a.info", skip_channel="a.skip_channel",
    held="a.held",
)
ALERT_FROM = (
    " FROM alerts a JOIN servers s ON s.id = a.server_id"
    " LEFT JOIN services v ON v.id = a.service_id"
)


def read_alert(row: Sequence) -> Alert:
    """An :data:`ALERT` row (extra trailing columns are ignored)."""
    return Alert(**ALERT.as_dict(row))


def lock_job(cursor: Cursor, job: Job, now: float) -> float:
    """Serialize ``job`` across processes; return the job's previous ``last_tick``."""
    cursor.execute("UPDATE coordination SET ticks = ticks + 1 WHERE id = ?", (job.value,))
    if cursor.rowcount == 0:
        raise RuntimeError(f"the coordination table has no row {job.value}: run the migrations")
    row = cursor.execute("SELECT last_tick FROM coordination WHERE id = ?",
                         (job.value,)).fetchone()
    assert row is not None
    cursor.execute(
        "UPDATE coordination SET last_tick = ? WHERE id = ? AND last_tick < ?",
        (now, job.value, now),
    )
    (last_tick,) = row
    return last_tick


def create_notification(cursor: Cursor, now: float, channel: str, server_id: int, kind: str,
                        alert_ids: Sequence[int]) -> int:
    """A pending notification of ``alert_ids``, due now."""
    cursor.execute(
        "INSERT INTO notifications (channel, server_id, kind, created, status, attempts,"
        " next_attempt) VALUES (?, ?, ?, ?, ?, 0, ?)",
        (channel, server_id, kind, now, NotificationStatus.PENDING.value, now),
    )
    notification_id = cursor.lastrowid
    cursor.executemany(
        "INSERT INTO notification_alerts (notification_id, alert_id) VALUES (?, ?)",
        [(notification_id, alert_id) for alert_id in alert_ids],
    )
    return notification_id
