"""Which notification channels a process has, and when two processes disagree about them.

Every process that shares a database dispatches alerts to channels: one without a channel
that the others have would claim alerts and mark them handled, so nobody is notified. Each
live process therefore records its channel set (names and a fingerprint of their options),
and a process whose set differs from the live ones refuses to start.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

#: Seconds between two heartbeats of a process's channel set.
HEARTBEAT = 5.0


def expiry(heartbeat: float = HEARTBEAT) -> float:
    """How old a heartbeat may be before its process counts as dead: three missed beats and
    10 s for a slow database."""
    return 3 * heartbeat + 10.0


@dataclass(frozen=True)
class ChannelSet:
    names: tuple[str, ...]
    fingerprint: str

    def text(self) -> str:
        return "[" + ", ".join(self.names) + "]"


def differing(here: ChannelSet, live: Sequence[ChannelSet]) -> list[ChannelSet]:
    """The distinct sets among ``live`` that are not ``here``, in a stable order."""
    seen: dict[str, ChannelSet] = {}
    for one in live:
        if one.fingerprint != here.fingerprint:
            seen.setdefault(one.fingerprint, one)
    return sorted(seen.values(), key=lambda s: (s.names, s.fingerprint))


def conflict_message(here: ChannelSet, there: Sequence[ChannelSet]) -> str:
    """One line naming both sides, e.g. ``... here [log, pager], there [log]: ...``."""
    there = differing(here, there)
    def name(one: ChannelSet) -> str:
        same_names = one.names == here.names
        return one.text() + (" (other options)" if same_names else "")

    theirs = " and ".join(name(one) for one in there)
    mine = here.text() + (" (other options)" if any(s.names == here.names for s in there)
                          else "")
    return ("the channels differ from those of the running processes on this database:"
            f" here {mine}, there {theirs}: give every process the same [alert:*] sections")
