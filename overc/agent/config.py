"""The monitor's INI file (OverC 1.x compatible) parsed into plain values.

1.x files work unchanged: ``[overc] server / my-name / my-key`` and ``[service:NAME]`` with
``period``, ``command`` and optional ``max-lag``. New optional keys: ``[overc] spool``,
``spool-size``, ``concurrency``, ``loglevel``; ``[service:*] timeout``, ``shell``. A key that is
none of these in ``[overc]`` or ``[service:*]`` is an error (a misspelt ``timout`` would
otherwise be silently ignored), as in the server's config. Sections without a colon other than
``[overc]`` are ignored (as 1.x did); ``[x:y]`` with an unknown ``x`` is an error.

Interpolation is off, so ``%`` in a command (``check_disk -w 10%``) is literal, as it was in
1.x; ``;`` after whitespace starts a comment, as in 1.x. Every error names the file, the
section and the key, so the user knows what to fix from one line.
"""
from __future__ import annotations

import configparser
import os
import shlex
import time
from typing import Any
from dataclasses import dataclass, field

from overc.agent.plugin_runner import PluginSpec, shell_argv
from overc.core.schedule import check_schedule, typical_interval, zone

MAX_PERIOD = 31_536_000
DEFAULT_CONCURRENCY = 16
DEFAULT_SPOOL_SIZE = 100_000

#: Every key each section may hold (1.x had server, my-name, my-key; period, command, max-lag).
OVERC_KEYS = ("server", "my-name", "my-key", "spool", "spool-size", "concurrency", "loglevel")
SERVICE_KEYS = ("period", "command", "max-lag", "timeout", "shell", "schedule", "tz")

#: ``[overc] loglevel`` values, as in the server's config.
LOGLEVELS = ("debug", "info", "warn", "warning", "error", "critical")
DEFAULT_LOGLEVEL = "info"

_TRUE = {"1", "yes", "true", "on"}
_FALSE = {"0", "no", "false", "off"}


class ConfigError(Exception):
    """One readable line: ``FILE: [SECTION] KEY: what is wrong``."""

    def __init__(self, path: str, section: str | None, key: str | None, message: str) -> None:
        self.path, self.section, self.key, self.message = path, section, key, message
        where = path
        if section is not None:
            where += f": [{section}]"
        if key is not None:
            where += f" {key}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class ServiceConfig:
    """One ``[service:NAME]`` section."""

    name: str
    period: int
    command: str
    argv: tuple[str, ...]
    cwd: str
    max_lag: float | None = None
    timeout: float | None = None
    shell: bool = False
    #: SPEC 9: run at the times of a cron schedule (in ``tz``) instead of every period.
    schedule: str | None = None
    tz: str | None = None

    @property
    def effective_timeout(self) -> float:
        """``timeout`` when set, else the period (SPEC 7)."""
        return self.timeout if self.timeout is not None else float(self.period)

    def plugin_spec(self) -> PluginSpec:
        return PluginSpec(self.argv, self.cwd, self.effective_timeout, self.command, own_group=self.shell)


@dataclass(frozen=True)
class MonitorConfig:
    """The whole file. ``server``/``name``/``key`` may be empty when given on the command line."""

    path: str
    server: str | None
    name: str | None
    key: str | None
    spool: str | None
    spool_size: int = DEFAULT_SPOOL_SIZE
    concurrency: int = DEFAULT_CONCURRENCY
    services: tuple[ServiceConfig, ...] = field(default_factory=tuple)
    loglevel: str = DEFAULT_LOGLEVEL

    @property
    def folder(self) -> str:
        return os.path.dirname(os.path.abspath(self.path))

    def default_spool(self, state_dir: str | None = None) -> str:
        """Where the spool goes when ``spool`` is not set: systemd's StateDirectory, else beside the file."""
        stem = os.path.splitext(os.path.basename(self.path))[0]
        return os.path.join(state_dir or self.folder, f"{stem}.spool")

    def spool_path(self, state_dir: str | None = None) -> str:
        """The spool file: ``spool`` may name a file or an existing folder (then ``<config stem>.spool`` in it)."""
        if self.spool is None:
            return self.default_spool(state_dir)
        if os.path.isdir(self.spool):
            stem = os.path.splitext(os.path.basename(self.path))[0]
            return os.path.join(self.spool, f"{stem}.spool")
        return self.spool


