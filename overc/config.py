"""The server's INI config: defaults < file < ``OVERC_<KEY>`` environment < command line.

Parsing is pure (a file's text and an environment mapping in, a frozen :class:`ServerConfig`
out), so every rule tests without touching disk. Every mistake is one :class:`ConfigError` line
naming the file, the section and the key. OverC 1.x files (``[overc] database``, ``loglevel``,
``[alert:*] command``) load unchanged.
"""
from __future__ import annotations

import configparser
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, TypeVar

from overc.core.dburl import (
    DatabaseURLError, MySQLTarget, SQLiteTarget, parse_database_url,
)
from overc.core.durations import Grace, parse_duration, parse_grace
from overc.core.maintenance import WindowRequest, check_schedule
from overc.core.routing import parse_globs
from overc.core.passwords import is_hash
from overc.core.policy import Policy, PolicyError, parse_policy

T = TypeVar("T")

DEFAULT_DATABASE = "sqlite:///overc.db"
DEFAULT_LISTEN = "tcp:5000:interface=127.0.0.1"

# [overc] keys and their defaults; the environment overrides them as OVERC_<KEY> (- becomes _).
OVERC_DEFAULTS = {
    "database": DEFAULT_DATABASE,
    "listen": DEFAULT_LISTEN,
    "loglevel": "info",
    "grace": "10%",
    "retention": "90d",
    "registration": "open",
    "public-url": "",
    "watchdog-interval": "1",
    "access-log": "off",
    "processes": "1",
    "request-timeout": "30s",
    "max-connections": "1000",
}
UI_DEFAULTS = {"users": "", "auth": ""}
LOGLEVELS = ("debug", "info", "warn", "warning", "error", "critical")


class ConfigError(Exception):
    """One readable line: ``FILE [section] key: what is wrong``."""

    def __init__(self, source: str, section: str, key: str | None, message: str) -> None:
        self.source, self.section, self.key, self.message = source, section, key, message
        where = f"[{section}]" + (f" {key}" if key else "")
        super().__init__(f"{source} {where}: {message}")


@dataclass(frozen=True)
class ServerConfig:
    source: str = "(defaults)"
    base_dir: Path = field(default_factory=Path.cwd)
    database: str = DEFAULT_DATABASE
    listen: str = DEFAULT_LISTEN
    loglevel: str = "info"
    grace: Grace = Grace()
    retention: float = 90 * 86400.0
    registration_open: bool = True
    public_url: str = ""
    watchdog_interval: float = 1.0
    access_log: bool = False
    processes: int = 1
    #: Seconds a client has to send a request's headers and body (slow clients get a 408).
    request_timeout: float = 30.0
    #: Open connections one process accepts; more are answered 503 and closed.
    max_connections: int = 1000
    users: Mapping[str, str] = field(default_factory=dict)
    auth_required: bool = False
    #: Raw ``[alert:<name>]`` sections, validated by the notification channels.
    channels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: ``[maintenance:<name>]`` sections: recurring maintenance windows (SPEC 11).
    maintenance: tuple[WindowRequest, ...] = ()
    #: ``[policy:<name>]`` sections in file order (SPEC 10: per-service settings).
    policies: tuple[Policy, ...] = ()

    def database_target(self) -> SQLiteTarget | MySQLTarget:
        return parse_database_url(self.database, self.base_dir)


def parse_users(text: str) -> dict[str, str]:
    users: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, hashed = item.partition(":")
        name, hashed = name.strip(), hashed.strip()
        if not sep or not name:
            raise ValueError(f"{item!r} is not user:<password hash>")
        if not is_hash(hashed):
            raise ValueError(
                f"the password of {name!r} is not a hash: make one with `overc-passwd`"
            )
        users[name] = hashed
    return users


def _split_endpoint(endpoint: str) -> list[str]:
    """Split an endpoint string on ``:`` as Twisted does (``\\:`` is an escaped colon)."""
    parts, current, chars = [], [], iter(endpoint)
    for char in chars:
        if char == "\\":
            current.append(next(chars, ""))
        elif char == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def endpoint_tcp_address(endpoint: str) -> tuple[str, int]:
    """``(host, port)`` of a ``tcp:``/``tcp6:`` endpoint string; ValueError for other kinds."""
    parts = _split_endpoint(endpoint)
    if parts[0].lower() not in ("tcp", "tcp6") or len(parts) < 2:
        raise ValueError("several processes need a tcp: endpoint (tcp:5000:interface=...)")
    positional = [p for p in parts[1:] if "=" not in p]
    params = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
    port_text = params.get("port") or (positional[0] if positional else "")
    if not port_text.isdigit() or int(port_text) == 0:
        raise ValueError("several processes need a fixed port (not 0)")
    default = "::" if parts[0].lower() == "tcp6" else "0.0.0.0"
    return params.get("interface", default) or default, int(port_text)


