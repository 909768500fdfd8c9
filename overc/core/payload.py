"""Validation of push API bodies (SPEC section 1): JSON in, typed reports out, or one error.

Pure functions: ``now`` is an argument. A :class:`ValidationError` names the offending field as
a path (``services[2].state``) so a client can tell exactly what to fix.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Iterator

from overc.core.perfdata import Metric, parse_plugin_output
from overc.core.policy import NO_OVERRIDES, Overrides, parse_attempts, parse_flapping
from overc.core.runs import RunStart
from overc.core.schedule import DEFAULT_ZONE, check_schedule, zone
from overc.core.states import map_state

MAX_NAME = 64
MAX_KEY = 128
MAX_INFO = 65536
MAX_MESSAGE = 65536
MAX_SERVICES = 1000
MAX_ALERTS = 1000
MAX_PERIOD = 31_536_000
MAX_STATE = 64
FUTURE_SLACK = 60.0


class ValidationError(Exception):
    """A 400: ``message`` says what is wrong, ``field`` where (None for the whole body)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def as_json(self) -> dict[str, str]:
        body = {"error": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


@dataclass(frozen=True)
class ServerIdentity:
    name: str
    key: str


@dataclass(frozen=True)
class Report:
    """One state of one service; ``time`` None means "now, by the server's clock"."""

    service: str
    state: str
    info: str
    period: int
    time: float | None = None
    metrics: tuple[Metric, ...] = ()
    # SPEC 9: a cron schedule and its zone, the report's own grace, the run's duration.
    schedule: str | None = None
    tz: str | None = None
    grace: float | None = None
    duration: float | None = None
    #: Per-service settings the report sets (SPEC 10): attempts, flapping, depends_on.
    settings: Overrides = NO_OVERRIDES


@dataclass(frozen=True)
class AlertRequest:
    message: str
    service: str | None = None


def parse_body(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object, whatever the Content-Type said."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ValidationError("The body is not valid JSON") from None
    if not isinstance(value, dict):
        raise ValidationError("The body must be a JSON object")
    return value


def _encodable(value: str) -> bool:
    """JSON allows lone surrogates (``"\\ud800"``); no database can store them."""
    if value.isascii():  # O(1) in CPython: the common case needs no encoding
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_NAME_CONTROL = re.compile("[\x00-\x1f\x7f]")


def _string(obj: dict, key: str, within: str, *, minimum: int, maximum: int,
            required: bool = True, name: bool = False) -> str | None:
    """``obj[key]`` as a checked string; errors name the field as ``within.key`` (the path is
    only written out for an error: a push checks some twenty strings)."""
    value = obj.get(key)
    if value is None:
        if required:
            path = f"{within}.{key}"
            raise ValidationError(f"{path} is required", path)
        return None
    if not isinstance(value, str):
        path = f"{within}.{key}"
        raise ValidationError(f"{path} must be a string", path)
    if not _encodable(value):
        path = f"{within}.{key}"
        raise ValidationError(f"{path} holds characters that are not valid Unicode", path)
    if name and _NAME_CONTROL.search(value):
        # A name is shown on one line everywhere (UI, notifications, e-mail subjects).
        path = f"{within}.{key}"
        raise ValidationError(f"{path} must not hold control characters (NUL, CR, LF, tab...)",
                              path)
    if not minimum <= len(value) <= maximum:
        path = f"{within}.{key}"
        if minimum and not value:
            raise ValidationError(f"{path} must not be empty", path)
        raise ValidationError(f"{path} must be at most {maximum} characters", path)
    return value


def parse_period(value: Any, path: str) -> int:
    """An integer, a number (truncated) or a numeric string, 1 to 31,536,000 seconds."""
    if isinstance(value, bool):
        raise ValidationError(f"{path} must be a number of seconds", path)
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValidationError(f"{path} must be a number of seconds", path) from None
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"{path} must be a finite number of seconds", path)
        value = int(value)
    if not isinstance(value, int):
        raise ValidationError(f"{path} must be a number of seconds", path)
    if not 1 <= value <= MAX_PERIOD:
        raise ValidationError(f"{path} must be from 1 to {MAX_PERIOD} seconds", path)
    return value


def parse_server(body: dict[str, Any]) -> ServerIdentity:
    server = body.get("server")
    if server is None:
        raise ValidationError("server is required", "server")
    if not isinstance(server, dict):
        raise ValidationError("server must be an object with name and key", "server")
    name = _string(server, "name", "server", minimum=1, maximum=MAX_NAME, name=True)
    key = _string(server, "key", "server", minimum=1, maximum=MAX_KEY)
    assert name is not None and key is not None
    return ServerIdentity(name, key)


def _list(body: dict, key: str, maximum: int) -> list:
    if key not in body or body[key] is None:
        raise ValidationError(f"{key} is required", key)
    value = body[key]
    if not isinstance(value, list):
        raise ValidationError(f"{key} must be a list", key)
    if len(value) > maximum:
        raise ValidationError(f"{key} may hold at most {maximum} items", key)
    return value


def _objects(body: dict, key: str, maximum: int) -> Iterator[tuple[str, dict]]:
    """``(path, item)`` for each item of the list ``body[key]``, every one an object."""
    for index, item in enumerate(_list(body, key, maximum)):
        path = f"{key}[{index}]"
        if not isinstance(item, dict):
            raise ValidationError(f"{path} must be an object", path)
        yield path, item


def _time(value: Any, path: str, now: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"{path} must be a Unix time in seconds", path)
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValidationError(f"{path} must be a Unix time in seconds", path)
    if value > now + FUTURE_SLACK:
        raise ValidationError(f"{path} is more than {int(FUTURE_SLACK)} s in the future", path)
    return value


def parse_status(body: dict[str, Any], now: float) -> tuple[ServerIdentity, list[Report]]:
    """Validate a ``/api/set/service/status`` body completely before anything is stored."""
    server = parse_server(body)
    if "period" not in body or body["period"] is None:
        raise ValidationError("period is required", "period")
    period = parse_period(body["period"], "period")
    reports = []
    for path, item in _objects(body, "services", MAX_SERVICES):
        name = _string(item, "name", path, minimum=1, maximum=MAX_NAME, name=True)
        sent_state = _string(item, "state", path, minimum=0, maximum=MAX_STATE)
        info = _string(item, "info", path, minimum=0, maximum=MAX_INFO,
                       required=False) or ""
        own_period = item.get("period")
        service_period = (
            period if own_period is None else parse_period(own_period, f"{path}.period")
        )
        when = None if item.get("time") is None else _time(item["time"], f"{path}.time", now)
        assert name is not None and sent_state is not None
        state, suffix = map_state(sent_state)
        output = parse_plugin_output(info)
        schedule, tz = parse_schedule_fields(item, path)
        reports.append(Report(
            name, state, output.text + suffix, service_period, when, output.metrics,
            schedule=schedule, tz=tz,
            grace=_seconds_field(item, "grace", path, minimum=0),
            duration=_seconds_field(item, "duration", path, minimum=0),
            settings=parse_settings(item, path),
        ))
    return server, reports


def parse_settings(item: dict[str, Any], path: str) -> Overrides:
    """The optional per-service settings of one report (SPEC 10); 400s name the field."""
    if "attempts" not in item and "flapping" not in item and "depends_on" not in item:
        return NO_OVERRIDES  # the common case, checked without a dict or a call per key
    values: dict[str, Any] = {}
    for key, parse in (("attempts", parse_attempts), ("flapping", parse_flapping)):
        if item.get(key) is not None:
            try:
                values[key] = parse(item[key])
            except ValueError as e:
                raise ValidationError(f"{path}.{key} {e}", f"{path}.{key}") from None
    values["depends_on"] = _string(item, "depends_on", path, minimum=1,
                                   maximum=MAX_NAME, required=False)
    if all(v is None for v in values.values()):
        return NO_OVERRIDES
    return Overrides(**values)


def _seconds_field(item: dict, key: str, path: str, *, minimum: float) -> float | None:
    """An optional number of seconds from ``minimum`` to 31,536,000 (``grace``, ``duration``)."""
    value = item.get(key)
    if value is None:
        return None
    where = f"{path}.{key}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise ValidationError(f"{where} must be a number of seconds", where)
    if not minimum <= value <= MAX_PERIOD:
        raise ValidationError(f"{where} must be from {minimum:g} to {MAX_PERIOD} seconds",
                              where)
    return float(value)


def parse_schedule_fields(item: dict, path: str) -> tuple[str | None, str | None]:
    """``schedule`` (five cron fields) and ``tz`` (an IANA zone, UTC if absent) of one
    service; a zone without a schedule is refused rather than silently ignored."""
    if "schedule" not in item and "tz" not in item:
        return None, None
    schedule = _string(item, "schedule", path, minimum=1, maximum=1000,
                       required=False)
    tz = _string(item, "tz", path, minimum=1, maximum=1000, required=False)
    if schedule is None:
        if tz is not None:
            raise ValidationError(f"{path}.tz is given without a schedule", f"{path}.tz")
        return None, None
    try:
        schedule = check_schedule(schedule)
    except ValueError as error:
        raise ValidationError(f"{path}.schedule: {error}", f"{path}.schedule") from None
    tz = DEFAULT_ZONE if tz is None else tz
    try:
        zone(tz)
    except ValueError as error:
        raise ValidationError(f"{path}.tz: {error}", f"{path}.tz") from None
    return schedule, tz


def parse_start(body: dict[str, Any], now: float) -> tuple[ServerIdentity, list[RunStart]]:
    """Validate a ``/api/set/service/start`` body (SPEC 9.3): names and timeouts."""
    server = parse_server(body)
    starts = []
    for path, item in _objects(body, "services", MAX_SERVICES):
        name = _string(item, "name", path, minimum=1, maximum=MAX_NAME)
        if item.get("timeout") is None:
            raise ValidationError(f"{path}.timeout is required", f"{path}.timeout")
        timeout = parse_period(item["timeout"], f"{path}.timeout")
        when = None if item.get("time") is None else _time(item["time"], f"{path}.time", now)
        assert name is not None
        starts.append(RunStart(name, timeout, when))
    return server, starts


def parse_alerts(body: dict[str, Any]) -> tuple[ServerIdentity, list[AlertRequest]]:
    """Validate a ``/api/set/alerts`` body; ``title`` is accepted and ignored (1.x)."""
    server = parse_server(body)
    alerts = []
    for path, item in _objects(body, "alerts", MAX_ALERTS):
        message = _string(item, "message", path, minimum=1, maximum=MAX_MESSAGE)
        service = _string(item, "service", path, minimum=1, maximum=MAX_NAME,
                          required=False, name=True)
        assert message is not None
        alerts.append(AlertRequest(message, service))
    return server, alerts
