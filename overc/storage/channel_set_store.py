"""The channel set of every live process (``channel_sets``, migration 0010).

Registering is one transaction whose committed result decides: it first updates the
``channel_sets`` row of ``coordination`` (a row lock on InnoDB, a certification conflict on
Galera, one writer at a time on SQLite), so of two processes registering different sets at
once, the second sees the first's committed row and is refused. No ``GET_LOCK``.
"""
from __future__ import annotations

import json

from overc.core.channel_sets import ChannelSet, differing
from overc.storage.db import Cursor, Database

_COORDINATION_ID = 10  # the row migration 0010 adds to coordination


def _set_of(names: str, fingerprint: str) -> ChannelSet:
    return ChannelSet(tuple(str(n) for n in json.loads(names)), str(fingerprint))


def _txn_register(cursor: Cursor, process: str, here: ChannelSet, now: float,
                  expiry: float) -> list[ChannelSet]:
    cursor.execute("UPDATE coordination SET last_tick = ?, ticks = ticks + 1 WHERE id = ?",
                   (now, _COORDINATION_ID))
    cursor.execute("DELETE FROM channel_sets WHERE heartbeat < ? AND process <> ?",
                   (now - expiry, process))
    live = [_set_of(names, fingerprint) for names, fingerprint in cursor.execute(
        "SELECT names, fingerprint FROM channel_sets WHERE process <> ?", (process,)
    ).fetchall()]
    conflicts = differing(here, live)
    if conflicts:
        return conflicts  # nothing registered: this process must not dispatch
    names = json.dumps(list(here.names), ensure_ascii=False)
    cursor.execute(
        "INSERT INTO channel_sets (process, names, fingerprint, started, heartbeat)"
        " VALUES (?, ?, ?, ?, ?)"
        + cursor.dialect.upsert_suffix(("process",), ("names", "fingerprint", "heartbeat")),
        (process, names, here.fingerprint, now, now),
    )
    return []


def _txn_heartbeat(cursor: Cursor, process: str, now: float) -> bool:
    cursor.execute("UPDATE channel_sets SET heartbeat = ? WHERE process = ?", (now, process))
    return cursor.rowcount == 1


def _txn_remove(cursor: Cursor, process: str) -> None:
    cursor.execute("DELETE FROM channel_sets WHERE process = ?", (process,))


def _txn_live(cursor: Cursor, now: float, expiry: float) -> dict[str, ChannelSet]:
    return {str(process): _set_of(names, fingerprint) for process, names, fingerprint in
            cursor.execute("SELECT process, names, fingerprint FROM channel_sets"
                           " WHERE heartbeat >= ?", (now - expiry,)).fetchall()}


class ChannelSetStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def register(self, process: str, here: ChannelSet, now: float,
                       expiry: float) -> list[ChannelSet]:
        """Record ``here`` for ``process`` unless a live process (heartbeat within ``expiry``)
        has another set; return those other sets (empty: registered)."""
        return await self.db.run(_txn_register, process, here, now, expiry)

    async def heartbeat(self, process: str, now: float) -> bool:
        """Renew the row of ``process``; False when it is gone (expired and removed)."""
        return await self.db.run(_txn_heartbeat, process, now)

    async def remove(self, process: str) -> None:
        await self.db.run(_txn_remove, process)

    async def live(self, now: float, expiry: float) -> dict[str, ChannelSet]:
        """Every live process's set, by process (for tests and diagnostics)."""
        return await self.db.run(_txn_live, now, expiry)
