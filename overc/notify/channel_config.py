"""``[alert:<name>]`` sections validated into :class:`~overc.notify.base.ChannelSpec`.

Validation names file, section and key in every error, so a typo stops the start with one
readable line instead of surfacing as a failed delivery at 3 a.m. The composition root parses
once and hands the specs on.
"""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import unquote, urlsplit

from overc.config import ConfigError, ServerConfig
from overc.core.alerts import SEVERITIES
from overc.core.durations import parse_duration
from overc.core.routing import parse_globs
from overc.notify.base import ChannelSpec
from overc.notify.command import resolve_program

KINDS = ("command", "url", "smtp")
COMMON_KEYS = ("min-severity", "servers", "services", "timeout", "retries", "repeat", "after")
KIND_KEYS = {
    "command": ("command", "format"),
    "url": ("url", "template", "headers", "format"),
    "smtp": ("smtp", "from", "to", "format"),
}


def parse_channel(name: str, raw: Mapping[str, str], *, source: str, base_dir: Path
                  ) -> ChannelSpec:
    section = f"alert:{name}"

    def fail(key: str | None, message: str) -> ConfigError:
        return ConfigError(source, section, key, message)

    every_key = set(KINDS) | set(COMMON_KEYS) | {k for keys in KIND_KEYS.values() for k in keys}
    for key in raw:  # a typo (comand =) is named, not reported as a missing kind
        if key not in every_key:
            raise fail(key, f"unknown key (known: {', '.join(sorted(every_key))})")
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
    if raw.get("after", "").strip().lower() not in ("", "0", "0s"):
        try:  # escalation (SPEC 10.5): told only what stays a problem, unacknowledged, so long
            values["after"] = parse_duration(raw["after"])
        except ValueError as e:
            raise fail("after", str(e)) from None
        if values["after"] < 1:
            raise fail("after", "at least 1 s (or leave it out: at once)")
    fmt = raw.get("format", "text").strip().lower()
    if fmt not in ("text", "json"):
        raise fail("format", "use text or json")
    values["format"] = fmt

    if kind == "command":
        try:
            argv = tuple(shlex.split(raw["command"]))
        except ValueError as e:
            raise fail("command", f"cannot split it like a shell would: {e}") from None
        if not argv:
            raise fail("command", "a program to run is needed")
        try:  # at start, not at the first delivery at 3 a.m.
            resolve_program(argv[0], str(base_dir))
        except ValueError as e:
            raise fail("command", str(e)) from None
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


def _parse_headers(text: str, fail: Callable[[str | None, str], ConfigError]
                   ) -> dict[str, str]:
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
