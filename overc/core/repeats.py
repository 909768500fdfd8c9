"""Reminders and silences: when a told problem is sent again, and what a finished silence
still owes the channels. Pure decisions; the dispatch store applies them to rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Sequence

from overc.core.states import OK


def in_problem(state: str | None, stale: bool) -> bool:
    """A service needs attention while it is stale or its current state is not OK."""
    return bool(stale) or (state is not None and state.upper() != OK)


def is_silenced(now: float, *until: float | None) -> bool:
    """Whether any of the silences (service, server) still runs at ``now``."""
    return any(u is not None and u > now for u in until)


class RepeatAction(str, Enum):
    SEND = "send"
    DROP = "drop"  # forget: recovered
    STOP = "stop"  # acknowledged or no repeat configured
    LATER = "later"  # silenced: ask again after one more repeat period


@dataclass(frozen=True)
class RepeatDecision:
    action: RepeatAction
    next_due: float | None = None


def decide_repeat(
    now: float, *, repeat: float | None, state: str | None, stale: bool, acked: bool,
    silenced: bool,
) -> RepeatDecision:
    """What to do with a due repeat of a problem a channel was told about."""
    if not in_problem(state, stale):
        return RepeatDecision(RepeatAction.DROP)
    if repeat is None or acked:
        # acknowledged: no more repeats until the state changes (a new alert re-arms it)
        return RepeatDecision(RepeatAction.STOP)
    if silenced:
        return RepeatDecision(RepeatAction.LATER, now + repeat)
    return RepeatDecision(RepeatAction.SEND, now + repeat)


@dataclass(frozen=True)
class HeldAlert:
    id: int
    service_id: int | None


@dataclass
class ReleaseDecision:
    notify: list[int] = field(default_factory=list)
    supersede: list[int] = field(default_factory=list)


def decide_release(
    held: Sequence[HeldAlert], *, service_status: dict[int, tuple[str | None, bool, bool]],
    told_services: set[int],
) -> ReleaseDecision:
    """A silence ended: which held alerts are notified now, once, and which are dropped.

    Per service only the newest held alert can matter: it is notified when the problem is still
    active and not acknowledged, or when a channel was told about the problem before the
    silence (so it gets the recovery). Alerts without a service (api) were events, not lasting
    problems: they stay recorded and are not sent late. ``service_status`` maps service id to
    ``(state, stale, acked)``.
    """
    decision = ReleaseDecision()
    newest: dict[int, int] = {}
    for alert in held:
        if alert.service_id is None:
            decision.supersede.append(alert.id)
            continue
        previous = newest.get(alert.service_id)
        if previous is None or alert.id > previous:
            if previous is not None:
                decision.supersede.append(previous)
            newest[alert.service_id] = alert.id
        else:
            decision.supersede.append(alert.id)
    for service_id, alert_id in newest.items():
        state, stale, acked = service_status.get(service_id, (None, False, False))
        if in_problem(state, stale):
            wanted = not acked
        else:
            wanted = service_id in told_services  # the recovery, for channels told before
        if wanted:
            decision.notify.append(alert_id)
        else:
            decision.supersede.append(alert_id)
    decision.notify.sort()
    decision.supersede.sort()
    return decision
