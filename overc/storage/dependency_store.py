"""Dependencies in the dispatcher's transaction (SPEC 10.4): hold the alerts of children whose
parent is down, and catch up on them once the parent is back.

Both run inside :func:`overc.storage.dispatch_store._txn_dispatch`, which the ``coordination``
row serializes across processes, and read the parent as it is at that moment (READ COMMITTED:
a parent's change committed by an ingest batch before the dispatch counts). A held alert is
marked with its reason (``alerts.held = 'depends on mysql'``) and its service with
``held_by_parent``; the catch-up is claimed by the conditional write that clears that flag, so
it happens once however many processes dispatch. The rules are :mod:`overc.core.dependencies`.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from overc.core.alerts import Alert
from overc.core.dependencies import ChildNow, Parent, catch_up, hold, parent_down
from overc.storage.db import Cursor
from overc.storage.maintenance_store import _told_status
from overc.storage.rows import Columns, chunks, marks

_CHILD = Columns(
    "Child", id="c.id", server_id="c.server_id", name="c.name", depends_on="c.depends_on",
    state="c.state", stale="c.stale", acked="c.acked", info="c.info", flapping="c.flapping",
    parent_id="p.id", parent_state="p.state", parent_stale="p.stale",
    parent_depends_on="p.depends_on",
)
#: The parent is the service of that name on the child's server (the unique index).
_CHILD_FROM = (" FROM services c LEFT JOIN services p"
               " ON p.server_id = c.server_id AND p.name = c.depends_on")


def _parent(row: Any) -> Parent | None:
    return None if row.parent_id is None else Parent(row.parent_state, bool(row.parent_stale))


def _chains(cursor: Cursor, server_ids: Sequence[int]) -> dict[int, dict[str, str]]:
    """``server id -> {child name: parent name}`` of the services that have a parent."""
    chains: dict[int, dict[str, str]] = {}
    for chunk in chunks(server_ids):
        for server_id, name, depends_on in cursor.execute(
            "SELECT server_id, name, depends_on FROM services"
            f" WHERE server_id IN ({marks(chunk)}) AND depends_on IS NOT NULL", chunk,
        ).fetchall():
            chains.setdefault(server_id, {})[name] = depends_on
    return chains


def _reasons(cursor: Cursor, children: Iterable[Any]) -> dict[int, str]:
    """``service id -> held reason`` of the children a parent holds now. The chains (for
    cycles) are read only for the servers where a parent that is down has a parent itself
    (no cycle can go through one that has none): usually none."""
    children = list(children)
    down = sorted({c.server_id for c in children
                   if c.parent_depends_on is not None and parent_down(_parent(c))})
    chains = _chains(cursor, down) if down else {}
    reasons = {}
    for child in children:
        reason = hold(child.name, child.depends_on, _parent(child),
                      chains.get(child.server_id, {}))
        if reason is not None:
            reasons[child.id] = reason
    return reasons


def held_now(cursor: Cursor, service_ids: Iterable[int]) -> dict[int, str]:
    """``service id -> held reason`` of those of these services whose parent holds their
    notifications now. One query (only the services with a parent are returned)."""
    children = []
    for chunk in chunks(sorted(set(service_ids))):
        children += _CHILD.read_all(cursor.execute(
            f"SELECT {_CHILD.sql}{_CHILD_FROM}"
            f" WHERE c.id IN ({marks(chunk)}) AND c.depends_on IS NOT NULL", chunk,
        ).fetchall())
    return _reasons(cursor, children) if children else {}


def hold_dependents(cursor: Cursor, alerts: Sequence[Alert]) -> set[int]:
    """Mark the alerts whose service's parent is down as held (``depends on <parent>``) and
    their services as owed a catch-up; return the held alert ids. One query for the services
    of the batch, writes only for what is held."""
    reasons = held_now(cursor, [a.service_id for a in alerts if a.service_id is not None])
    if not reasons:
        return set()
    by_reason: dict[str, list[int]] = {}
    for alert in alerts:
        reason = reasons.get(alert.service_id) if alert.service_id is not None else None
        if reason is not None:
            by_reason.setdefault(reason, []).append(alert.id)
    for reason, ids in by_reason.items():
        for chunk in chunks(ids):
            cursor.execute(f"UPDATE alerts SET held = ? WHERE id IN ({marks(chunk)})",
                           (reason, *chunk))
    owed = sorted(reasons)
    for chunk in chunks(owed):
        cursor.execute(f"UPDATE services SET held_by_parent = 1 WHERE id IN ({marks(chunk)})"
                       " AND held_by_parent = 0", chunk)
    return {alert_id for ids in by_reason.values() for alert_id in ids}


def catch_up_children(cursor: Cursor, now: float, limit: int) -> int:
    """Children owed a catch-up whose parent no longer holds them (back up, deleted, or no
    longer their parent): clear the flag, and queue one alert for what is still wrong (or
    the recovery of a problem the channels were told about). Returns the alerts queued."""
    queued = 0
    after = 0
    while True:
        rows = _CHILD.read_all(cursor.execute(
            f"SELECT {_CHILD.sql}{_CHILD_FROM} WHERE c.held_by_parent = 1 AND c.id > ?"
            f" AND {_MAYBE_BACK} ORDER BY c.id LIMIT ?", (after, limit),
        ).fetchall())
        if not rows:
            return queued
        queued += _catch_up(cursor, now, rows)
        if len(rows) < limit:
            return queued
        after = rows[-1].id


def catch_up_due(cursor: Cursor) -> bool:
    """Whether an owed child's parent no longer holds it (back up, deleted, no longer its
    parent, or now its child too): the dispatcher then runs even with nothing else to do, so
    the catch-up does not wait for an unrelated alert. One probe on the ``held_by_parent``
    index; no owed child, or only ones whose parent is still down, is the usual answer "no".
    (A longer cycle formed while a child is held is found at the next dispatch with work.)"""
    return cursor.execute(
        f"SELECT 1{_CHILD_FROM} WHERE c.held_by_parent = 1 AND (p.id IS NULL"
        f" OR p.depends_on = c.name OR {_PARENT_UP}) LIMIT 1").fetchone() is not None


#: The parent (``p``) is not down: reporting, and not in a hard problem state.
_PARENT_UP = "(p.stale = 0 AND (p.state IS NULL OR p.state NOT IN ('WARN', 'FAIL', 'UNK')))"

#: The owed children whose parent may no longer hold them: a parent that is not down (or none
#: at all), or one that has a parent itself (a cycle may release them: decided in Python).
#: While a parent stays down, its owed children are filtered out here, not read every round.
_MAYBE_BACK = f"(p.id IS NULL OR p.depends_on IS NOT NULL OR {_PARENT_UP})"


def _catch_up(cursor: Cursor, now: float, rows: list[Any]) -> int:
    still = _reasons(cursor, rows)
    back = [row for row in rows if row.id not in still]
    told = _told_status(cursor, [row.id for row in back])
    queued = 0
    for row in back:
        cursor.execute("UPDATE services SET held_by_parent = 0 WHERE id = ?"
                       " AND held_by_parent = 1", (row.id,))
        if cursor.rowcount != 1:
            continue  # claimed by another dispatch: it queued the catch-up
        alert = catch_up(row.depends_on or "its parent", ChildNow(
            row.state, bool(row.stale), row.info, bool(row.acked), bool(row.flapping),
            told.get(row.id)))
        if alert is None:
            continue
        cursor.execute(
            "INSERT INTO alerts (server_id, service_id, time, kind, severity, message, state,"
            " info) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (row.server_id, row.id, now, alert.kind, alert.severity, alert.message, row.state,
             row.info),
        )
        queued += 1
    return queued
