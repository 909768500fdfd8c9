"""One service's history as the service page and the read API see it: reports and perfdata.

Each ``_txn_*`` runs in one transaction (``Database.run``) and returns plain dataclasses.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from overc.storage.db import Cursor


@dataclass
class StateRow:
    id: int
    time: float
    state: str
    info: str | None
    late: bool
    duration: float | None = None  # SPEC 9.3: how long the run this report ended took


@dataclass
class PerfPoint:
    time: float
    label: str
    value: float
    uom: str | None
    warn: str | None
    crit: str | None
    min: float | None
    max: float | None


#: One time bucket of a chart: ``(column, low, high, sum, count)``.
Bucket = tuple[int, float, float, float, int]


@dataclass
class PerfSeries:
    """One perfdata label over a time range, already reduced to ``columns`` time buckets.

    ``buckets`` are in column order; ``last`` is the newest point with its unit and thresholds
    (a chart needs them once)."""

    label: str
    buckets: list[Bucket]
    last: PerfPoint


_STATE_COLUMNS = "id, time, state, info, late, duration"


def _state_row(row: Sequence[Any]) -> StateRow:
    state_id, time, state, info, late, duration = row
    return StateRow(state_id, time, state, info, bool(late), duration)


def _txn_states(
    cursor: Cursor, service_id: int, since: float, until: float, limit: int, after_id: int
) -> list[StateRow]:
    """Reports of one service in [since, until], oldest first; ``after_id`` breaks time ties."""
    rows = cursor.execute(
        f"SELECT {_STATE_COLUMNS} FROM states WHERE service_id = ?"
        " AND ((time = ? AND id > ?) OR time > ?) AND time <= ? ORDER BY time, id LIMIT ?",
        (service_id, since, after_id, since, until, limit),
    ).fetchall()
    return [_state_row(r) for r in rows]


#: Reports per run of equal states that the service page lists (``views.collapse_runs``'s
#: ``keep_items``): on MariaDB only these rows' ``info`` and ``late`` are read.
RUN_DETAIL = 50


def _txn_recent_states(
    cursor: Cursor, service_id: int, since: float, limit: int, detail: int = RUN_DETAIL
) -> tuple[list[StateRow], StateRow | None]:
    """The newest ``limit`` reports since ``since`` (oldest first) and the one before them.

    Every row has its exact ``id``, ``time`` and ``state``. Where the dialect has
    ``GROUP_CONCAT(... LIMIT n)`` (MariaDB), ``info`` and ``late`` are read only for the newest
    ``detail`` reports of each run of equal states (what the history lists; a run's newest
    report is among them); the other rows carry ``None`` and ``False``.
    """
    states = None
    if cursor.dialect.has_group_concat_limit(cursor):
        states = _recent_states_concat(cursor, service_id, since, limit, detail)
    if states is None:
        rows = cursor.execute(
            f"SELECT {_STATE_COLUMNS} FROM states WHERE service_id = ? AND time >= ?"
            " ORDER BY time DESC, id DESC LIMIT ?",
            (service_id, since, limit),
        ).fetchall()
        states = [_state_row(r) for r in reversed(rows)]
    before_time = states[0].time if states else since
    prior = cursor.execute(
        f"SELECT {_STATE_COLUMNS} FROM states WHERE service_id = ? AND time < ?"
        " ORDER BY time DESC, id DESC LIMIT 1",
        (service_id, before_time),
    ).fetchone()
    return states, (_state_row(prior) if prior else None)


def _recent_states_concat(
    cursor: Cursor, service_id: int, since: float, limit: int, detail: int
) -> list[StateRow] | None:
    """MariaDB: the newest ``limit`` reports as one ``GROUP_CONCAT`` string, then ``info`` and
    ``late`` of the listed rows only; None when a state holds the separator (plain rows then).

    10,000 rows through pymysql cost ~110 ms, mostly per row; one string of ``id time state``
    items costs ~55 ms. MariaDB prints a DOUBLE in text with as many digits as it needs to
    read back exactly (``float()`` of it is the stored value; tests/ui checks it).
    """
    found = cursor.execute(
        "SET STATEMENT group_concat_max_len = 1073741824 FOR"
        " SELECT COUNT(*), GROUP_CONCAT(id, ' ', time, ' ', state"
        f" ORDER BY time DESC, id DESC SEPARATOR ',' LIMIT {int(limit)})"
        " FROM states WHERE service_id = ? AND time >= ?",
        (service_id, since),
    ).fetchone()
    count, text = found if found is not None else (0, None)  # an aggregate: always one row
    expected = min(int(count), max(int(limit), 0))
    if not expected:
        return []
    items = text.split(",") if text else []
    if len(items) != expected:
        return None  # a state with a comma (ingest only writes OK/WARN/FAIL/UNK)
    states: list[StateRow] = []
    shown: dict[int, StateRow] = {}
    previous, position = None, 0
    for item in items:  # newest first
        row_id, when, state = item.split(" ", 2)
        row = StateRow(int(row_id), float(when), state, None, False)
        states.append(row)
        position = position + 1 if state == previous else 0
        previous = state
        if position < detail:
            shown[row.id] = row
    if shown:
        marks = ", ".join("?" for _ in shown)
        for row_id, info, late, duration in cursor.execute(
            f"SELECT id, info, late, duration FROM states WHERE service_id = ?"
            f" AND id IN ({marks})",
            (service_id, *shown),
        ).fetchall():
            row = shown[row_id]
            row.info = info
            row.late = bool(late)
            row.duration = duration
    states.reverse()
    return states


def _txn_perfdata_series(
    cursor: Cursor, service_id: int, since: float, until: float, columns: int
) -> list[PerfSeries]:
    """Every label of a service since ``since``, grouped into ``columns`` equal time buckets by
    the database (20,000 points become a few hundred rows), plus the newest point per label."""
    scale = columns / ((until - since) or 1.0)
    bucket = cursor.dialect.floor_to_int("(time - ?) * ?")
    rows = cursor.execute(
        f"SELECT label, {bucket} AS col, MIN(value), MAX(value), SUM(value), COUNT(*)"
        " FROM perfdata WHERE service_id = ? AND time >= ? GROUP BY label, col"
        " ORDER BY label, col",
        (since, scale, service_id, since),
    ).fetchall()
    by_label: dict[str, list[Bucket]] = {}
    for label, col, low, high, total, count in rows:
        col = min(int(col), columns - 1)  # a report from the future: the last column
        buckets = by_label.setdefault(label, [])
        if buckets and buckets[-1][0] == col:
            _, b_low, b_high, b_total, b_count = buckets[-1]
            buckets[-1] = (col, min(low, b_low), max(high, b_high), b_total + total,
                           b_count + count)
        else:
            buckets.append((col, low, high, total, count))
    series: list[PerfSeries] = []
    for label, buckets in by_label.items():
        newest = cursor.execute(
            "SELECT time, value, uom, warn, crit, min, max FROM perfdata"
            " WHERE service_id = ? AND label = ? ORDER BY time DESC LIMIT 1",
            (service_id, label),
        ).fetchone()
        if newest is None:  # cannot happen in one transaction: the label was just counted
            continue
        time, value, uom, warn, crit, low, high = newest
        series.append(PerfSeries(label, buckets, PerfPoint(time, label, value, uom, warn, crit,
                                                            low, high)))
    return series
