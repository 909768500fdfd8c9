"""Request and response helpers shared by the UI, the read API, the push API and /metrics.

The Site does not parse form bodies (``parsePOSTFormSubmission=False``: the push API reads raw
JSON whatever the content type), so forms are parsed here, in one place. Every JSON answer,
errors included, goes through :func:`json_body`, so all APIs speak the same dialect.
"""
from __future__ import annotations

import json
from typing import Any, Coroutine, overload
from urllib.parse import parse_qs, urlsplit

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.server import NOT_DONE_YET, Request
from werkzeug.routing import BaseConverter

from overc.web import numbers
from overc.web.numbers import INT64_MAX, BadRequest

__all__ = ["ID", "IdConverter", "id_routes", "BadRequest", "arg", "int_arg", "time_arg",
           "read_form", "read_json", "json_body", "json_error", "answer_later",
           "security_headers", "relative_location", "safe_next"]

log = Logger()



def _up_to(bound: str) -> str:
    """A regex matching the decimal numbers from 1 to ``bound`` without leading zeros."""
    n = len(bound)
    shorter = f"[1-9][0-9]{{0,{n - 2}}}" if n > 1 else ""
    same = []
    for i, digit in enumerate(bound):
        low = "1" if i == 0 else "0"
        if int(digit) > int(low):
            same.append(f"{bound[:i]}[{low}-{int(digit) - 1}][0-9]{{{n - i - 1}}}")
    same.append(bound)
    return "(?:" + "|".join(([shorter] if shorter else []) + same) + ")"


class IdConverter(BaseConverter):
    """An id in a route: 1 to 2^63 - 1 in ASCII digits. Anything else matches no route (404).

    The range is in the regex itself: werkzeug's ``int(max=...)`` checks it only after the
    method, so ``DELETE /api/servers/<huge>`` would answer 405 instead of 404.
    """

    regex = _up_to(str(INT64_MAX))
    part_isolating = True

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: Any) -> str:
        return str(int(value))


#: The name of :class:`IdConverter` in routes (``<id:server_id>``): see :func:`id_routes`.
ID = "id"


def id_routes(app: Any) -> Any:
    """Teach a Klein app's URL map the ``id`` converter (before its routes are declared)."""
    app.url_map.converters[ID] = IdConverter
    return app

MAX_FORM = 256 * 1024

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


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
        data = json.loads(body, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("the body is not JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the body is not a JSON object")
    return data


def _no_constant(name: str) -> Any:
    """JSON has no NaN or Infinity (Python's parser accepts them unless told not to)."""
    raise ValueError(f"{name} is not JSON")


def relative_location(url: str) -> bytes:
    """The path and query of ``url``: a redirect that does not repeat the client's ``Host:``."""
    parts = urlsplit(url)
    path = "/" + parts.path.lstrip("/")  # never "//host": that would leave the site
    return (path + (f"?{parts.query}" if parts.query else "")).encode("utf-8")


def safe_next(target: str | None) -> str:
    """Only same-site paths under /ui/ after login (no open redirect)."""
    if not target:
        return "/ui/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/ui/") \
            or target.startswith("//") or "\\" in target:
        return "/ui/"
    if parts.path.startswith("/ui/login"):
        return "/ui/"
    return target


def arg(request: IRequest, name: str) -> str | None:
    values = request.args.get(name.encode("ascii"))
    if not values:
        return None
    try:
        return values[-1].decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"{name} is not UTF-8", name) from None


@overload
def int_arg(request: IRequest, name: str, default: int, low: int = 0,
            high: int = INT64_MAX) -> int: ...


@overload
def int_arg(request: IRequest, name: str, default: None = None, low: int = 0,
            high: int = INT64_MAX) -> int | None: ...


def int_arg(request: IRequest, name: str, default: int | None = None,
            low: int = 0, high: int = INT64_MAX) -> int | None:
    """An integer query parameter (see :func:`overc.web.numbers.integer`)."""
    return numbers.optional_integer(arg(request, name), name, low=low, high=high,
                                    default=default)


@overload
def time_arg(request: IRequest, name: str, default: float) -> float: ...


@overload
def time_arg(request: IRequest, name: str, default: None = None) -> float | None: ...


def time_arg(request: IRequest, name: str, default: float | None = None) -> float | None:
    """A time query parameter: Unix seconds or ISO 8601 (see :mod:`overc.web.numbers`)."""
    return numbers.optional_time(arg(request, name), name, default)


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
