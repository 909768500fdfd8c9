"""The push-API client: three POST calls and one place that classifies what went wrong.

Every failure ends up as one of two exceptions, because the callers only ever need to know one
thing: *retry later* (:class:`Unreachable`: connection error, timeout, 5xx, 429) or *give up*
(:class:`Refused`: any other 4xx, or an answer that is not the push API's). The HTTP client is
injected (``treq`` in production, ``treq.testing.StubTreq`` in tests) and so is the clock.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

from twisted.internet import defer
from twisted.logger import Logger

from overc.agent.results import Report

log = Logger()

#: Seconds a whole call (connect, send, read the answer) may take.
DEFAULT_TIMEOUT = 30.0

#: The answer of the push API is tiny; anything bigger is not it.
MAX_ANSWER = 64 * 1024


class UsageError(Exception):
    """A bad URL or server id: exit status 2 in the CLI, a config error in the monitor."""


class Refused(Exception):
    """The server answered and refused the request; retrying the same request cannot help."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        self.status = status
        self.message = message
        self.field = field
        where = f" (field {field})" if field else ""
        super().__init__(f"server refused ({status}): {message}{where}")


class Unreachable(Exception):
    """No usable answer now (connection error, timeout, 5xx, 429); the request may be retried."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.message = message
        self.retry_after = retry_after
        super().__init__(message)


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to push: base URL (no credentials), optional Basic auth, name and key."""

    base_url: str
    name: str
    key: str
    auth: tuple[str, str] | None = None

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")


def parse_server_url(url: str) -> tuple[str, tuple[str, str] | None]:
    """Split ``http://user:pw@host:5000/prefix`` into the base URL and Basic credentials."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"server URL must be http:// or https:// with a host, got {url!r}")
    auth = None
    if parts.username is not None:
        auth = (unquote(parts.username), unquote(parts.password or ""))
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"server URL has a bad port: {url!r}") from None
    if port is not None:
        netloc += f":{port}"
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return urlunsplit((parts.scheme, netloc, path, "", "")), auth


def parse_server_id(server_id: str) -> tuple[str, str]:
    """``name:key`` -> (name, key); the key may itself contain colons."""
    name, sep, key = server_id.partition(":")
    if not sep or not name or not key:
        raise UsageError("server id must be NAME:KEY")
    if len(name) > 64:
        raise UsageError("server name must be at most 64 characters")
    if len(key) > 128:
        raise UsageError("server key must be at most 128 characters")
    return name, key


def make_endpoint(url: str, server_id: str) -> Endpoint:
    base, auth = parse_server_url(url)
    name, key = parse_server_id(server_id)
    return Endpoint(base, name, key, auth)


def _parse_retry_after(value: bytes | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value.decode("ascii").strip()), 0.0)
    except ValueError:
        return None  # an HTTP date: rare enough to fall back to our own backoff


#: Answers that say "not now" rather than "never".
RETRYABLE = frozenset({408, 429})


def classify(status: int, body: bytes, retry_after: bytes | None = None) -> dict[str, Any]:
    """Decide what an HTTP answer means (pure): return the JSON on 200, else raise.

    408 (the server's request timeout on a slow link), 429 and 5xx are :class:`Unreachable`
    (retry later, honouring ``Retry-After``): retrying can help, so nothing is dropped; other
    statuses are :class:`Refused` with the server's ``error`` and ``field`` when it sent them.
    """
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if status in RETRYABLE or status >= 500:
        raise Unreachable(f"server answered {status}" + (f": {error}" if error else ""), _parse_retry_after(retry_after))
    if status == 200 and isinstance(data, dict) and "error" not in data:
        return data
    if status == 200:
        raise Refused(status, "the answer is not an OverC push API answer (wrong URL?)")
    if error:
        field = data.get("field") if isinstance(data, dict) else None
        raise Refused(status, str(error), str(field) if field else None)
    raise Refused(status, f"HTTP {status} without an OverC error (wrong URL?)")


class OvercClient:
    """Calls the push API of one OverC server as one reporting host."""

    def __init__(self, http, clock, endpoint: Endpoint, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.http = http
        self.clock = clock
        self.endpoint = endpoint
        self.timeout = timeout

    def _body(self, **fields: Any) -> dict[str, Any]:
        return {"server": {"name": self.endpoint.name, "key": self.endpoint.key}, **fields}

    async def ping(self) -> None:
        answer = await self.post("api/ping", self._body())
        if answer.get("pong") != 1:
            raise Refused(200, "the answer to ping is not a pong (wrong URL?)")

    async def set_service_status(self, reports: Iterable[Report], with_time: bool = True) -> None:
        """Push reports; each carries its own period, the top-level period is the largest."""
        reports = list(reports)
        period = max((r.period for r in reports), default=60)
        await self.post(
            "api/set/service/status",
            self._body(period=period, services=[r.to_wire(with_time) for r in reports]),
        )

    async def start(self, name: str, timeout: int) -> None:
        """SPEC 9.3: the run of ``name`` starts now and may take ``timeout`` seconds."""
        await self.post("api/set/service/start",
                        self._body(services=[{"name": name, "timeout": timeout}]))

    async def set_alerts(self, alerts: list[dict[str, str]]) -> None:
        await self.post("api/set/alerts", self._body(alerts=alerts))

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST JSON; return the answer's JSON or raise Refused / Unreachable."""
        url = self.endpoint.url(path)
        d = defer.Deferred.fromCoroutine(self._post(url, body))
        d.addTimeout(self.timeout, self.clock)
        try:
            return await d
        except (Refused, Unreachable):
            raise
        except defer.TimeoutError:
            raise Unreachable(f"no answer from {url} within {self.timeout:g} s") from None
        except Exception as e:
            raise Unreachable(f"cannot reach {url}: {_describe(e)}") from None

    async def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {b"Content-Type": [b"application/json"], b"Accept": [b"application/json"]}
        if self.endpoint.auth is not None:
            user, password = self.endpoint.auth
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            headers[b"Authorization"] = [f"Basic {token}".encode("ascii")]
        data = json.dumps(body, separators=(",", ":")).encode("utf-8")
        response = await self.http.post(url, data=data, headers=headers)
        content = await response.content()
        retry_after = response.headers.getRawHeaders(b"retry-after", [None])[0]
        return classify(response.code, content[:MAX_ANSWER], retry_after)


def _describe(e: BaseException) -> str:
    """A short human reason for a transport failure (Twisted wraps the interesting part)."""
    reasons = getattr(e, "reasons", None)  # ResponseNeverReceived, RequestTransmissionFailed
    if reasons:
        return "; ".join(_describe(r.value) for r in reasons)
    text = str(e).strip() or type(e).__name__
    return text.rstrip(".")
