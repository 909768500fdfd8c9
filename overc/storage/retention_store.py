"""Retention's storage: delete old history in batches, one short transaction each, so ingest
never waits behind a purge.
"""
from __future__ import annotations

from overc.storage.alert_tables import NotificationStatus
from overc.storage.db import Cursor, Database
from overc.storage.rows import chunks, marks

#: History tables and the column that dates their rows, in the order retention purges them.
HISTORY = {
    "perfdata": "time",
    "states": "time",
    "notifications": "created",
    "alerts": "time",
    "maintenance": "end_time",  # one-off windows over for that long (recurring: end NULL)
}


class RetentionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def purge(self, cutoff: float, table: str, batch: int) -> int:
        """Delete up to ``batch`` rows older than ``cutoff`` from one history table."""
        if table not in HISTORY:
            raise ValueError(f"not a history table: {table}")
        return await self.db.run(_txn_purge, cutoff, table, batch)


def _txn_purge(cursor: Cursor, cutoff: float, table: str, batch: int) -> int:
    column = HISTORY[table]
    params: tuple = (cutoff,)
    extra = ""
    if table == "notifications":  # only finished ones: a pending one is still owed
        finished = [status.value for status in NotificationStatus.finished()]
        extra = f" AND status IN ({marks(finished)})"
        params += tuple(finished)
    ids = [
        row_id for (row_id,) in cursor.execute(
            f"SELECT id FROM {table} WHERE {column} < ?{extra} ORDER BY {column} LIMIT ?",
            (*params, batch),
        ).fetchall()
    ]
    if table == "alerts" and ids:
        # Repeats and escalations refer to an alert: forget those whose alert goes.
        cursor.execute(f"DELETE FROM channel_problems WHERE alert_id IN ({marks(ids)})", ids)
        cursor.execute(f"DELETE FROM escalations WHERE alert_id IN ({marks(ids)})", ids)
    for chunk in chunks(ids):
        cursor.execute(f"DELETE FROM {table} WHERE id IN ({marks(chunk)})", chunk)
    return len(ids)
