"""Validation of push API bodies (SPEC section 1): JSON in, typed reports out, or one error.

Pure functions: ``now`` is an argument. A :class:`ValidationError` names the offending field as
a path (``services[2].state``) so a client can tell exactly what to fix.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Iterator

from overc.core.perfdata import Metric, parse_plugin_output
from overc.core.policy import NO_OVERRIDES, Overrides, parse_attempts, parse_flapping
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
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _string(obj: dict, key: str, path: str, *, minimum: int, maximum: int,
            required: bool = True) -> str | None:
    if key not in obj or obj[key] is None:
        if required:
            raise ValidationError(f"{path} is required", path)
        return None
    value = obj[key]
    if not isinstance(value, str):
        raise ValidationError(f"{path} must be a string", path)
    if not _encodable(value):
        raise ValidationError(f"{path} holds characters that are not valid Unicode", path)
    if not minimum <= len(value) <= maximum:
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
    name = _string(server, "name", "server.name", minimum=1, maximum=MAX_NAME)
    key = _string(server, "key", "server.key", minimum=1, maximum=MAX_KEY)
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
        name = _string(item, "name", f"{path}.name", minimum=1, maximum=MAX_NAME)
        sent_state = _string(item, "state", f"{path}.state", minimum=0, maximum=MAX_STATE)
        info = _string(item, "info", f"{path}.info", minimum=0, maximum=MAX_INFO,
                       required=False) or ""
        own_period = item.get("period")
        service_period = (
            period if own_period is None else parse_period(own_period, f"{path}.period")
        )
        when = None if item.get("time") is None else _time(item["time"], f"{path}.time", now)
        assert name is not None and sent_state is not None
        state, suffix = map_state(sent_state)
        output = parse_plugin_output(info)
        reports.append(Report(name, state, output.text + suffix, service_period, when,
                              output.metrics, parse_settings(item, path)))
    return server, reports


def parse_settings(item: dict[str, Any], path: str) -> Overrides:
    """The optional per-service settings of one report (SPEC 10); 400s name the field."""
    values: dict[str, Any] = {}
    for key, parse in (("attempts", parse_attempts), ("flapping", parse_flapping)):
        if item.get(key) is not None:
            try:
                values[key] = parse(item[key])
            except ValueError as e:
                raise ValidationError(f"{path}.{key} {e}", f"{path}.{key}") from None
    values["depends_on"] = _string(item, "depends_on", f"{path}.depends_on", minimum=1,
                                   maximum=MAX_NAME, required=False)
    if all(v is None for v in values.values()):
        return NO_OVERRIDES
    return Overrides(**values)


def parse_alerts(body: dict[str, Any]) -> tuple[ServerIdentity, list[AlertRequest]]:
    """Validate a ``/api/set/alerts`` body; ``title`` is accepted and ignored (1.x)."""
    server = parse_server(body)
    alerts = []
    for path, item in _objects(body, "alerts", MAX_ALERTS):
        message = _string(item, "message", f"{path}.message", minimum=1, maximum=MAX_MESSAGE)
        service = _string(item, "service", f"{path}.service", minimum=1, maximum=MAX_NAME,
                          required=False)
        assert message is not None
        alerts.append(AlertRequest(message, service))
    return server, alerts
