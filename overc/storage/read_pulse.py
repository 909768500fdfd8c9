"""A cheap fingerprint of everything a page shows: live pages poll it and re-render on change.

Three aggregate queries, so an unchanged page costs them and a 304 (``overc.ui.pages``).
"""
from __future__ import annotations

from dataclasses import dataclass

from overc.storage.db import Cursor


@dataclass
class Pulse:
    token: str


def _txn_pulse(cursor: Cursor) -> Pulse:
    parts: list[object] = []
    for sql in (
        "SELECT COUNT(*), MAX(last_time), SUM(stale), SUM(acked), SUM(silenced_until),"
        " SUM(COALESCE(deadline, 0)), MAX(id), SUM(id) FROM services",
        "SELECT COUNT(*), MAX(id), SUM(silenced_until), MAX(last_seen) FROM servers",
        "SELECT MAX(id) FROM alerts",
    ):
        parts.extend(cursor.execute(sql).fetchone() or ())  # aggregates: always one row
    return Pulse(token="|".join(str(v) for v in parts))
