"""UI sessions ended by logout (``ui_revoked_sessions``, migration 0004).

Session cookies are signed, not stored, so ending one means remembering its id as revoked until
the cookie would have expired anyway; every OverC process on this database reads the same rows.
"""
from __future__ import annotations

from overc.storage.db import Cursor, Database

#: Rows are kept this long after their cookie expired, so a process whose clock runs behind
#: the purging process's never accepts a cookie whose revocation was already purged.
PURGE_MARGIN = 3600.0


def _txn_revoke(cursor: Cursor, session_id: str, expires: float, now: float) -> None:
    cursor.execute("DELETE FROM ui_revoked_sessions WHERE expires < ?", (now - PURGE_MARGIN,))
    found = cursor.execute("SELECT 1 FROM ui_revoked_sessions WHERE session_id = ?",
                           (session_id,)).fetchone()
    if not found:
        cursor.execute("INSERT INTO ui_revoked_sessions (session_id, expires) VALUES (?, ?)",
                       (session_id, expires))


def _txn_is_revoked(cursor: Cursor, session_id: str) -> bool:
    row = cursor.execute("SELECT 1 FROM ui_revoked_sessions WHERE session_id = ?",
                         (session_id,)).fetchone()
    return row is not None


class SessionRevocations:
    """Revoked UI session ids, shared by every process on one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def revoke(self, session_id: str, expires: float, now: float) -> None:
        """Refuse ``session_id`` from now on (its cookie expires at ``expires``); purge rows
        whose cookies expired long ago, so the table stays as small as the live sessions."""
        try:
            await self.db.run(_txn_revoke, session_id, expires, now)
        except Exception as error:
            if not self.db.dialect.is_duplicate(error):
                raise
            # Two logouts of one session at once: the other one stored the row.

    async def is_revoked(self, session_id: str) -> bool:
        return await self.db.run(_txn_is_revoked, session_id)