class _Section:
    """Typed access to one section, raising ConfigError that names what is wrong."""

    def __init__(self, path: str, parser: configparser.RawConfigParser, name: str) -> None:
        self.path, self.parser, self.name = path, parser, name

    def error(self, key: str | None, message: str) -> ConfigError:
        return ConfigError(self.path, self.name, key, message)

    def only(self, known: tuple[str, ...]) -> None:
        """Every key of the section is one of ``known``; else an error naming the first stray one.

        Keys inherited from ``[DEFAULT]`` are checked once, against every known key (a shared
        ``period`` there is fine, as it was in 1.x).
        """
        inherited = self.parser.defaults()
        for key in self.parser.options(self.name):
            if key not in known and key not in inherited:
                raise self.error(key, f"unknown key (known: {', '.join(known)})")

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        raw = self.get(key)
        if raw is None:
            return default
        if raw.lower() not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}, got {raw!r}")
        return raw.lower()

    def get(self, key: str, required: bool = False) -> str | None:
        if self.parser.has_option(self.name, key):
            value = self.parser.get(self.name, key).strip()
            if value == "" and required:
                raise self.error(key, "must not be empty")
            return value
        if required:
            raise self.error(key, "is required")
        return None

    def number(self, key: str, kind: type, low: float, high: float | None = None, required: bool = False) -> Any:
        raw = self.get(key, required)
        if raw is None:
            return None
        try:
            value = kind(raw)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise self.error(key, f"must be {what}, got {raw!r}") from None
        if value < low or (high is not None and value > high):
            rng = f"from {_num(low)} to {_num(high)}" if high is not None else f"at least {_num(low)}"
            raise self.error(key, f"must be {rng}, got {raw!r}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        raw = self.get(key)
        if raw is None:
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise self.error(key, f"must be yes or no, got {raw!r}")


def _num(value: float) -> str:
    """``31536000`` rather than ``3.1536e+07`` in messages."""
    return str(int(value)) if float(value).is_integer() else str(value)


def read_config(path: str) -> MonitorConfig:
    """Read and validate a monitor config file; raise ConfigError naming what is wrong."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(path, None, None, f"cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(path, None, None, "is not UTF-8 text") from None
    return parse_config(text, path)


def parse_config(text: str, path: str) -> MonitorConfig:
    """Parse the text of a monitor config that lives at ``path`` (which sets the plugins' cwd)."""
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";",), strict=True)
    parser.optionxform = str.lower  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text, source=path)
    except configparser.DuplicateSectionError as e:
        raise ConfigError(path, e.section, None, f"section appears twice (line {e.lineno})") from None
    except configparser.DuplicateOptionError as e:
        raise ConfigError(path, e.section, e.option, f"key appears twice (line {e.lineno})") from None
    except configparser.MissingSectionHeaderError as e:
        raise ConfigError(path, None, None, f"line {e.lineno}: a key outside of any [section]") from None
    except configparser.Error as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(path, None, None, first) from None

    folder = os.path.dirname(os.path.abspath(path))
    server = name = key = spool = None
    spool_size, concurrency, loglevel = DEFAULT_SPOOL_SIZE, DEFAULT_CONCURRENCY, DEFAULT_LOGLEVEL
    if parser.has_section("overc"):
        s = _Section(path, parser, "overc")
        s.only(OVERC_KEYS)
        server, name, key = s.get("server"), s.get("my-name"), s.get("my-key")
        if name is not None and not 1 <= len(name) <= 64:
            raise s.error("my-name", "must be 1 to 64 characters")
        if key is not None and not 1 <= len(key) <= 128:
            raise s.error("my-key", "must be 1 to 128 characters")
        spool = s.get("spool")
        if spool is not None:
            spool = os.path.join(folder, os.path.expanduser(spool)) if spool else None
        spool_size = s.number("spool-size", int, 1) or DEFAULT_SPOOL_SIZE
        concurrency = s.number("concurrency", int, 1, 10_000) or DEFAULT_CONCURRENCY
        loglevel = s.choice("loglevel", LOGLEVELS, DEFAULT_LOGLEVEL)

    for shared in parser.defaults():
        if shared not in OVERC_KEYS + SERVICE_KEYS:
            raise ConfigError(path, "DEFAULT", shared, f"unknown key (known: {', '.join(OVERC_KEYS + SERVICE_KEYS)})")
    services = []
    for section in parser.sections():
        kind, colon, service_name = section.partition(":")
        if not colon:
            continue  # [overc], and plain sections 1.x ignored too
        if kind != "service":
            raise ConfigError(path, section, None, f"unknown section type {kind!r} (expected [service:NAME])")
        services.append(_service(_Section(path, parser, section), service_name, folder))
    if not services:
        raise ConfigError(path, None, None, "no [service:NAME] sections: nothing to monitor")
    return MonitorConfig(path, server, name, key, spool, spool_size, concurrency, tuple(services), loglevel)


def _service(s: _Section, name: str, folder: str) -> ServiceConfig:
    if not 1 <= len(name) <= 64:
        raise s.error(None, "service name must be 1 to 64 characters")
    s.only(SERVICE_KEYS)
    schedule, tz = _schedule(s)
    period = s.number("period", int, 1, MAX_PERIOD, required=schedule is None)
    if period is None:  # a scheduled service: its typical interval is the period it sends
        assert schedule is not None
        period = typical_interval(schedule, tz or "UTC", time.time())
    command = s.get("command", required=True)
    assert command is not None
    max_lag = s.number("max-lag", float, 0)
    timeout = s.number("timeout", float, 0.001)
    shell = s.boolean("shell", False)
    if shell:
        argv = shell_argv(command)
    else:
        try:
            argv = tuple(shlex.split(command))
        except ValueError as e:
            raise s.error("command", f"cannot split it like a shell would: {e}") from None
        if not argv:
            raise s.error("command", "must not be empty")
    return ServiceConfig(name, period, command, argv, folder, max_lag, timeout, shell,
                         schedule, tz)


def _schedule(s: _Section) -> tuple[str | None, str | None]:
    """``schedule`` (five cron fields) and ``tz`` (IANA zone, default UTC) of a service."""
    raw, tz = s.get("schedule"), s.get("tz")
    if raw is None:
        if tz is not None:
            raise s.error("tz", "is only meaningful with a schedule")
        return None, None
    try:
        schedule = check_schedule(raw)
    except ValueError as e:
        raise s.error("schedule", str(e)) from None
    try:
        zone(tz or "UTC")
    except ValueError as e:
        raise s.error("tz", str(e)) from None
    return schedule, tz or "UTC"


def peek_identity(path: str) -> tuple[str | None, str | None, str | None]:
    """Best effort ``[overc] server, my-name, my-key`` of a file that failed validation.

    Used only to send the ``Monitoring failure`` alert about a broken config; never raises.
    """
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";",), strict=False)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_string(f.read(), source=path)

        def get(key: str) -> str | None:
            return parser.get("overc", key).strip() if parser.has_option("overc", key) else None

        return get("server"), get("my-name"), get("my-key")
    except (OSError, UnicodeDecodeError, configparser.Error):
        return None, None, None
