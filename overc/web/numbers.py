"""Every number a client sends to the read API or the UI, parsed in one place.

Pure functions (no Twisted, no I/O): each takes what arrived (a query-string value, a form
field, a JSON value) and the field's name, and returns a checked value or raises
:class:`BadRequest` naming the field. Integers are ASCII digits within 64 bits, times and
durations are finite numbers within range: ``nan``, ``inf``, ``1e400``, JSON booleans and
integers of 2^63 or more never reach a query or a comparison. The OpenAPI document
(:mod:`overc.api.openapi`) states the same bounds, from the constants here.
"""
from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone

#: The largest id or count a 64-bit signed column holds.
INT64_MAX = 2**63 - 1
#: The last second of the year 9999: the largest Unix time we accept.
MAX_TIME = 253402300799.0
#: Minutes east or west of UTC a browser may report (``getTimezoneOffset()``).
MAX_TZ_OFFSET = 24 * 60

_INTEGER = re.compile(r"^[+-]?[0-9]{1,25}$")
_DECIMAL = re.compile(r"^[+-]?([0-9]{1,20}(\.[0-9]{0,20})?|\.[0-9]{1,20})([eE][+-]?[0-9]{1,3})?$")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$",
                  re.ASCII)


class BadRequest(Exception):
    """The client sent something we cannot use; the message is shown to it."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def integer(value: object, field: str, *, low: int = 0, high: int = INT64_MAX) -> int:
    """A whole number from ``low`` to ``high``: an ASCII decimal string, or a JSON integer."""
    if isinstance(value, bool):
        raise BadRequest(f"{field} must be an integer, not a boolean", field)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _INTEGER.match(value.strip()):
        number = int(value.strip())
    else:
        raise BadRequest(f"{field} must be an integer from {low} to {high}", field)
    if not low <= number <= high:
        raise BadRequest(f"{field} must be an integer from {low} to {high}", field)
    return number


def optional_integer(value: object, field: str, *, low: int = 0, high: int = INT64_MAX,
                     default: int | None = None) -> int | None:
    """:func:`integer`, or ``default`` when the value is absent or empty."""
    return default if _blank(value) else integer(value, field, low=low, high=high)


def real(value: object, field: str, *, low: float, high: float) -> float:
    """A finite number from ``low`` to ``high``: a JSON number or a decimal string.

    Booleans, ``nan``, ``inf`` and anything beyond the float range are refused.
    """
    if isinstance(value, bool):
        raise BadRequest(f"{field} must be a number, not a boolean", field)
    number: float
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
    elif isinstance(value, str) and _DECIMAL.match(value.strip()):
        number = float(value.strip())
    else:
        raise BadRequest(f"{field} must be a number", field)
    if not math.isfinite(number) or not low <= number <= high:
        raise BadRequest(f"{field} must be a number from {low:g} to {high:g}", field)
    return number


def tz_offset(value: object, field: str = "tzoffset") -> int | None:
    """A browser's ``getTimezoneOffset()`` in minutes (absent: None)."""
    return optional_integer(value, field, low=-MAX_TZ_OFFSET, high=MAX_TZ_OFFSET)


def time_value(value: object, field: str, offset_minutes: int | None = None) -> float:
    """A point in time: Unix seconds (a number or a decimal string) or ISO 8601.

    A naive ISO time is UTC unless the browser's ``offset_minutes`` is given (UTC minus
    local, as JavaScript's ``getTimezoneOffset()``). From 1970 to the end of the year 9999.
    """
    if isinstance(value, str):
        text = value.strip()
        if _ISO.match(text):
            return _iso_time(text, field, offset_minutes)
        if not _DECIMAL.match(text):
            raise BadRequest(f"{field}: expected Unix seconds or an ISO 8601 time like"
                             " 2030-01-31T18:00Z", field)
    return real(value, field, low=0.0, high=MAX_TIME)


def _iso_time(text: str, field: str, offset_minutes: int | None) -> float:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
            if offset_minutes is not None:
                parsed += timedelta(minutes=offset_minutes)
        seconds = parsed.timestamp()
    except (ValueError, OverflowError) as error:
        raise BadRequest(f"{field}: not a valid time ({error})", field) from None
    if not 0.0 <= seconds <= MAX_TIME:
        raise BadRequest(f"{field}: the time must be from 1970 to 9999", field)
    return seconds


def optional_time(value: object, field: str, default: float | None = None,
                  offset_minutes: int | None = None) -> float | None:
    """:func:`time_value`, or ``default`` when the value is absent or empty."""
    return default if _blank(value) else time_value(value, field, offset_minutes)


def duration(value: object, field: str, *, high: float) -> float:
    """A number of seconds, more than 0 and at most ``high``."""
    seconds = real(value, field, low=0.0, high=high)
    if seconds <= 0:
        raise BadRequest(f"{field} must be more than 0 seconds", field)
    return seconds


_TRUE = ("1", "true", "on", "yes")
_FALSE = ("", "0", "false", "off", "no")


def flag(value: object, field: str) -> bool:
    """Yes or no: a JSON boolean, or what a checkbox or a query string sends (``on``, ``1``,
    ``true``...). Absent is no; anything else is refused rather than guessed."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise BadRequest(f"{field} must be true or false", field)


def id_or_name(value: str | None) -> tuple[int | None, str | None]:
    """A filter that names a server or service by id (ASCII digits within 64 bits) or by name.

    Digits too large for an id can only be a name.
    """
    if value is None or value == "":
        return None, None
    if len(value) <= 19 and value.isascii() and value.isdigit() and 1 <= int(value) <= INT64_MAX:
        return int(value), None
    return None, value