def listen_is_loopback(endpoint: str) -> bool:
    """Whether a Twisted endpoint string only accepts connections from this host."""
    parts = _split_endpoint(endpoint)
    kind = parts[0].lower()
    if kind == "unix":
        return True
    if kind not in ("tcp", "tcp6", "ssl"):
        return False
    params = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
    interface = params.get("interface", "")
    if not interface:
        return False
    if interface == "localhost":
        return True
    try:
        return ipaddress.ip_address(interface.strip("[]")).is_loopback
    except ValueError:
        return False


def load_config(
    text: str | None,
    *,
    source: str = "(defaults)",
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, str | None] | None = None,
) -> ServerConfig:
    """Build the config from a file's text (or none), the environment and command-line values."""
    parser = configparser.ConfigParser(
        interpolation=None, inline_comment_prefixes=(";", "#"), strict=True
    )
    if text is not None:
        try:
            parser.read_string(text, source=source)
        except configparser.Error as e:
            raise ConfigError(source, getattr(e, "section", "?") or "?", None,
                              f"cannot parse: {e.message.splitlines()[0]}") from None
    for section in parser.sections():
        if section not in ("overc", "ui") and not section.startswith(
                ("alert:", "maintenance:", "policy:")):
            raise ConfigError(source, section, None, "unknown section (expected [overc], [ui],"
                              " [alert:<name>], [maintenance:<name>] or [policy:<name>])")
        if section.startswith("alert:") and not section[len("alert:"):].strip():
            raise ConfigError(source, section, None, "a channel needs a name: [alert:<name>]")

    def values(section: str, defaults: Mapping[str, str]) -> dict[str, tuple[str, str]]:
        """key -> (value, where it came from)."""
        out = {k: (v, "default") for k, v in defaults.items()}
        if parser.has_section(section):
            for key, value in parser.items(section):
                if key not in defaults:
                    known = ", ".join(sorted(defaults))
                    raise ConfigError(source, section, key, f"unknown key (known: {known})")
                out[key] = (value.strip(), source)
        env = environ or {}
        for key in defaults:
            name = "OVERC_" + key.upper().replace("-", "_")
            if env.get(name):
                out[key] = (env[name], f"environment {name}")
        for key, override in (overrides or {}).items():
            if key in defaults and override is not None:
                out[key] = (override, "command line")
        return out

    base = base_dir if base_dir is not None else Path.cwd()
    main = values("overc", OVERC_DEFAULTS)
    ui = values("ui", UI_DEFAULTS)

    def check(section: str, table: dict[str, tuple[str, str]], key: str,
              convert: Callable[[str], T]) -> T:
        value, origin = table[key]
        try:
            return convert(value)
        except ValueError as e:
            where = source if origin in (source, "default") else origin
            raise ConfigError(where, section, key, str(e)) from None

    def database(value: str) -> str:
        try:
            parse_database_url(value, base)
        except DatabaseURLError as e:
            raise ValueError(str(e)) from None
        return value

    def loglevel(value: str) -> str:
        if value.lower() not in LOGLEVELS:
            raise ValueError(f"{value!r} is not one of {', '.join(LOGLEVELS)}")
        return value.lower()

    def registration(value: str) -> bool:
        if value.lower() not in ("open", "closed"):
            raise ValueError("use open or closed")
        return value.lower() == "open"

    def positive_duration(value: str) -> float:
        seconds = parse_duration(value)
        if seconds <= 0:
            raise ValueError("must be more than 0")
        return seconds

    def boolean(value: str) -> bool:
        lowered = value.strip().lower()
        if lowered in ("on", "yes", "true", "1"):
            return True
        if lowered in ("off", "no", "false", "0"):
            return False
        raise ValueError(f"{value!r} is not on or off")

    def auth(value: str) -> str:
        if value.lower() not in ("", "users", "none"):
            raise ValueError("use users or none")
        return value.lower()

    users = check("ui", ui, "users", parse_users)
    auth_mode = check("ui", ui, "auth", auth)
    listen = main["listen"][0]
    if auth_mode == "none":
        auth_required = False
    else:
        auth_required = bool(users)
        if not users and not listen_is_loopback(listen):
            raise ConfigError(
                source, "ui", "users",
                f"the server would listen beyond loopback ({listen}) with no users: anyone could"
                " see and change it. Add users (make hashes with `overc-passwd`), listen on"
                " 127.0.0.1, or set [ui] auth = none on purpose",
            )
        if auth_mode == "users" and not users:
            raise ConfigError(source, "ui", "users", "auth = users needs at least one user")

    def processes(value: str) -> int:
        if not value.strip().isdigit() or not 1 <= int(value) <= 64:
            raise ValueError("a whole number of processes from 1 to 64")
        return int(value)

    def max_connections(value: str) -> int:
        if not value.strip().isdigit() or not 1 <= int(value) <= 1_000_000:
            raise ValueError("a whole number of connections from 1 to 1000000")
        return int(value)

    def request_timeout(value: str) -> float:
        seconds = positive_duration(value)
        if seconds > 3600:
            raise ValueError("at most 1h")
        return seconds

    database_url = check("overc", main, "database", database)
    process_count = check("overc", main, "processes", processes)
    if process_count > 1:
        if isinstance(parse_database_url(database_url, base), SQLiteTarget):
            raise ConfigError(source, "overc", "processes",
                              "several processes need MySQL/MariaDB (SQLite has one writer)")
        try:
            endpoint_tcp_address(listen)
        except ValueError as e:
            raise ConfigError(source, "overc", "processes", str(e)) from None

    channels = {
        section[len("alert:"):].strip(): dict(parser.items(section))
        for section in parser.sections()
        if section.startswith("alert:")
    }
    return ServerConfig(
        maintenance=_maintenance_sections(parser, source),
        policies=_policies(parser, source),
        source=source,
        base_dir=base,
        database=database_url,
        listen=listen,
        loglevel=check("overc", main, "loglevel", loglevel),
        grace=check("overc", main, "grace", parse_grace),
        retention=check("overc", main, "retention", positive_duration),
        registration_open=check("overc", main, "registration", registration),
        public_url=main["public-url"][0],
        watchdog_interval=check("overc", main, "watchdog-interval", positive_duration),
        access_log=check("overc", main, "access-log", boolean),
        processes=process_count,
        request_timeout=check("overc", main, "request-timeout", request_timeout),
        max_connections=check("overc", main, "max-connections", max_connections),
        users=users,
        auth_required=auth_required,
        channels=channels,
    )


