"""The watchdog's storage: find overdue services, mark them stale, raise one `offline` alert
each, and give every overdue service a fresh period after OverC was away.

One tick is one transaction serialized across processes by the ``coordination`` row (see
:func:`overc.storage.alert_tables.lock_job`), so each stale transition happens once however
many processes share the database. The common tick finds nothing and writes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from overc.core.alerts import OFFLINE, TIMEOUT
from overc.core.durations import Grace
from overc.core.retry import AGENT_RETURN_WITHIN
from overc.core.runs import timeout_message
from overc.core.server_offline import HELD_SERVER_OFFLINE, Verdict, service_verdict
from overc.core.states import FAIL
from overc.core.watchdog_rules import heartbeat_due, offline_message, was_away
from overc.storage.alert_tables import Dispatch, Job, lock_job
from overc.storage.db import Cursor, Database
from overc.storage.rows import Columns, chunks, marks
from overc.storage.server_seen import grace_sql
from overc.storage.server_watch import (
    PROBES, ServerTick, claim_rechecks, claim_servers, refresh as refresh_servers, servers_back,
)


@dataclass(frozen=True)
class TickResult:
    """What one watchdog tick did."""

    expired: list[int] = field(default_factory=list)  # services that went stale
    refreshed: int = 0  # services given a fresh period (restart awareness)
    away_since: float | None = None  # last tick before the gap, when one was found
    timeouts: list[int] = field(default_factory=list)  # services whose run timed out
    #: SPEC 10.3: servers gone offline / back, services notified after their server's return.
    servers: ServerTick = field(default_factory=ServerTick)

    @property
    def alerts(self) -> int:
        """How many alerts this tick raised (and committed)."""
        return len(self.expired) + len(self.timeouts) + self.servers.alerts


class WatchdogStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def watchdog_tick(self, now: float, *, interval: float, grace: Grace,
                            limit: int = 5000,
                            turned_away: bool | Callable[[], bool] = False) -> TickResult:
        """Restart awareness, then mark overdue services stale with one `offline` alert each.

        ``turned_away``: this process could not reach the database since its last tick (a
        failed tick, or pushes answered 503): a gap in watching however short, since agents
        that got a 503 are on their backoff now; deadlines get the fresh window as after any
        gap (issue 9: a 3 s outage must not raise false alarms). A callable is asked inside
        the transaction, at the attempt that runs: a tick that retried through the outage
        itself sees the pushes refused meanwhile.
        """
        return await self.db.run(_txn_watchdog_tick, now, interval, grace, limit, turned_away)


def fresh_deadline_sql(grace: Grace) -> tuple[str, tuple[float, ...]]:
    """:func:`overc.core.watchdog_rules.fresh_deadline` as one portable SQL expression over a
    ``services`` row (its period, schedule and own grace).

    It lets restart awareness move every early deadline in one statement; the placeholder
    list is ``(now, ...)`` for the caller to prefix.
    """
    window = "CASE WHEN schedule IS NULL AND period > ? THEN period ELSE ? END"
    wait = (AGENT_RETURN_WITHIN, AGENT_RETURN_WITHIN)
    own = "CASE WHEN grace < 1 THEN 1 ELSE grace END"
    config, values = grace_sql("period", [], grace)
    return (f"? + {window} + CASE WHEN grace IS NULL THEN {config} ELSE {own} END",
            (*wait, *values))


_DUE = Columns("Due", id="s.id", server_id="s.server_id", period="s.period",
               last_time="s.last_time", state="s.state", info="s.info", deadline="s.deadline",
               grace="s.grace", schedule="s.schedule", server_offline="v.offline", server_deadline="v.deadline",
               server_last_seen="v.last_seen")


def _txn_watchdog_tick(cursor: Cursor, now: float, interval: float, grace: Grace,
                       limit: int, turned_away: bool | Callable[[], bool] = False
                       ) -> TickResult:
    if callable(turned_away):
        turned_away = turned_away()
    # The common tick finds nothing: answer it read-only (no lock, no write, no disk flush).
    last_seen = cursor.execute("SELECT last_tick FROM coordination WHERE id = ?",
                               (Job.WATCHDOG.value,)).fetchone()
    if last_seen is None:
        raise RuntimeError("the coordination table has no watchdog row: run the migrations")
    (seen_tick,) = last_seen
    if (not turned_away and not was_away(now, seen_tick, interval)
            and not heartbeat_due(now, seen_tick, interval)):
        if not _anything_due(cursor, now):
            return TickResult()
    last_tick = lock_job(cursor, Job.WATCHDOG, now)
    away = was_away(now, last_tick, interval) or turned_away
    service_fresh = fresh_deadline_sql(grace)
    # Servers first (SPEC 10.3), in the order ingest locks rows (servers, then services).
    servers = ServerTick()
    if away:
        refresh_servers(cursor, now, grace, service_fresh)
    servers.online = servers_back(cursor, now, grace, limit, service_fresh)
    servers.offline = claim_servers(cursor, now, grace, limit)
    timeouts = _claim_timeouts(cursor, now, limit, away)
    refreshed = 0
    away_since = None
    if away:
        # Nobody watched since last_tick (OverC down, or its database): agents could not report
        # and are on their own backoff now, so no deadline may end before they can be back:
        # every earlier one moves to the fresh window (one statement, only after a gap).
        away_since = last_tick
        expression, extra = service_fresh
        cursor.execute(
            f"UPDATE services SET deadline = {expression}"
            f" WHERE stale = 0 AND deadline < {expression}",
            (now, *extra, now, *extra),
        )
        refreshed = max(0, cursor.rowcount)
    # Through the (stale, deadline) index: cost follows the services that expire.
    rows = _DUE.read_all(cursor.execute(
        f"SELECT {_DUE.sql} FROM services s JOIN servers v ON v.id = s.server_id"
        " WHERE s.stale = 0 AND s.deadline < ? ORDER BY s.deadline LIMIT ?",
        (now, limit),
    ).fetchall())
    verdicts = {row.id: _verdict(row, now, grace) for row in rows}
    _wait_for_servers(cursor, [row for row in rows if verdicts[row.id] is Verdict.WAIT], now)
    rows = [row for row in rows if verdicts[row.id] is not Verdict.WAIT]
    claimed: list[Any] = []  # _DUE rows
    for chunk in chunks(rows):
        ids = [row.id for row in chunk]
        # The job lock makes this tick the only watchdog now; ingest only ever clears stale and
        # moves deadlines, so a row this UPDATE skips got a report meanwhile.
        cursor.execute(
            f"UPDATE services SET stale = 1 WHERE id IN ({marks(ids)})"
            " AND stale = 0 AND deadline < ?",
            (*ids, now),
        )
        if cursor.rowcount == len(ids):
            claimed.extend(chunk)
            continue
        stale_now = {
            service_id for (service_id,) in cursor.execute(
                f"SELECT id FROM services WHERE id IN ({marks(ids)}) AND stale = 1", ids
            ).fetchall()
        }
        claimed.extend(row for row in chunk if row.id in stale_now)
    # Only placeholders in VALUES: pymysql turns executemany into one multi-row INSERT then
    # (a literal there makes it one round trip per row). A service of an offline server is
    # held at insert: no later step has anything to decide (SPEC 10.3).
    cursor.executemany(
        "INSERT INTO alerts (server_id, service_id, time, kind, severity, message, state, info,"
        " held, dispatched) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (row.server_id, row.id, now, OFFLINE, FAIL,
             offline_message(now, row.last_time, row.period), row.state, row.info,
             HELD_SERVER_OFFLINE if verdicts[row.id] is Verdict.HELD else None,
             Dispatch.PENDING.value)
            for row in claimed
        ],
    )
    servers.rechecked = claim_rechecks(cursor, now, limit)
    return TickResult(sorted(row.id for row in claimed), refreshed, away_since, timeouts,
                      servers)


def _anything_due(cursor: Cursor, now: float) -> bool:
    """One read-only query over the watch indexes: a service or run deadline passed, a server
    deadline passed or an offline server pushed, a recheck is due."""
    probes = ("SELECT 1 FROM services WHERE stale = 0 AND deadline < ?",
              "SELECT 1 FROM services WHERE run_deadline < ?", *PROBES)
    row = cursor.execute(
        "SELECT " + " OR ".join(f"EXISTS ({probe})" for probe in probes),
        (now,) * sum(probe.count("?") for probe in probes),
    ).fetchone()
    return bool(row and row[0])


def _verdict(row: Any, now: float, grace: Grace) -> Verdict:
    own = max(1.0, row.grace) if row.grace is not None else grace.for_period(row.period or 0)
    deadline = row.deadline
    if not row.schedule and row.period and row.last_time is not None:
        # A service that already waited once has its server's deadline as its own: judge it by
        # when its report was due, or a live server's every push would make it wait again
        # and a hung plugin would never be notified.
        deadline = min(deadline, row.last_time + row.period + own)
    return service_verdict(server_offline=bool(row.server_offline),
                           server_deadline=row.server_deadline,
                           server_last_seen=row.server_last_seen,
                           service_due=deadline - own, now=now,
                           service_deadline=deadline,
                           max_wait=0.0 if row.schedule else (row.period or 0) + own)


def _wait_for_servers(cursor: Cursor, rows: list[Any], now: float) -> None:
    """Services whose server has been silent since they were due: their deadline becomes the
    server's, so they go stale with it (held) or, if it pushes meanwhile, alone."""
    by_deadline: dict[float, list[int]] = {}
    for row in rows:
        by_deadline.setdefault(row.server_deadline, []).append(row.id)
    for deadline, ids in by_deadline.items():
        for chunk in chunks(ids):
            cursor.execute(
                f"UPDATE services SET deadline = ? WHERE id IN ({marks(chunk)})"
                " AND stale = 0 AND deadline < ?", (deadline, *chunk, now))


