"""Escalation and acknowledgements (SPEC 10.5), as pure decisions over plain values.

A channel with ``after`` is told about a problem only if the problem is still there, and not
acknowledged, that long after it became hard; the dispatch store keeps one due time per
(channel, service) and asks :func:`decide_escalation` when it comes. An acknowledgement ends
at the next state change unless it is sticky (then it ends when the service returns to OK),
and at its expiry; :func:`ack_after_report` is the ingest's half of that rule, the dispatcher
ends expired acknowledgements (the same moment repeats and escalations resume).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from overc.core.repeats import in_problem
from overc.core.states import OK

#: While a maintenance window covers a problem, its escalation is asked again this often
#: (a window's end is not known for recurring ones; one row a minute costs nothing).
MAINTENANCE_RECHECK = 60.0


class EscalationAction(str, Enum):
    SEND = "send"  # tell the channel now (and from now on it gets the recovery)
    DROP = "drop"  # the problem is over: the channel never hears of it
    PARK = "park"  # acknowledged: wait until the acknowledgement ends (due NULL)
    LATER = "later"  # in maintenance: ask again at next_due


@dataclass(frozen=True)
class EscalationDecision:
    action: EscalationAction
    next_due: float | None = None


def escalation_due(since: float, after: float) -> float:
    """When a channel with ``after`` gets a problem that became hard at ``since``."""
    return since + after


def decide_escalation(now: float, *, state: str | None, stale: bool, acked: bool,
                      in_maintenance: bool, parent_down: bool = False) -> EscalationDecision:
    """What to do with a due escalation: the problem must still be there and unacknowledged.

    While the service's parent is down (SPEC 10.4) its alerts are not notified, so no channel
    is escalated to either: asked again later, as in maintenance (the parent's own escalation
    tells the channel what is wrong).

    An acknowledgement parks it (no timer per acknowledgement): its end, by expiry or by a
    user removing it, re-arms the parked rows, and a state change that ends it re-arms them
    through the new alert; a channel whose ``after`` passed meanwhile is then told at once.
    """
    if not in_problem(state, stale):
        return EscalationDecision(EscalationAction.DROP)
    if acked:
        return EscalationDecision(EscalationAction.PARK)
    if in_maintenance or parent_down:
        return EscalationDecision(EscalationAction.LATER, now + MAINTENANCE_RECHECK)
    return EscalationDecision(EscalationAction.SEND)


def ack_active(acked: bool, expires: float | None, now: float) -> bool:
    """Whether an acknowledgement still holds at ``now`` (an expired one does not)."""
    return acked and (expires is None or expires > now)


@dataclass(frozen=True)
class Ack:
    """A service's acknowledgement as its row holds it."""

    acked: bool = False
    sticky: bool = False
    expires: float | None = None


NO_ACK = Ack()


def ack_after_report(ack: Ack, *, changed: bool, hard: str | None, now: float) -> Ack:
    """The acknowledgement after a report: it ends at a change of the hard state, unless it is
    sticky and the new state is still a problem. An expired one ends at a change (whose alert
    re-arms repeats and escalations); without a change it is left as it is for the dispatcher,
    which ends it and resumes what it parked: ended here, nothing would resume them."""
    if not ack_active(ack.acked, ack.expires, now):
        return NO_ACK if changed else ack
    if not changed:
        return ack
    if ack.sticky and hard is not None and hard.upper() != OK:
        return ack
    return NO_ACK