MAINTENANCE_KEYS = ("servers", "services", "schedule", "tz", "duration", "reason")


def _maintenance_sections(parser: configparser.ConfigParser,
                          source: str) -> tuple[WindowRequest, ...]:
    """``[maintenance:<name>]``: a recurring window (``schedule`` + ``duration``, ``tz``
    default UTC) over the glob filters ``servers`` and ``services`` (empty: all)."""
    windows = []
    for section in parser.sections():
        if not section.startswith("maintenance:"):
            continue
        name = section[len("maintenance:"):].strip()
        if not name:
            raise ConfigError(source, section, None,
                              "a window needs a name: [maintenance:<name>]")
        items = dict(parser.items(section))
        for key in items:
            if key not in MAINTENANCE_KEYS:
                raise ConfigError(source, section, key,
                                  f"unknown key (known: {', '.join(MAINTENANCE_KEYS)})")
        for key in ("schedule", "duration"):
            if not items.get(key, "").strip():
                raise ConfigError(source, section, key,
                                  f"{key} is required (e.g. schedule = 0 2 * * sun,"
                                  " duration = 2h)")
        schedule, tz = items["schedule"].strip(), items.get("tz", "").strip() or "UTC"
        try:
            check_schedule(schedule, tz)
        except ValueError as e:
            raise ConfigError(source, section, "tz" if "time zone" in str(e) else "schedule",
                              str(e)) from None
        try:
            duration = parse_duration(items["duration"])
            if not 0 < duration <= 366 * 86400:
                raise ValueError("must be more than 0 and at most a year")
        except ValueError as e:
            raise ConfigError(source, section, "duration", str(e)) from None
        windows.append(WindowRequest(
            source="config", name=name, schedule=schedule, tz=tz, duration=duration,
            servers=parse_globs(items.get("servers", "")),
            services=parse_globs(items.get("services", "")),
            reason=items.get("reason", "").strip(),
        ))
    return tuple(windows)
def _policies(parser: configparser.ConfigParser, source: str) -> tuple[Policy, ...]:
    """The ``[policy:<name>]`` sections in file order; errors name file, section and key."""
    policies = []
    for section in parser.sections():
        if not section.startswith("policy:"):
            continue
        name = section[len("policy:"):].strip()
        if not name:
            raise ConfigError(source, section, None, "a policy needs a name: [policy:<name>]")
        try:
            policies.append(parse_policy(name, dict(parser.items(section))))
        except PolicyError as e:
            raise ConfigError(source, section, e.key, str(e)) from None
    return tuple(policies)


def load_config_file(
    path: str | Path | None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, str | None] | None = None,
) -> ServerConfig:
    """Read ``path`` (or nothing) and build the config; unreadable files are a ConfigError."""
    if path is None:
        return load_config(None, environ=environ, overrides=overrides)
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(str(file), "-", None, f"cannot read the file: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(str(file), "-", None, "the file is not UTF-8 text") from None
    return load_config(text, source=str(file), base_dir=file.resolve().parent,
                       environ=environ, overrides=overrides)
