"""Small process-shared settings kept in the database (``ui_settings``, migration 0003).

Every server process must sign and check UI sessions with the same secret, so the first
process to ask creates it and the others read it.
"""
from __future__ import annotations

from overc.storage.db import Cursor, Database


def _txn_get_or_create(cursor: Cursor, name: str, candidate: str) -> str:
    row = cursor.execute("SELECT value FROM ui_settings WHERE name = ?", (name,)).fetchone()
    if row:
        (value,) = row
        return value
    cursor.execute("INSERT INTO ui_settings (name, value) VALUES (?, ?)", (name, candidate))
    return candidate


async def get_or_create_setting(db: Database, name: str, candidate: str) -> str:
    """The stored value of ``name``, storing ``candidate`` if there is none yet."""
    try:
        return await db.run(_txn_get_or_create, name, candidate)
    except Exception as error:
        if not db.dialect.is_duplicate(error):
            raise
        # Another process inserted it between our SELECT and INSERT: read theirs.
        return await db.run(_txn_get_or_create, name, candidate)
