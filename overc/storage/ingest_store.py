"""The ingest side of storage: servers, reports and API alerts, written in batches.

``ingest`` takes the reports of many concurrent requests and commits them in ONE transaction
(the group commit behind a 200): the servers' last contact, one read of the services
involved, then the writes, whatever the number of requests in the batch: three round trips on
MariaDB (:class:`overc.storage.bulk_rows.Writes`), a handful of ``executemany`` on SQLite. The rules of what a
report changes live in :mod:`overc.core.snapshot`; this module only moves rows.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Sequence

from overc.core.alerts import API
from overc.core.counters import Counters
from overc.core.durations import Grace
from overc.core.errors import DatabaseUnavailable
from overc.core.payload import AlertRequest, Report
from overc.core.policy import Overrides, Policy, Settings, resolve
from overc.core.runs import RunStart
from overc.core.snapshot import ServiceSnapshot, apply_report, apply_start
from overc.core.states import FAIL
from overc.storage.db import Cursor, Database
from overc.storage.bulk_rows import DOUBLE, ID, INT, TEXT, Writes
from overc.storage.rows import chunks, marks
from overc.storage.server_seen import ServerPeriods, update_servers_seen


@dataclass(frozen=True)
class ServerRecord:
    id: int
    name: str
    key_hash: str


@dataclass
class IngestItem:
    """What one accepted push request wants stored."""

    server_id: int
    ip: str
    now: float
    reports: list[Report] = field(default_factory=list)
    alerts: list[AlertRequest] = field(default_factory=list)
    starts: list[RunStart] = field(default_factory=list)
    #: The server's name, which ``[policy:*]`` sections match (SPEC 10).
    server_name: str = ""


class ServerGone(Exception):
    """The server was deleted after its key was checked; the caller checks the key again."""


class Store:
    """Plain-value methods, one transaction each, over a :class:`Database`."""

    def __init__(self, db: Database, grace: Grace, counters: Counters,
                 policies: Sequence[Policy] = ()) -> None:
        self.db = db
        self.grace = grace
        self.counters = counters
        self.policies = tuple(policies)
        #: (report's settings, server, service) -> effective settings, shared by batches.
        self.settings_cache: dict[tuple, tuple[Settings, tuple]] = {}
        #: service id -> the settings row this process knows the database holds (committed).
        self.settings_written: dict[int, tuple] = {}
        #: server id -> a period this process knows ``servers.period`` is at most (SPEC 10.3):
        #: only a shorter one is written, so the steady state adds no parameter to the batch.
        self.server_periods: dict[int, float] = {}

    async def get_server(self, name: str) -> ServerRecord | None:
        return await self.db.run(_txn_get_server, name)

    async def register_server(self, name: str, key_hash: str, ip: str, now: float
                              ) -> tuple[ServerRecord, bool]:
        """Create the server; ``(record, created)``: a concurrent registration may win."""
        try:
            return await self.db.run(_txn_register_server, name, key_hash, ip, now)
        except Exception as error:
            if not self.db.dialect.is_duplicate(error):
                raise
        # Another request (or process) registered the name between our read and our insert.
        record = await self.get_server(name)
        if record is None:  # and deleted it again: extremely unlikely; let the client retry
            raise DatabaseUnavailable("server registration raced with its deletion")
        return record, False

    async def ingest(self, items: list[IngestItem]) -> list[Exception | None]:
        """Commit every item in one transaction; per item None, or ServerGone."""
        if len(self.settings_cache) > 200_000 or len(self.settings_written) > 200_000:
            self.settings_cache.clear()  # a bound; refilled at the next report of each service
            self.settings_written.clear()
            self.server_periods.clear()
        periods = ServerPeriods(self.server_periods)
        results, alerts, written = await self.db.run(
            _txn_ingest, items, self.grace, self.policies, self.settings_cache,
            self.settings_written, periods)
        self.settings_written.update(written)  # committed: no need to write them again
        periods.committed()
        if alerts:
            self.counters.inc("alerts", alerts)  # counted once committed
        return results


def _txn_get_server(cursor: Cursor, name: str) -> ServerRecord | None:
    row = cursor.execute(
        "SELECT id, name, key_hash FROM servers WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        return None
    server_id, server_name, key_hash = row
    return ServerRecord(server_id, server_name, key_hash)


def _txn_register_server(cursor: Cursor, name: str, key_hash: str, ip: str, now: float
                         ) -> tuple[ServerRecord, bool]:
    existing = _txn_get_server(cursor, name)
    if existing is not None:
        return existing, False
    cursor.execute(
        "INSERT INTO servers (name, key_hash, ip, created, last_seen) VALUES (?, ?, ?, ?, ?)",
        (name, key_hash, ip, now, now),
    )
    return ServerRecord(cursor.lastrowid, name, key_hash), True


def _txn_ingest(cursor: Cursor, items: list[IngestItem], grace: Grace,
                policies: tuple[Policy, ...] = (), settings_cache: dict | None = None,
                settings_written: dict | None = None, periods: ServerPeriods | None = None
                ) -> tuple[list[Exception | None], int, dict[int, tuple]]:
    mysql = cursor.dialect.name == "mysql"
    lock = " FOR UPDATE" if mysql else ""

    # Each server's address and last contact first: the UPDATE takes the servers' row locks
    # in id order before any service lock (two processes ingesting for the same servers wait
    # for each other instead of deadlocking) and its matched-row count tells whether every
    # server still exists; only when one was deleted meanwhile is there a SELECT to find it.
    seen: dict[int, tuple[str, float]] = {}
    for item in items:
        seen[item.server_id] = (item.ip, item.now)
    periods = ServerPeriods({}) if periods is None else periods
    periods.start(items)
    if update_servers_seen(cursor, seen, periods.lower, grace) == len(seen):
        alive = set(seen)
    else:
        alive = set()
        for chunk in chunks(sorted(seen)):
            cursor.execute(f"SELECT id FROM servers WHERE id IN ({marks(chunk)})", chunk)
            alive.update(server_id for (server_id,) in cursor.fetchall())
    results: list[Exception | None] = [
        None if item.server_id in alive else ServerGone() for item in items
    ]
    live = [item for item in items if item.server_id in alive]
    if not live:
        return results, 0, {}

    # One read of every service the batch touches, locked for the rest of the transaction.
    # On Galera the lock holds on this node only: a process on another node that writes the
    # same rows makes one of the two COMMITs fail with 1213, and Database.run runs this whole
    # function again (it only reads and writes rows; nothing is answered before COMMIT).
    wanted = sorted({
        (item.server_id, name)
        for item in live
        for name in [r.service for r in item.reports]
        + [a.service for a in item.alerts if a.service is not None]
        + [s.service for s in item.starts]
    })
    services: dict[tuple[int, str], list] = {}
    new_services: set[tuple[int, str]] = set()  # their settings are the column defaults
    if wanted:
        _load_services(cursor, wanted, services, lock)
        missing = [key for key in wanted if key not in services]
        if missing:
            now = max(item.now for item in live)
            cursor.executemany(
                "INSERT INTO services (server_id, name, created) VALUES (?, ?, ?)",
                [(server_id, name, now) for server_id, name in missing],
            )
            _load_services(cursor, missing, services, lock)
            new_services.update(missing)

    history: list[tuple] = []
    perfdata: list[tuple] = []
    alerts: list[list] = []  # lists: _fill_info completes the info of API alerts in place
    api_alerts: list[int] = []  # their snapshot needs the info text, which is not preloaded
    touched: dict[tuple[int, str], ServiceSnapshot] = {}
    cache = {} if settings_cache is None else settings_cache
    settings: dict[tuple[int, str], tuple] = {}  # the effective settings as a row holds them
    for item in live:
        for start in item.starts:
            key = (item.server_id, start.service)
            service_id, snapshot = services[key]
            started = start.time if start.time is not None else item.now
            services[key] = [service_id, apply_start(snapshot, started, start.timeout, grace)]
            touched[key] = services[key][1]
        for report in item.reports:
            key = (item.server_id, report.service)
            service_id, snapshot = services[key]
            if snapshot.stale or (snapshot.period is not None
                                  and snapshot.period != report.period):
                periods.forget(item.server_id)  # the server's shortest period may be shorter
            when = report.time if report.time is not None else item.now
            wanted_settings = (report.settings, item.server_name, report.service)
            found = cache.get(wanted_settings)
            if found is None:
                found = cache[wanted_settings] = _effective(report.settings, policies,
                                                            item.server_name, report.service)
            effective, settings_row = found
            outcome = apply_report(snapshot, report.state, report.info, report.period, when,
                                   grace, arrival=item.now, schedule=report.schedule,
                                   tz=report.tz, report_grace=report.grace,
                                   duration=report.duration, attempts=effective.attempts,
                                   flapping=effective.flapping)
            history.append((service_id, when, report.state, report.info, int(outcome.late),
                            outcome.duration))
            perfdata.extend(
                (service_id, when, m.label, m.value, m.uom, m.warn, m.crit, m.min, m.max)
                for m in report.metrics
            )
            for alert in outcome.alerts:
                alerts.append([item.server_id, service_id, item.now, alert.kind, alert.severity,
                               alert.message, report.state, report.info, alert.held])
            if outcome.current_changed:
                services[key] = [service_id, outcome.service]
                touched[key] = outcome.service
                settings[key] = settings_row
        for request in item.alerts:
            service_id, snapshot = (
                services[(item.server_id, request.service)]
                if request.service is not None else (None, ServiceSnapshot())
            )
            api_alerts.append(len(alerts))
            alerts.append([item.server_id, service_id, item.now, API, FAIL, request.message,
                           snapshot.state, snapshot.info, None])

    # API alerts snapshot their service's info: read before any write is held (below).
    _fill_info(cursor, [alerts[i] for i in api_alerts], touched, services)
    # Every write of the batch in one round trip on MySQL (overc.storage.bulk_rows.Writes).
    writes = Writes(cursor)
    writes.insert("INSERT INTO states (service_id, time, state, info, late, duration)",
                  _STATE_KINDS, history)
    writes.insert("INSERT INTO perfdata (service_id, time, label, value, uom, warn, crit,"
                  " min, max)", _PERFDATA_KINDS, perfdata)
    writes.insert("INSERT INTO alerts (server_id, service_id, time, kind, severity,"
                  " message, state, info, held)", _ALERT_KINDS, alerts)
    # Rows are locked and exist: an upsert by id is a bulk UPDATE in one statement (literals
    # written once on MySQL, see overc.storage.bulk_rows; an UPDATE per row would be N trips).
    # A start signal alone leaves staleness as it is; a report clears it.
    writes.insert(
        "INSERT INTO services (id, server_id, name, created, state, info, period, last_time,"
        f" deadline, acked, {', '.join(_RUN_COLUMNS + _NOISE_COLUMNS)}, stale)",
        _SERVICE_KINDS,
        [
            (services[key][0], key[0], key[1], s.last_time or 0.0, s.state, s.info, s.period,
             s.last_time, s.deadline, int(s.acked), *_run_values(s), s.soft_state,
             s.soft_count, s.flap_bits, int(s.flapping), int(s.ack_sticky), s.ack_expires,
             int(s.stale))
            for key, s in touched.items()
        ],
        cursor.dialect.upsert_suffix(("id",), _SERVICE_UPSERT, cursor.dialect.set_changed_at),
    )
    written = _write_settings(writes, settings, services, new_services,
                              settings_written if settings_written is not None else {})
    writes.send()
    return results, len(alerts), written


# SPEC 10: the effective settings, the soft state and the flapping bookkeeping of a service,
# written by the same upsert as its state (no extra statement per report).
_NOISE_COLUMNS = ("soft_state", "soft_count", "flap_bits", "flapping", "ack_sticky",
                  "ack_expires")
#: The kinds of the values of each INSERT's rows, in column order (overc.storage.bulk_rows).
_STATE_KINDS = (ID, DOUBLE, TEXT, TEXT, INT, DOUBLE)
_PERFDATA_KINDS = (ID, DOUBLE, TEXT, DOUBLE, TEXT, TEXT, TEXT, DOUBLE, DOUBLE)
_ALERT_KINDS = (ID, ID, DOUBLE, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT)
#: services: id, server_id, name, created, state, info, period, last_time, deadline, acked,
#: schedule, tz, grace, run_started, run_timeout, run_deadline, run_late, duration,
#: soft_state, soft_count, flap_bits, flapping, ack_sticky, ack_expires, stale.
_SERVICE_KINDS = (ID, ID, TEXT, DOUBLE, TEXT, TEXT, INT, DOUBLE, DOUBLE, INT,
                  TEXT, TEXT, DOUBLE, DOUBLE, INT, DOUBLE, INT, DOUBLE,
                  TEXT, INT, INT, INT, INT, DOUBLE, INT)
_SETTINGS_KINDS = (ID, ID, TEXT, DOUBLE, INT, TEXT, TEXT, TEXT)
#: What the defaults look like in a row: a service never touched by a report field or policy.
_DEFAULT_SETTINGS = (1, "30/25", None, None)


def _effective(report: Overrides, policies: tuple[Policy, ...], server: str, service: str
               ) -> tuple[Settings, tuple]:
    """The effective settings of a report's service, and ``(attempts, flap_thresholds,
    depends_on, settings_source)`` as its row holds them. The ingest caches them per store:
    the same services report again and again (reports that set nothing share one
    ``Overrides`` instance, so the cache compares them by identity)."""
    effective = resolve(report, policies, server, service)
    sources = [where for _, where in effective.sources]
    source = None if all(where == "default" for where in sources) else "\n".join(sources)
    return effective, (effective.attempts, effective.flapping, effective.depends_on, source)


def _write_settings(writes: Writes, settings: dict, services: dict, new_services: set,
                    known: dict[int, tuple]) -> dict[int, tuple]:
    """Write the effective settings this process does not know the database holds yet (a
    service's first report since start, a changed report field): one multi-row upsert, and
    none at all in the steady state. Returns what was written, for the caller to remember
    once committed (``known``: service id -> settings row)."""
    changed: dict[int, tuple] = {}
    rows = []
    for key, row in settings.items():
        service_id = services[key][0]
        before = _DEFAULT_SETTINGS if key in new_services else known.get(service_id)
        if row != before:
            changed[service_id] = row
            rows.append((service_id, key[0], key[1], 0.0, *row))
        elif key in new_services:
            changed[service_id] = row
    writes.insert(
        "INSERT INTO services (id, server_id, name, created, attempts, flap_thresholds,"
        " depends_on, settings_source)", _SETTINGS_KINDS, rows,
        writes.cursor.dialect.upsert_suffix(
            ("id",), ("attempts", "flap_thresholds", "depends_on", "settings_source")))
    return changed


#: What SPEC 9 adds to a service row, in :func:`_run_values`'s order.
_RUN_COLUMNS = ("schedule", "tz", "grace", "run_started", "run_timeout", "run_deadline",
                "run_late", "duration")


#: The columns the state upsert sets on an existing service row.
_SERVICE_UPSERT = (("state", "info", "period", "last_time", "deadline", "acked") + _RUN_COLUMNS
                   + _NOISE_COLUMNS + ("stale",))


def _run_values(s: ServiceSnapshot) -> tuple:
    return (s.schedule, s.tz, s.grace, s.run_started, s.run_timeout, s.run_deadline,
            int(s.run_late), s.duration)


# Positions in a row of the alerts INSERT (server_id, service_id, ..., state, info).
_SERVICE_ID, _INFO = 1, 7


def _fill_info(cursor: Cursor, rows: list[list], touched: dict, services: dict) -> None:
    """API alerts snapshot their service's info: read it for the services this batch did not
    just report (rare: alerts naming a service). Row layout as in the alerts INSERT."""
    by_id = {services[key][0]: snapshot.info for key, snapshot in touched.items()}
    wanted = sorted({
        row[_SERVICE_ID] for row in rows
        if row[_SERVICE_ID] is not None and row[_SERVICE_ID] not in by_id
    })
    for chunk in chunks(wanted):
        cursor.execute(f"SELECT id, info FROM services WHERE id IN ({marks(chunk)})", chunk)
        by_id.update(cursor.fetchall())
    for row in rows:
        if row[_SERVICE_ID] is not None:
            row[_INFO] = by_id.get(row[_SERVICE_ID])


def _load_services(cursor: Cursor, keys: list[tuple[int, str]],
                   into: dict[tuple[int, str], list], lock: str) -> None:
    """Fill ``into[(server_id, name)] = [id, snapshot]`` for the services that exist.

    One query per 500 keys: ``server_id IN (...) AND name IN (...)`` uses the unique index and
    may return a few extra pairs, which are filtered here by exact match.
    """
    for chunk in chunks(keys):
        wanted = set(chunk)
        server_ids = sorted({server_id for server_id, _ in chunk})
        names = sorted({name for _, name in chunk})
        columns = ("id, server_id, name, state, period, last_time, deadline, stale, acked,"
                   f" {', '.join(_RUN_COLUMNS + _NOISE_COLUMNS)}")
        where = (f" FROM services WHERE server_id IN ({marks(server_ids)})"
                 f" AND name IN ({marks(names)}){lock}")
        found: list
        if cursor.dialect.name == "mysql":
            # The rows as one JSON document (exact doubles): json.loads runs in C, where
            # PyMySQL would decode every value of every row in Python (~7 % of a push).
            head, aggregate = cursor.dialect.json_array_aggregate(cursor)
            row = cursor.execute(f"{head}SELECT {aggregate}(JSON_ARRAY({columns})){where}",
                                 [*server_ids, *names]).fetchone()
            found = json.loads(row[0]) if row and row[0] else []
        else:
            found = cursor.execute(f"SELECT {columns}{where}", [*server_ids, *names]).fetchall()
        for (service_id, server_id, name, state, period, last_time, deadline, stale,
             acked, schedule, tz, grace, run_started, run_timeout, run_deadline, run_late,
             duration, soft_state, soft_count, flap_bits, flapping, ack_sticky,
             ack_expires) in found:
            key = (server_id, name)
            if key in wanted:
                into[key] = [service_id, ServiceSnapshot(
                    state=state, period=period, last_time=last_time, deadline=deadline,
                    stale=bool(stale), acked=bool(acked), schedule=schedule, tz=tz,
                    grace=grace, run_started=run_started, run_timeout=run_timeout,
                    run_deadline=run_deadline, run_late=bool(run_late), duration=duration,
                    soft_state=soft_state, soft_count=soft_count, flap_bits=flap_bits,
                    flapping=bool(flapping), ack_sticky=bool(ack_sticky),
                    ack_expires=ack_expires,
                )]
