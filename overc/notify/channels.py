"""``[alert:<name>]`` sections: validated into :class:`ChannelSpec` and built into channels.

Validation is pure and names file, section and key in every error, so a typo stops the start
with one readable line instead of surfacing as a failed delivery at 3 a.m.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence
from urllib.parse import unquote, urlsplit

from overc.config import ConfigError, ServerConfig, parse_duration
from overc.notify.rules import SEVERITIES, AlertView, Route, parse_globs

KINDS = ("command", "url", "smtp")
COMMON_KEYS = ("min-severity", "servers", "services", "timeout", "retries", "repeat")
KIND_KEYS = {
    "command": ("command", "format"),
    "url": ("url", "template", "headers", "format"),
    "smtp": ("smtp", "from", "to", "format"),
}


class DeliveryError(Exception):
    """A channel could not deliver; the message is recorded as the attempt's error."""


class Channel(Protocol):
    spec: "ChannelSpec"

    async def send(self, alerts: Sequence[AlertView], kind: str,
                   notification_id: int | None = None) -> None:
        """Deliver one notification; raise :class:`DeliveryError` (or any error) on failure.

        ``notification_id`` is the same on every attempt of one notification: it is handed to
        the receiver (``OVERC_NOTIFICATION_ID``, ``X-OverC-Notification``, ``Message-ID``) so a
        delivery repeated after a crash can be recognised.
        """


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    kind: str  # command | url | smtp
    base_dir: Path
    command: tuple[str, ...] = ()
    format: str = "text"
    url: str = ""
    template: Path | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    sender: str = ""
    recipients: tuple[str, ...] = ()
    min_severity: str = "WARN"
    servers: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    timeout: float = 30.0
    retries: int = 5
    repeat: float | None = None

    @property
    def route(self) -> Route:
        return Route(self.name, self.min_severity, self.servers, self.services, self.repeat)

    @property
    def lease(self) -> float:
        """How long a delivery may hold its claim: the timeout, the kill grace and a margin."""
        return self.timeout + 10.0


def parse_channel(name: str, raw: Mapping[str, str], *, source: str, base_dir: Path
                  ) -> ChannelSpec:
    section = f"alert:{name}"

    def fail(key: str | None, message: str) -> ConfigError:
        return ConfigError(source, section, key, message)

    present = [k for k in KINDS if raw.get(k, "").strip()]
    if not present:
        raise fail(None, "a channel needs one of command, url or smtp")
    if len(present) > 1:
        raise fail(present[1], f"a channel has one of command, url or smtp, not {' and '.join(present)}")
    kind = present[0]
    known = set(COMMON_KEYS) | set(KIND_KEYS[kind])
    for key in raw:
        if key not in known:
            raise fail(key, f"unknown key for a {kind} channel (known: {', '.join(sorted(known))})")
    values: dict[str, Any] = {"name": name, "kind": kind, "base_dir": base_dir}

    severity = raw.get("min-severity", "WARN").strip().upper()
    if severity not in SEVERITIES:
        raise fail("min-severity", f"{severity!r} is not one of {', '.join(SEVERITIES)}")
    values["min_severity"] = severity
    values["servers"] = parse_globs(raw.get("servers", ""))
    values["services"] = parse_globs(raw.get("services", ""))
    if "timeout" in raw:
        try:
            values["timeout"] = parse_duration(raw["timeout"])
        except ValueError as e:
            raise fail("timeout", str(e)) from None
        if values["timeout"] <= 0:
            raise fail("timeout", "must be more than 0")
    if "retries" in raw:
        try:
            values["retries"] = int(raw["retries"])
        except ValueError:
            raise fail("retries", f"{raw['retries']!r} is not a whole number") from None
        if not 0 <= values["retries"] <= 100:
            raise fail("retries", "from 0 to 100")
    if raw.get("repeat", "").strip().lower() not in ("", "off", "no", "0"):
        try:
            values["repeat"] = parse_duration(raw["repeat"])
        except ValueError as e:
            raise fail("repeat", str(e)) from None
        if values["repeat"] < 1:
            raise fail("repeat", "at least 1 s")
    fmt = raw.get("format", "text").strip().lower()
    if fmt not in ("text", "json"):
        raise fail("format", "use text or json")
    values["format"] = fmt

    if kind == "command":
        try:
            argv = tuple(shlex.split(raw["command"]))
        except ValueError as e:
            raise fail("command", f"cannot split it like a shell would: {e}") from None
        values["command"] = argv
    elif kind == "url":
        url = raw["url"].strip()
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise fail("url", f"{url!r} is not an http:// or https:// URL")
        values["url"] = url
        if raw.get("template", "").strip():
            template = Path(raw["template"].strip())
            template = template if template.is_absolute() else base_dir / template
            if not template.is_file():
                raise fail("template", f"no such file: {template}")
            values["template"] = template
        values["headers"] = _parse_headers(raw.get("headers", ""), fail)
    else:
        parts = urlsplit(raw["smtp"].strip())
        if parts.scheme != "smtp" or not parts.hostname:
            raise fail("smtp", "use smtp://host:25 (or smtp://user:password@host:587)")
        try:
            values["smtp_port"] = parts.port or 25
        except ValueError as e:
            raise fail("smtp", f"bad port: {e}") from None
        values["smtp_host"] = parts.hostname
        values["smtp_user"] = unquote(parts.username) if parts.username else None
        values["smtp_password"] = unquote(parts.password) if parts.password else None
        sender = raw.get("from", "").strip()
        if "@" not in sender:
            raise fail("from", "an e-mail address is needed (from = overc@example.com)")
        recipients = tuple(a.strip() for a in raw.get("to", "").split(",") if a.strip())
        if not recipients or any("@" not in a for a in recipients):
            raise fail("to", "one or more e-mail addresses, comma-separated")
        values["sender"], values["recipients"] = sender, recipients
    return ChannelSpec(**values)


