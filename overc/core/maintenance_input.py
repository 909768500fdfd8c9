"""Maintenance windows as callers send them (SPEC 11): the body of ``POST
/api/set/maintenance``, and a window from the read/write API or a UI form. Every mistake is a
:class:`~overc.core.payload.ValidationError` naming its field.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from overc.core.durations import parse_duration
from overc.core.maintenance import MAX_SERVICES, MAX_TEXT, MAX_WINDOW, WindowRequest, check_schedule
from overc.core.payload import ValidationError


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
    if start > now + MAX_WINDOW:
        raise ValidationError("start is more than a year away", "start")
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
