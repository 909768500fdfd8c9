"""Maintenance windows (SPEC 11): who they cover, when they run, and what their end owes.

Plain values in, plain values out, ``now`` always an argument: whether a service is inside a
window at a time, the current or next occurrence of a recurring window (cron + duration + zone,
through ``cronsim`` with Debian cron's daylight-saving behaviour), the index that makes the
check per alert cost the windows that apply rather than the services, the catch-up decision
when a window ends, and the validation of windows as the push API, the read/write API and the
UI send them (every error names its field).
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from overc.core.repeats import in_problem

#: Where a window came from: the push API (the server's own key), the UI or the read/write
#: API (a logged-in user), a ``[maintenance:<name>]`` config section, or a section 3 silence.
PUSH, UI, API, CONFIG, SILENCE = "push", "ui", "api", "config", "silence"
SOURCES = (PUSH, UI, API, CONFIG, SILENCE)
MAX_WINDOW = 366 * 86400.0
MAX_TEXT = 4096
MAX_SERVICES = 100
#: The state a channel was told when it got an ``offline`` alert.
STALE = "STALE"


@dataclass(frozen=True)
class Window:
    """One maintenance window. The scope is ``server_id`` (with an optional ``service_id`` or
    list of service names) or, when ``server_id`` is None, the glob filters ``servers`` and
    ``services`` (empty: all). The time is ``start``/``end`` or, when ``schedule`` is set, every
    cron occurrence in ``tz`` for ``duration`` seconds."""

    id: int
    source: str = UI
    start: float | None = None
    end: float | None = None
    schedule: str | None = None
    tz: str = "UTC"
    duration: float | None = None
    server_id: int | None = None
    service_id: int | None = None
    servers: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    reason: str = ""
    created_by: str | None = None
    created: float = 0.0
    name: str | None = None
    server_name: str | None = None  # joined in by the read side
    service_name: str | None = None

    @property
    def recurring(self) -> bool:
        return self.schedule is not None

    def covers(self, server_id: int, server_name: str, service_id: int | None,
               service_name: str | None) -> bool:
        """Whether the scope holds this service (``service_id`` None: a server-wide alert)."""
        if self.server_id is not None:
            if server_id != self.server_id:
                return False
            if self.service_id is not None:
                return service_id == self.service_id
            if self.services:
                return service_name is not None and service_name in self.services
            return True
        if self.servers and not any(fnmatch.fnmatchcase(server_name, p) for p in self.servers):
            return False
        if self.services:
            return service_name is not None and any(
                fnmatch.fnmatchcase(service_name, p) for p in self.services)
        return True

    def occurrence(self, now: float) -> tuple[float, float] | None:
        """``(start, end)`` of the occurrence running at ``now``, or None."""
        if not self.recurring:
            if self.start is not None and self.end is not None and self.start <= now < self.end:
                return self.start, self.end
            return None
        assert self.duration is not None
        start = _next_cron(self.schedule or "", self.tz, now - self.duration)
        if start is not None and start <= now:
            return start, start + self.duration
        return None

    def active(self, now: float) -> bool:
        return self.occurrence(now) is not None

    def current_or_next(self, now: float) -> tuple[float, float] | None:
        """The occurrence running at ``now`` or else the next one; None when none is left."""
        running = self.occurrence(now)
        if running is not None:
            return running
        if not self.recurring:
            if self.start is not None and self.end is not None and self.start > now:
                return self.start, self.end
            return None
        assert self.duration is not None
        start = _next_cron(self.schedule or "", self.tz, now)
        return None if start is None else (start, start + self.duration)


def _next_cron(schedule: str, tz: str, after: float) -> float | None:
    """The first time of ``schedule`` in zone ``tz`` strictly after ``after``."""
    zone = ZoneInfo(tz)
    try:
        return next(iter(CronSim(schedule, datetime.fromtimestamp(after, zone)))).timestamp()
    except StopIteration:
        return None


def check_schedule(schedule: str, tz: str) -> None:
    """ValueError naming what is wrong with a cron expression or a zone."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{tz!r} is not a time zone (like UTC or Europe/Berlin)") from None
    try:
        CronSim(schedule, datetime.fromtimestamp(0, zone))
    except CronSimError as e:
        raise ValueError(f"{schedule!r} is not a cron schedule: {e}") from None