def _parse_headers(text: str, fail) -> dict[str, str]:
    """One ``Name: value`` per line (an INI value may span indented lines)."""
    headers: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise fail("headers", f"{line.strip()!r} is not 'Name: value' (one per line)")
        headers[name.strip()] = value.strip()
    return headers


def parse_channels(config: ServerConfig) -> list[ChannelSpec]:
    """Every ``[alert:<name>]`` of the config, validated (a :class:`ConfigError` otherwise)."""
    return [
        parse_channel(name, raw, source=config.source, base_dir=config.base_dir)
        for name, raw in sorted(config.channels.items())
    ]


def build_channel(spec: ChannelSpec, *, reactor: Any, public_url: str,
                  http_client: Any = None) -> Channel:
    """The live channel for a spec; ``http_client`` is a treq ``HTTPClient`` (or StubTreq)."""
    if spec.kind == "command":
        from overc.notify.command import CommandChannel

        return CommandChannel(spec, reactor, public_url=public_url)
    if spec.kind == "url":
        from overc.notify.webhook import WebhookChannel, default_client

        return WebhookChannel(spec, http_client or default_client(reactor), reactor,
                              public_url=public_url)
    from overc.notify.smtp import SMTPChannel

    return SMTPChannel(spec, reactor, public_url=public_url)


def render_body(spec: ChannelSpec, alerts: Sequence[AlertView], kind: str,
                public_url: str, notification_id: int | None = None) -> bytes:
    """The 1.x text (default) or ``format = json`` body of one notification."""
    import json

    from overc.notify.rules import notification_json, notification_text

    if spec.format == "json":
        payload = notification_json(alerts, channel=spec.name, kind=kind, public_url=public_url,
                                    notification_id=notification_id)
        return json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return notification_text(alerts).encode("utf-8")


async def within(d: Any, seconds: float, clock: Any) -> Any:
    """Await ``d``, cancelling it after ``seconds``; a timeout is one clear DeliveryError
    (whatever the cancelled client wraps the cancellation in)."""
    timed_out: list[bool] = []

    def on_timeout(result: Any, timeout: float) -> Any:
        timed_out.append(True)
        return result

    d.addTimeout(seconds, clock, onTimeoutCancel=on_timeout)
    try:
        return await d
    except Exception:
        if timed_out:
            raise DeliveryError(f"no answer within {seconds:g} s") from None
        raise
