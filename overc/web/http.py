"""Request and response helpers shared by the UI, the read API, the push API and /metrics.

The Site does not parse form bodies (``parsePOSTFormSubmission=False``: the push API reads raw
JSON whatever the content type), so forms are parsed here, in one place. Every JSON answer,
errors included, goes through :func:`json_body`, so all APIs speak the same dialect.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Coroutine, overload
from urllib.parse import parse_qs

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.server import NOT_DONE_YET, Request

log = Logger()

MAX_FORM = 256 * 1024

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


class BadRequest(Exception):
    """The client sent something we cannot use; the message is shown to it."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def security_headers(request: IRequest) -> None:
    request.setHeader(b"content-security-policy", CSP.encode("ascii"))
    request.setHeader(b"x-content-type-options", b"nosniff")
    request.setHeader(b"referrer-policy", b"same-origin")
    request.setHeader(b"x-frame-options", b"DENY")


def read_body(request: IRequest) -> bytes:
    content = request.content
    if content is None:
        return b""
    content.seek(0)
    body = content.read(MAX_FORM + 1)
    if len(body) > MAX_FORM:
        raise BadRequest("the request body is too large")
    return body


def read_form(request: IRequest) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as {name: last value}."""
    try:
        text = read_body(request).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the form is not UTF-8") from None
    return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}


def read_json(request: IRequest) -> dict[str, Any]:
    """A JSON object body; an empty body is an empty object (``DELETE`` and bare ``POST``)."""
    body = read_body(request)
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body is not JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the body is not a JSON object")
    return data


def arg(request: IRequest, name: str) -> str | None:
    values = request.args.get(name.encode("ascii"))
    if not values:
        return None
    try:
        return values[-1].decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"{name} is not UTF-8", name) from None


@overload
def int_arg(request: IRequest, name: str, default: int, low: int | None = None,
            high: int | None = None) -> int: ...


@overload
def int_arg(request: IRequest, name: str, default: None = None, low: int | None = None,
            high: int | None = None) -> int | None: ...


def int_arg(request: IRequest, name: str, default: int | None = None,
            low: int | None = None, high: int | None = None) -> int | None:
    text = arg(request, name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"{name} must be an integer", name) from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise BadRequest(f"{name} must be between {low} and {high}", name)
    return value


@overload
def time_arg(request: IRequest, name: str, default: float) -> float: ...


@overload
def time_arg(request: IRequest, name: str, default: None = None) -> float | None: ...


def time_arg(request: IRequest, name: str, default: float | None = None) -> float | None:
    text = arg(request, name)
    if text is None or text == "":
        return default
    try:
        return parse_time(text)
    except ValueError as e:
        raise BadRequest(f"{name}: {e}", name) from None


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


def parse_time(text: str, offset_minutes: int | None = None) -> float:
    """Unix seconds, or ISO 8601; a naive ISO time is UTC unless the browser's offset is given.

    ``offset_minutes`` is JavaScript's ``getTimezoneOffset()`` (UTC minus local, in minutes).
    """
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    if not _ISO.match(text):
        raise ValueError("expected Unix seconds or an ISO 8601 time like 2030-01-31T18:00Z")
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
        if offset_minutes is not None:
            parsed += timedelta(minutes=offset_minutes)
    return parsed.timestamp()


_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def json_body(request: IRequest, value: Any, status: int = 200) -> bytes:
    """Set status and headers for a JSON answer and return its bytes."""
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
    request.setHeader(b"Cache-Control", b"no-store")
    return _encoder.encode(value).encode("utf-8")


def json_error(request: IRequest, status: int, message: str, field: str | None = None) -> bytes:
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    return json_body(request, body, status)


def answer_later(request: Request, answer: Coroutine[Any, Any, bytes]) -> int:
    """Render ``answer`` asynchronously (``NOT_DONE_YET``), dropping it if the client left.

    ``notifyFinish`` fails when the connection is lost before we finish: writing then would
    only raise. An unexpected error is logged and answered 500, never left hanging.
    """
    gone: list[Failure] = []
    request.notifyFinish().addErrback(gone.append)

    async def deliver() -> None:
        try:
            body = await answer
        except Exception:
            log.failure("Error answering {uri}", uri=request.uri)
            request.setResponseCode(500)
            body = b"internal error\n"
        if not gone and not request.finished:
            request.write(body)
            request.finish()

    Deferred.fromCoroutine(deliver())
    return NOT_DONE_YET