# -- Runs (SPEC 9.3): a start signal without a report within timeout + grace ----------------

_RUN = Columns("Run", id="id", server_id="server_id", run_started="run_started",
               run_timeout="run_timeout", state="state", info="info")


def _claim_timeouts(cursor: Cursor, now: float, limit: int, away: bool) -> list[int]:
    """Raise one `timeout` alert per run whose deadline passed; called under the job lock.

    Clearing ``run_deadline`` is the claim (a conditional write: a report that ended the run
    meanwhile cleared it first), so each timeout is raised once across processes. After OverC
    was away, overdue runs get their timeout plus grace again from now instead: their report
    may have been refused while nobody listened.
    """
    if away:
        cursor.execute(
            "UPDATE services SET run_deadline = ? + run_deadline - run_started"
            " WHERE run_deadline < ?",
            (now, now),
        )
    rows = _RUN.read_all(cursor.execute(
        f"SELECT {_RUN.sql} FROM services WHERE run_deadline < ? ORDER BY run_deadline LIMIT ?",
        (now, limit),
    ).fetchall())
    claimed: list[Any] = []
    for chunk in chunks(rows):
        ids = [row.id for row in chunk]
        cursor.execute(
            f"UPDATE services SET run_deadline = NULL, run_late = 1 WHERE id IN ({marks(ids)})"
            " AND run_deadline < ?",
            (*ids, now),
        )
        if cursor.rowcount == len(ids):
            claimed.extend(chunk)
            continue
        late = {
            service_id for (service_id,) in cursor.execute(
                f"SELECT id FROM services WHERE id IN ({marks(ids)}) AND run_late = 1"
                " AND run_deadline IS NULL AND run_started IS NOT NULL", ids
            ).fetchall()
        }
        claimed.extend(row for row in chunk if row.id in late)
    cursor.executemany(
        "INSERT INTO alerts (server_id, service_id, time, kind, severity, message, state, info,"
        " dispatched) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (row.server_id, row.id, now, TIMEOUT, FAIL,
             timeout_message(now, row.run_started, row.run_timeout), row.state, row.info,
             Dispatch.PENDING.value)
            for row in claimed
        ],
    )
    return sorted(row.id for row in claimed)
