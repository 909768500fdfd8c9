"""The ingest's part of SPEC 10.3 (server offline): every accepted push moves its server's
deadline, inside the UPDATE of ``servers`` the batch runs anyway (no extra round trip).
"""
from __future__ import annotations

from typing import Any, Sequence

from overc.core.durations import Grace
from overc.storage.db import Cursor
from overc.storage.rows import chunks, marks


def update_servers_seen(cursor: Cursor, seen: dict[int, tuple[str, float]],
                         lower: dict[int, float], grace: Grace) -> int:
    """Record each server's address and last contact, and move its deadline (SPEC 10.3):
    one UPDATE ... CASE per 300 servers, the statement the batch runs anyway.

    The deadline is ``now + period + grace`` on the stored shortest period, which ``lower``
    (server id -> a shorter period this batch reported) lowers in the same statement. An
    offline server's deadline instead records its first push back (the watchdog raises
    ``server-online`` from it). Assignments read the old ``period`` on both databases because
    ``deadline`` is assigned before it (MySQL evaluates SET left to right).

    Returns the number of servers found (rows matched: pymysql is told FOUND_ROWS)."""
    rows = sorted(seen.items())
    matched = 0
    batch_now = max(now for _, (_, now) in rows) if rows else 0.0
    for chunk in chunks(rows, 300):
        ip_case = " ".join("WHEN ? THEN ?" for _ in chunk)
        params: list = []
        for server_id, (ip, _) in chunk:
            params += [server_id, ip]
        for server_id, (_, now) in chunk:
            params += [server_id, now]
        lowering = [(server_id, lower[server_id]) for server_id, _ in chunk
                    if server_id in lower]
        period, period_params = "period", []
        if lowering:
            shorter = f"CASE id {' '.join('WHEN ? THEN ?' for _ in lowering)} END"
            shorter_params = [value for pair in lowering for value in pair]
            period = f"CASE WHEN period IS NULL OR period > {shorter} THEN {shorter}" \
                " ELSE period END"
            period_params = shorter_params * 2
        allowance, allowance_params = allowance_sql(period, period_params, grace)
        params += [batch_now, batch_now, *allowance_params]
        set_period = ""
        if lowering:
            set_period = f", period = {period}"
            params += period_params
        params += [server_id for server_id, _ in chunk]
        cursor.execute(
            f"UPDATE servers SET ip = CASE id {ip_case} END,"
            f" last_seen = CASE id {ip_case} END,"
            f" deadline = CASE WHEN offline = 1 THEN COALESCE(deadline, ?)"
            f" ELSE ? + {allowance} END{set_period}"
            f" WHERE id IN ({marks(chunk)})",
            params,
        )
        matched += cursor.rowcount
    return matched


def grace_sql(period: str, params: list, grace: Grace) -> tuple[str, list]:
    """:meth:`overc.core.durations.Grace.for_period` over the SQL expression ``period``
    (whose placeholders are ``params``): the one rendering of the configured grace in SQL."""
    if grace.seconds is not None:
        return "?", [max(1.0, grace.seconds)]
    fraction = grace.fraction or 0.0
    return (f"CASE WHEN {period} * ? < 1 THEN 1 ELSE {period} * ? END",
            [*params, fraction, *params, fraction])


def allowance_sql(period: str, params: list, grace: Grace) -> tuple[str, list]:
    """:func:`overc.core.server_offline.allowance` over the SQL expression ``period``."""
    extra, extra_params = grace_sql(period, params, grace)
    return f"{period} + {extra}", [*params, *extra_params]


class ServerPeriods:
    """Which servers' stored shortest period a batch must lower (SPEC 10.3).

    ``known`` (shared by a store's batches, updated once committed) holds, per server, a
    period ``servers.period`` is known to be at most. A batch lowers only where it reports a
    shorter one; a report of a service that was stale or changed its period makes the next
    batch write the server's shortest reported period again (the watchdog may have raised the
    stored value while that service was stale)."""

    def __init__(self, known: dict[int, float]) -> None:
        self.known = known
        self.lower: dict[int, float] = {}
        self.forgotten: set[int] = set()

    def start(self, items: Sequence[Any]) -> None:
        """Items are :class:`overc.storage.ingest_store.IngestItem`."""
        self.lower, self.forgotten = {}, set()
        shortest: dict[int, float] = {}
        for item in items:
            for report in item.reports:
                if report.period and report.period < shortest.get(item.server_id, 1e300):
                    shortest[item.server_id] = float(report.period)
        self.lower = {server_id: period for server_id, period in shortest.items()
                      if period < self.known.get(server_id, 1e300)}

    def forget(self, server_id: int) -> None:
        self.forgotten.add(server_id)

    def committed(self) -> None:
        for server_id, period in self.lower.items():
            self.known[server_id] = min(period, self.known.get(server_id, period))
        for server_id in self.forgotten:
            self.known.pop(server_id, None)
