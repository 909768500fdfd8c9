"""Dependencies (SPEC 10.4): a child's alerts are held while its parent is down, and the catch-up
when the parent recovers. Pure rules: the dispatcher's store reads the rows and applies them.

A service with ``depends_on = mysql`` has its alerts recorded but not notified while ``mysql``
on the same server is in a hard problem state (WARN, FAIL, UNK) or stale: when the database is
down, the pager should say "mysql is down", not also "the app, the queue and the cron job are
failing". The decision is made when an alert is dispatched, with the parent as it is then.

Cycles (``a -> b -> a``, or longer): every service on a cycle is notified as if it had no
parent, so no set of services can hold each other's alerts forever; a service that merely
depends on a member of a cycle (``c -> a``) is held as usual while that member is down. A
parent that does not exist holds nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from overc.core.alerts import OFFLINE, STATE
from overc.core.maintenance import status_of
from overc.core.snapshot import RaisedAlert
from overc.core.states import FAIL, OK, UNK, WARN

#: Hard states that make a parent hold its children (besides being stale).
PROBLEMS = frozenset((WARN, FAIL, UNK))
PREFIX = "depends on "
#: ``alerts.held`` is VARCHAR(63) on MariaDB (widened in place, no table copy): a longer parent
#: name is shortened in the reason, never in the rule.
MAX_REASON = 63


def held_reason(parent: str) -> str:
    """``depends on mysql``: what the UI and API show as ``held: depends on mysql``."""
    reason = PREFIX + parent
    return reason if len(reason) <= MAX_REASON else reason[:MAX_REASON - 1] + "…"


@dataclass(frozen=True)
class Parent:
    """The parent service as the dispatcher sees it now."""

    state: str | None
    stale: bool


def parent_down(parent: Parent | None) -> bool:
    """A hard problem or stale; a missing parent (None) or one never reported is not down."""
    if parent is None:
        return False
    return parent.stale or (parent.state or "").upper() in PROBLEMS


def on_cycle(service: str, depends_on: Mapping[str, str]) -> bool:
    """Whether following ``depends_on`` (child name -> parent name, one server) from
    ``service`` comes back to it. Other cycles further up the chain do not count."""
    seen: set[str] = set()
    name = depends_on.get(service)
    while name is not None and name not in seen:
        if name == service:
            return True
        seen.add(name)
        name = depends_on.get(name)
    return False


def hold(service: str, parent_name: str | None, parent: Parent | None,
         chain: Mapping[str, str] = {}) -> str | None:
    """The held reason of an alert of ``service`` now, or None (notified as usual).

    ``parent`` is the parent's row (None: no such service); ``chain`` the ``depends_on`` of
    the server's services, read only when the parent is down, to find cycles.
    """
    if not parent_name or not parent_down(parent):
        return None
    if parent_name == service or on_cycle(service, chain):
        return None
    return held_reason(parent_name)


@dataclass(frozen=True)
class ChildNow:
    """A child whose alerts a dependency held, as its parent comes back: its current status
    and what its channels were last told (``told`` None: nothing, or its recovery)."""

    state: str | None
    stale: bool
    info: str | None = None
    acked: bool = False
    flapping: bool = False
    told: str | None = None


def catch_up(parent_name: str, child: ChildNow) -> RaisedAlert | None:
    """The one alert a held child gets when its parent recovers, or None.

    Only what is new to its channels: a problem (or silence) that differs from what they were
    last told and nobody acknowledged, or a recovery of a problem they were told about. A child
    that had a problem and recovered while held sends nothing; a flapping child waits for its
    ``flapping-end``, which tells the truth.
    """
    if child.flapping:
        return None
    now = status_of(child.state, child.stale)
    if child.stale or now in PROBLEMS:
        if child.acked or child.told == now:
            return None
        if child.stale:
            return RaisedAlert(OFFLINE, FAIL,
                               f"Still not reporting now that {parent_name} is back")
        return RaisedAlert(STATE, now, _with_info(f"Still {now} now that {parent_name} is back",
                                                  child.info))
    if child.told is None or now != OK:
        return None  # nothing was said of a problem (or nothing is known yet)
    return RaisedAlert(STATE, OK, _with_info(f"OK again; held while {parent_name} was down",
                                             child.info))


def _with_info(message: str, info: str | None) -> str:
    return f"{message}: {info}" if info else message

