"""What a logged-in user can change: acknowledge, silence, delete, reset a server's key.

These only record the decision (``services.acked``, ``silenced_until``...); what they mean for
notifications is the watchdog's business. Each returns whether the target existed, so the web
layer can answer 404 without a second query.
"""
from __future__ import annotations

from overc.storage.db import Cursor, Database
from overc.storage.escalation_store import resume
from overc.storage.maintenance_store import silence_window


def _txn_ack(cursor: Cursor, service_id: int, comment: str, sticky: bool,
             expires: float | None) -> bool:
    """Acknowledge (SPEC 10.5): a sticky one lasts until OK, one with ``expires`` ends then."""
    cursor.execute(
        "UPDATE services SET acked = 1, ack_comment = ?, ack_sticky = ?, ack_expires = ?"
        " WHERE id = ?", (comment, int(sticky), expires, service_id)
    )
    return _exists(cursor, "services", service_id)


def _txn_unack(cursor: Cursor, service_id: int, now: float) -> bool:
    """Removing an acknowledgement resumes the repeats and escalations it stopped."""
    cursor.execute(
        "UPDATE services SET acked = 0, ack_comment = NULL, ack_sticky = 0, ack_expires = NULL"
        " WHERE id = ?", (service_id,)
    )
    found = _exists(cursor, "services", service_id)
    if found:
        resume(cursor, [service_id], now)
    return found


def _txn_silence(
    cursor: Cursor, table: str, target_id: int, until: float | None, reason: str | None,
    now: float,
) -> bool:
    """A silence is a one-off maintenance window (SPEC 11); the columns say what pages show."""
    assert table in ("services", "servers")
    silence_window(cursor, table, target_id, until, reason, now)
    cursor.execute(
        f"UPDATE {table} SET silenced_until = ?, silence_reason = ? WHERE id = ?",
        (until, reason, target_id),
    )
    return _exists(cursor, table, target_id)


def _txn_delete(cursor: Cursor, table: str, target_id: int) -> bool:
    """Delete a service or a server with everything that hangs off it.

    Children are deleted explicitly instead of trusting ``ON DELETE CASCADE``: SQLite only
    cascades with ``foreign_keys`` on, and explicit deletes keep both databases identical.
    """
    assert table in ("services", "servers")
    if not _exists(cursor, table, target_id):
        return False
    if table == "servers":
        service_ids = [service_id for (service_id,) in cursor.execute(
            "SELECT id FROM services WHERE server_id = ?", (target_id,)).fetchall()]
        for service_id in service_ids:
            _delete_service_rows(cursor, service_id)
        _delete_children(cursor, "server_id", target_id)
        cursor.execute("DELETE FROM alerts WHERE server_id = ?", (target_id,))
        cursor.execute("DELETE FROM maintenance WHERE server_id = ?", (target_id,))
        cursor.execute("DELETE FROM services WHERE server_id = ?", (target_id,))
        cursor.execute("DELETE FROM servers WHERE id = ?", (target_id,))
    else:
        _delete_service_rows(cursor, target_id)
        cursor.execute("DELETE FROM maintenance WHERE service_id = ?", (target_id,))
        cursor.execute("DELETE FROM services WHERE id = ?", (target_id,))
    return True


def _delete_service_rows(cursor: Cursor, service_id: int) -> None:
    cursor.execute("DELETE FROM states WHERE service_id = ?", (service_id,))
    cursor.execute("DELETE FROM perfdata WHERE service_id = ?", (service_id,))
    cursor.execute("DELETE FROM channel_problems WHERE service_id = ?", (service_id,))
    cursor.execute("DELETE FROM escalations WHERE service_id = ?", (service_id,))
    _delete_children(cursor, "service_id", service_id)
    cursor.execute("DELETE FROM alerts WHERE service_id = ?", (service_id,))


def _delete_children(cursor: Cursor, column: str, value: int) -> None:
    """The delivery attempts (``notification_alerts``) of the alerts we are about to delete."""
    assert column in ("server_id", "service_id")
    cursor.execute(
        "DELETE FROM notification_alerts"
        f" WHERE alert_id IN (SELECT id FROM alerts WHERE {column} = ?)",
        (value,),
    )


def _txn_set_key(cursor: Cursor, server_id: int, key_hash: str) -> bool:
    cursor.execute("UPDATE servers SET key_hash = ? WHERE id = ?", (key_hash, server_id))
    return _exists(cursor, "servers", server_id)


def _exists(cursor: Cursor, table: str, target_id: int) -> bool:
    return cursor.execute(
        f"SELECT 1 FROM {table} WHERE id = ?", (target_id,)
    ).fetchone() is not None


class Actions:
    """The write side of the UI; one transaction per action."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def acknowledge(self, service_id: int, comment: str, sticky: bool = False,
                          expires: float | None = None) -> bool:
        return await self.db.run(_txn_ack, service_id, comment, sticky, expires)

    async def unacknowledge(self, service_id: int, now: float) -> bool:
        return await self.db.run(_txn_unack, service_id, now)

    async def silence(self, kind: str, target_id: int, until: float, reason: str,
                      now: float) -> bool:
        return await self.db.run(_txn_silence, _table(kind), target_id, until, reason, now)

    async def unsilence(self, kind: str, target_id: int, now: float) -> bool:
        return await self.db.run(_txn_silence, _table(kind), target_id, None, None, now)

    async def delete(self, kind: str, target_id: int) -> bool:
        return await self.db.run(_txn_delete, _table(kind), target_id)

    async def set_key_hash(self, server_id: int, key_hash: str) -> bool:
        return await self.db.run(_txn_set_key, server_id, key_hash)


def _table(kind: str) -> str:
    if kind == "service":
        return "services"
    if kind == "server":
        return "servers"
    raise ValueError(f"unknown target kind {kind!r}")
