"""Reminders: when a problem a channel was told about is sent again. A pure decision; the
dispatch store applies it to rows. (What a finished silence owes is a maintenance window's
catch-up: :func:`overc.core.maintenance.decide_catch_up`.)
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from overc.core.states import OK


def in_problem(state: str | None, stale: bool) -> bool:
    """A service needs attention while it is stale or its current state is not OK."""
    return bool(stale) or (state is not None and state.upper() != OK)


class RepeatAction(str, Enum):
    SEND = "send"
    DROP = "drop"  # forget: recovered
    STOP = "stop"  # acknowledged or no repeat configured
    LATER = "later"  # silenced, or its parent is down: ask again after one more period


@dataclass(frozen=True)
class RepeatDecision:
    action: RepeatAction
    next_due: float | None = None


def decide_repeat(
    now: float, *, repeat: float | None, state: str | None, stale: bool, acked: bool,
    silenced: bool, parent_down: bool = False,
) -> RepeatDecision:
    """What to do with a due repeat of a problem a channel was told about.

    ``parent_down``: the service depends on one that is down now (SPEC 10.4): its alerts are
    not notified meanwhile, so neither are its reminders; the parent's own repeats say it."""
    if not in_problem(state, stale):
        return RepeatDecision(RepeatAction.DROP)
    if repeat is None or acked:
        # acknowledged: no more repeats until the state changes (a new alert re-arms it)
        return RepeatDecision(RepeatAction.STOP)
    if silenced or parent_down:
        return RepeatDecision(RepeatAction.LATER, now + repeat)
    return RepeatDecision(RepeatAction.SEND, now + repeat)
