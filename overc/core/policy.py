"""Per-service settings (SPEC section 10): attempts, flapping thresholds, the parent service.

Three sources, the first that sets a value wins: the report itself, the first matching
``[policy:<name>]`` section of the server config (per key, in file order), the defaults.
Pure functions: the config and the ingest store call them; nothing here reads files or rows.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping, Sequence

DEFAULT_ATTEMPTS = 1
MAX_ATTEMPTS = 100
DEFAULT_FLAPPING = "30/25"
FLAPPING_OFF = "off"
#: The keys a ``[policy:<name>]`` section may hold.
POLICY_KEYS = ("servers", "services", "attempts", "flapping", "depends-on")
#: Flapping measure: the last 21 reports make 20 transitions, weighted 0.80 (oldest) to 1.18.
TRANSITIONS = 20
_WEIGHTS = tuple(0.80 + 0.02 * i for i in range(TRANSITIONS))  # oldest first
_MASK = (1 << TRANSITIONS) - 1


def parse_attempts(value: object) -> int:
    """A whole number from 1 to 100 (ValueError otherwise); numeric strings are accepted."""
    if isinstance(value, bool):
        raise ValueError(f"must be a whole number from 1 to {MAX_ATTEMPTS}")
    if isinstance(value, str):
        text = value.strip()
        if not text.isdigit():
            raise ValueError(f"must be a whole number from 1 to {MAX_ATTEMPTS}")
        value = int(text)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= MAX_ATTEMPTS:
        raise ValueError(f"must be a whole number from 1 to {MAX_ATTEMPTS}")
    return value


def parse_flapping(value: object) -> str:
    """``"30/25"`` (high/low percent, 0 < low <= high <= 100) or ``"off"``; canonical form."""
    message = 'must be "high/low" percent (like "30/25", low <= high) or "off"'
    if not isinstance(value, str):
        raise ValueError(message)
    text = value.strip().lower()
    if text == FLAPPING_OFF:
        return FLAPPING_OFF
    high_text, sep, low_text = text.partition("/")
    try:
        high, low = float(high_text), float(low_text)
    except ValueError:
        raise ValueError(message) from None
    if not sep or not 0 < low <= high <= 100:
        raise ValueError(message)
    return f"{high:g}/{low:g}"


@lru_cache(maxsize=256)
def flapping_thresholds(setting: str) -> tuple[float, float] | None:
    """``(high, low)`` of a canonical flapping setting; None when flapping detection is off."""
    if setting == FLAPPING_OFF:
        return None
    high, _, low = setting.partition("/")
    return float(high), float(low)


def push_transition(bits: int, changed: bool) -> int:
    """The last 20 transitions as bits, newest in bit 0: shift in one more."""
    return ((bits << 1) | int(changed)) & _MASK


def flapping_value(bits: int) -> float:
    """Icinga's weighted measure in percent: 100 × sum(weights of changes) / 20.

    Bit 0 is the newest transition (weight 1.18), bit 19 the oldest (0.80); transitions a
    young service has not had yet are zeros, so they count as no change.
    """
    total = 0.0
    while bits:  # only the set bits: a steady service (no bit) costs nothing
        lowest = bits & -bits
        total += _WEIGHTS[TRANSITIONS - lowest.bit_length()]
        bits ^= lowest
    return round(100.0 * total / TRANSITIONS, 1)


@dataclass(frozen=True)
class Overrides:
    """Settings one source sets; None leaves the key to the next source."""

    attempts: int | None = None
    flapping: str | None = None
    depends_on: str | None = None


#: A report that sets nothing: one shared instance, so caches keyed on it compare by identity.
NO_OVERRIDES = Overrides()


@dataclass(frozen=True)
class Policy:
    """One ``[policy:<name>]`` section: filters (empty: every name) and the values it sets."""

    name: str
    servers: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    values: Overrides = NO_OVERRIDES

    def matches(self, server: str, service: str) -> bool:
        return (
            (not self.servers or any(fnmatch.fnmatchcase(server, p) for p in self.servers))
            and (not self.services
                 or any(fnmatch.fnmatchcase(service, p) for p in self.services))
        )


@dataclass(frozen=True)
class Settings:
    """The effective settings of a service, and where each came from."""

    attempts: int = DEFAULT_ATTEMPTS
    flapping: str = DEFAULT_FLAPPING
    depends_on: str | None = None
    #: ``key -> "report" | "policy:<name>" | "default"`` for attempts, flapping, depends_on.
    sources: tuple[tuple[str, str], ...] = ()


class PolicyError(ValueError):
    """A bad key or value in a policy section: ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _globs(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def parse_policy(name: str, items: Mapping[str, str]) -> Policy:
    """A policy section's keys into a :class:`Policy`; PolicyError names the bad key."""
    for key in items:
        if key not in POLICY_KEYS:
            raise PolicyError(key, f"unknown key (known: {', '.join(POLICY_KEYS)})")
    attempts = flapping = depends_on = None
    try:
        if "attempts" in items:
            attempts = parse_attempts(items["attempts"])
    except ValueError as e:
        raise PolicyError("attempts", str(e)) from None
    try:
        if "flapping" in items:
            flapping = parse_flapping(items["flapping"])
    except ValueError as e:
        raise PolicyError("flapping", str(e)) from None
    if "depends-on" in items:
        depends_on = items["depends-on"].strip()
        if not depends_on or len(depends_on) > 64:
            raise PolicyError("depends-on", "must be a service name of 1 to 64 characters")
    return Policy(name, _globs(items.get("servers", "")), _globs(items.get("services", "")),
                  Overrides(attempts, flapping, depends_on))


def resolve(report: Overrides, policies: Sequence[Policy], server: str, service: str
            ) -> Settings:
    """The effective settings: the report, then the first matching policy per key, then the
    defaults."""
    matching = [p for p in policies if p.matches(server, service)]
    chosen: dict[str, tuple[object, str]] = {}
    for key, default in (("attempts", DEFAULT_ATTEMPTS), ("flapping", DEFAULT_FLAPPING),
                         ("depends_on", None)):
        value = getattr(report, key)
        if value is not None:
            chosen[key] = (value, "report")
            continue
        for policy in matching:
            value = getattr(policy.values, key)
            if value is not None:
                chosen[key] = (value, f"policy:{policy.name}")
                break
        else:
            chosen[key] = (default, "default")
    attempts, flapping, depends_on = (chosen[k][0] for k in ("attempts", "flapping",
                                                              "depends_on"))
    assert isinstance(attempts, int) and isinstance(flapping, str)
    assert depends_on is None or isinstance(depends_on, str)
    return Settings(attempts, flapping, depends_on,
                    tuple((key, source) for key, (_, source) in chosen.items()))


