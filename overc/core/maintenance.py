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
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from overc.core.durations import parse_duration
from overc.core.payload import ValidationError
from overc.core.states import OK

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

    def covering(self, server_id: int, server_name: str, service_id: int | None,
                 service_name: str | None) -> Window | None:
        for window in self.by_server.get(server_id, ()):
            if window.covers(server_id, server_name, service_id, service_name):
                return window
        for window in self.globs:
            if window.covers(server_id, server_name, service_id, service_name):
                return window
        return None


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
        elif service.stale or (service.state is not None and service.state.upper() != OK):
            wanted = not service.acked and service.told != status_of(service.state,
                                                                     service.stale)
        else:
            wanted = service.told is not None  # the recovery, for channels told before
        (decision.notify if wanted else decision.supersede).append(alert_id)
    decision.notify.sort()
    decision.supersede.sort()
    return decision


# -- Windows as callers send them ----------------------------------------------------------

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


def _seconds(value: Any, field_name: str) -> float:
    """A duration: seconds as a number, or text like ``30m``/``2h``."""
    if isinstance(value, bool):
        raise ValidationError(f"{field_name} must be seconds or a duration like 30m", field_name)
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except ValueError as e:
            raise ValidationError(f"{field_name}: {e}", field_name) from None
    else:
        raise ValidationError(f"{field_name} must be seconds or a duration like 30m", field_name)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValidationError(f"{field_name} must be more than 0 seconds", field_name)
    if seconds > MAX_WINDOW:
        raise ValidationError(f"{field_name}: a window lasts at most a year", field_name)
    return seconds


def _time(value: Any, field_name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"{field_name} must be a Unix time in seconds", field_name)
    return float(value)


def _text(value: Any, field_name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(f"{field_name} must be a string", field_name)
    if len(value) > MAX_TEXT:
        raise ValidationError(f"{field_name} is longer than {MAX_TEXT} characters", field_name)
    return value.strip()


def _names(value: Any, field_name: str) -> tuple[str, ...]:
    """A list of names (or a comma-separated string of them, as forms send it)."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        value = [part for part in value.split(",")]
    if not isinstance(value, list):
        raise ValidationError(f"{field_name} must be a list of names", field_name)
    if len(value) > MAX_SERVICES:
        raise ValidationError(f"{field_name} may hold at most {MAX_SERVICES} names", field_name)
    names = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip() or len(item) > 255:
            raise ValidationError(f"{field_name}[{index}] must be a name of 1 to 255 characters",
                                  field_name)
        names.append(item.strip())
    return tuple(names)


def parse_window(body: Mapping[str, Any], now: float, *, source: str,
                 created_by: str | None = None) -> WindowRequest:
    """A window from a JSON body or a form: one-off (``start`` default now, and ``end`` or
    ``duration``) or recurring (``schedule`` + ``duration`` + ``tz``); scope ``server_id``
    (+ ``service_id`` or ``services``) or the globs ``servers``/``services``."""
    reason = _text(body.get("reason"), "reason")
    server_id = _id(body.get("server_id"), "server_id")
    service_id = _id(body.get("service_id"), "service_id")
    servers = _names(body.get("servers"), "servers")
    services = _names(body.get("services"), "services")
    if service_id is not None and server_id is None:
        raise ValidationError("service_id needs server_id", "server_id")
    if server_id is not None and servers:
        raise ValidationError("give server_id or servers, not both", "servers")
    schedule = body.get("schedule")
    if schedule not in (None, ""):
        if not isinstance(schedule, str):
            raise ValidationError("schedule must be a cron expression", "schedule")
        tz = body.get("tz") or "UTC"
        if not isinstance(tz, str):
            raise ValidationError("tz must be a time zone name", "tz")
        try:
            check_schedule(schedule.strip(), tz.strip())
        except ValueError as e:
            field_name = "tz" if "time zone" in str(e) else "schedule"
            raise ValidationError(str(e), field_name) from None
        if body.get("duration") in (None, ""):
            raise ValidationError("a recurring window needs a duration", "duration")
        return WindowRequest(
            source=source, schedule=schedule.strip(), tz=tz.strip(),
            duration=_seconds(body.get("duration"), "duration"), server_id=server_id,
            service_id=service_id, servers=servers, services=services, reason=reason,
            created_by=created_by,
        )
    start = now if body.get("start") in (None, "") else _time(body.get("start"), "start")
    if body.get("end") not in (None, ""):
        end = _time(body.get("end"), "end")
    elif body.get("duration") not in (None, ""):
        end = start + _seconds(body.get("duration"), "duration")
    else:
        raise ValidationError("give duration (seconds) or end (a Unix time)", "duration")
    if end <= max(start, now):
        raise ValidationError("end must be after start and in the future", "end")
    if end - start > MAX_WINDOW:
        raise ValidationError("a window lasts at most a year", "end")
    return WindowRequest(
        source=source, start=start, end=end, server_id=server_id, service_id=service_id,
        servers=servers, services=services, reason=reason, created_by=created_by,
    )


def _id(value: Any, field_name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise ValidationError(f"{field_name} must be an id", field_name)


@dataclass(frozen=True)
class PushMaintenance:
    """``POST /api/set/maintenance`` after validation: a new window or the end of this
    server's push-created windows."""

    end: bool
    start: float = 0.0
    until: float = 0.0
    services: tuple[str, ...] = ()
    reason: str = ""


def parse_push_maintenance(body: Mapping[str, Any], now: float) -> PushMaintenance:
    """The body of ``POST /api/set/maintenance`` (the server identity is checked apart)."""
    unknown = sorted(set(body) - {"server", "duration", "reason", "services", "start", "end"})
    if unknown:
        raise ValidationError(f"unknown field {unknown[0]}", unknown[0])
    if "end" in body:
        if body["end"] is not True:
            raise ValidationError("end must be true (to end this server's windows now)", "end")
        return PushMaintenance(end=True)
    if body.get("duration") is None:
        raise ValidationError("duration is required (seconds, or end: true)", "duration")
    start = now if body.get("start") is None else _time(body["start"], "start")
    until = start + _seconds(body["duration"], "duration")
    if until <= now:
        raise ValidationError("the window would be over already", "start")
    if start > now + MAX_WINDOW:
        raise ValidationError("start is more than a year away", "start")
    if "services" in body and not isinstance(body["services"], list):
        raise ValidationError("services must be a list of names", "services")
    return PushMaintenance(
        end=False, start=start, until=until,
        services=_names(body.get("services"), "services"),
        reason=_text(body.get("reason"), "reason"),
    )
