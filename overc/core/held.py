"""Why a service's problem would not be notified now (SPEC 10, item 7 of issue 11): the
``held`` reason the read API and the server and service pages show beside each service, so an
operator sees that silence is a decision, not a bug.

Alerts carry their own ``held`` (decided once, when they are raised or dispatched). A service
needs one too, because some silences raise no alert at all: a soft problem (SPEC 10.1) is not
an alert yet. This is the current reason, worked out from the service's row as it is now, with
at most one reason shown, the first of (from the broadest cause to the narrowest):

1. ``maintenance``: a running window (or a silence) covers the service; it holds every alert
   of it, whatever the kind, until the window's end;
2. ``server offline``: its server stopped pushing; one ``server-offline`` alert was sent and the
   ``offline`` alerts of its services are held;
3. ``depends on <parent>``: its parent on the same server is down (SPEC 10.4); every alert of
   it is held. A dead server's parent is stale too: the server is the cause, so 2 comes first;
4. ``flapping``: its ``state`` alerts are held until ``flapping-end`` (SPEC 10.2); a soft
   problem of a flapping service would be held as flapping once hard, so 4 beats 5;
5. ``soft 2/3``: a problem not yet confirmed (2 of the 3 reports in a row it needs);
6. ``acknowledged``: someone owns the problem; repeats and escalations wait (a sticky one
   also holds changes between problem states). Shown only while the service is in a problem.

A cause higher in the list makes the ones below it moot for as long as it lasts, which is why
only the first is shown. No clock and no database: the read model passes what it read.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol

from overc.core.dependencies import PROBLEMS, Parent, hold
from overc.core.server_offline import HELD_SERVER_OFFLINE

MAINTENANCE = "maintenance"
FLAPPING = "flapping"
ACKNOWLEDGED = "acknowledged"
SOFT_PREFIX = "soft "


def soft_reason(count: int, attempts: int) -> str:
    """``soft 2/3``: the held reason of a problem not yet hard."""
    return f"{SOFT_PREFIX}{count}/{attempts}"


@dataclass(slots=True)
class ServiceQuiet:
    """What decides a service's held reason, as read now."""

    maintenance: bool = False
    server_offline: bool = False
    #: ``depends on mysql`` while the parent is down (:func:`parent_holds`), else None.
    parent_hold: str | None = None
    flapping: bool = False
    soft_state: str | None = None
    soft_count: int = 0
    attempts: int = 1
    acked: bool = False
    state: str | None = None
    stale: bool = False


def held_reason(q: ServiceQuiet) -> str | None:
    """The first reason in the module's order, or None: a problem would be notified now."""
    if q.maintenance:
        return MAINTENANCE
    if q.server_offline:
        return HELD_SERVER_OFFLINE
    if q.parent_hold is not None:
        return q.parent_hold
    if q.flapping:
        return FLAPPING
    if q.soft_state is not None and q.soft_count > 0:
        return soft_reason(q.soft_count, q.attempts)
    if q.acked and (q.stale or (q.state or "").upper() in PROBLEMS):
        return ACKNOWLEDGED
    return None


class Related(Protocol):
    """A service of one server as :func:`parent_holds` needs it."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def depends_on(self) -> str | None: ...
    @property
    def state(self) -> str | None: ...
    @property
    def stale(self) -> bool: ...


def parent_holds(services: Iterable[Related]) -> dict[int, str]:
    """``service id -> "depends on mysql"`` for the services of ONE server whose parent is down
    now: the dispatcher's rule (:func:`overc.core.dependencies.hold`, cycles included) on the
    rows a page has read anyway, so it costs no query."""
    rows = list(services)
    by_name = {s.name: s for s in rows}
    chain = {s.name: s.depends_on for s in rows if s.depends_on}
    held = {}
    for s in rows:
        if not s.depends_on:
            continue
        parent = by_name.get(s.depends_on)
        if parent is None or not (parent.stale or (parent.state or "").upper() in PROBLEMS):
            continue  # the usual case, decided without building a Parent (10,000 rows a page)
        reason = hold(s.name, s.depends_on,
                      None if parent is None else Parent(parent.state, parent.stale), chain)
        if reason is not None:
            held[s.id] = reason
    return held