class WindowIndex:
    """Windows active at one moment, indexed so that one alert costs the windows that could
    cover it: those of its server, plus the glob windows (config and UI filters)."""

    def __init__(self, windows: Iterable[Window], now: float) -> None:
        self.by_server: dict[int, list[Window]] = {}
        self.globs: list[Window] = []
        for window in windows:
            if not window.active(now):
                continue
            if window.server_id is not None:
                self.by_server.setdefault(window.server_id, []).append(window)
            else:
                self.globs.append(window)

    def __bool__(self) -> bool:
        return bool(self.by_server or self.globs)

    def ids(self) -> list[int]:
        """The ids of the windows running now."""
        return sorted([w.id for ws in self.by_server.values() for w in ws]
                      + [w.id for w in self.globs])

    def covering(self, server_id: int, server_name: str, service_id: int | None,
                 service_name: str | None) -> Window | None:
        for window in self.by_server.get(server_id, ()):
            if window.covers(server_id, server_name, service_id, service_name):
                return window
        for window in self.globs:
            if window.covers(server_id, server_name, service_id, service_name):
                return window
        return None



@dataclass
class ServerCover:
    """What the windows running now cover of one server: all of it (``whole``) or some of its
    services, by id, by exact name, or by a glob pattern (glob windows only)."""

    whole: Window | None = None
    by_id: dict[int, Window] = field(default_factory=dict)
    by_name: dict[str, Window] = field(default_factory=dict)
    patterns: list[tuple[str, Window]] = field(default_factory=list)

    @property
    def some_services(self) -> bool:
        return bool(self.by_id or self.by_name or self.patterns)

    def service(self, service_id: int, name: str) -> Window | None:
        """The window over this service by its own scope (not ``whole``), or None."""
        found = self.by_id.get(service_id) or self.by_name.get(name)
        if found is None:
            for pattern, window in self.patterns:
                if fnmatch.fnmatchcase(name, pattern):
                    return window
        return found


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def server_cover(index: WindowIndex, server_id: int, server_name: str) -> ServerCover | None:
    """What of this server the running windows cover, for a page of many servers: it costs
    the server's own windows plus the glob windows, never its services; None: nothing."""
    cover = None
    for window in (*index.by_server.get(server_id, ()), *index.globs):
        if window.server_id is None and window.servers and not any(
                fnmatch.fnmatchcase(server_name, p) for p in window.servers):
            continue
        cover = cover or ServerCover()
        if window.service_id is not None:
            cover.by_id.setdefault(window.service_id, window)
        elif window.services:
            for name in window.services:
                # a server's own window lists exact names (Window.covers), a glob window globs
                if window.server_id is None and _is_glob(name):
                    cover.patterns.append((name, window))
                else:
                    cover.by_name.setdefault(name, window)
        elif cover.whole is None:
            cover.whole = window
    return cover


# -- The end of a window -------------------------------------------------------------------

def status_of(state: str | None, stale: bool) -> str:
    """What a service is now, in the words channels are told: STALE or its state."""
    if stale:
        return STALE
    return (state or "").upper()


def told_status(kind: str, state: str | None, severity: str) -> str:
    """What a channel was told by an alert: STALE for ``offline``, else the state it carried."""
    if kind == "offline":
        return STALE
    return (state or severity or "").upper()


@dataclass(frozen=True)
class HeldAlert:
    id: int
    service_id: int | None


@dataclass(frozen=True)
class ServiceNow:
    """A service as its window ends: its status and what its channels were last told
    (``told`` None: no channel holds a problem of it, i.e. nothing or its recovery)."""

    state: str | None
    stale: bool
    acked: bool = False
    told: str | None = None


@dataclass
class CatchUp:
    notify: list[int] = field(default_factory=list)
    supersede: list[int] = field(default_factory=list)


def decide_catch_up(held: Sequence[HeldAlert], services: Mapping[int, ServiceNow]) -> CatchUp:
    """A window is over for these held alerts: which are notified now (once) and which not.

    Per service only its newest held alert can be sent, and only when it tells the channels
    something new: a service still in a problem (stale, or not OK) whose status differs from
    what its channels were last told and that nobody acknowledged; or a service that is OK
    again after a problem its channels were told about before the window (its recovery).
    Flapping in and out of a problem inside the window and ending where the channels left it
    sends nothing; a problem that began and ended inside the window sends nothing. Alerts
    without a service (``api``) were events, not lasting problems: recorded, not sent late.
    """
    decision = CatchUp()
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
        service = services.get(service_id)
        if service is None:
            wanted = False  # deleted meanwhile
        elif in_problem(service.state, service.stale):
            wanted = not service.acked and service.told != status_of(service.state,
                                                                     service.stale)
        else:
            wanted = service.told is not None  # the recovery, for channels told before
        (decision.notify if wanted else decision.supersede).append(alert_id)
    decision.notify.sort()
    decision.supersede.sort()
    return decision


@dataclass(frozen=True)
class WindowRequest:
    """A validated new window (before it has an id)."""

    source: str
    start: float | None = None
    end: float | None = None
    schedule: str | None = None
    tz: str = "UTC"
    duration: float | None = None
    server_id: int | None = None
    service_id: int | None = None
    servers: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    reason: str = ""
    created_by: str | None = None
    name: str | None = None
