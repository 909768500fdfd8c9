"""Durations as people write them in config (``90d``, ``15m``) and the grace after a period."""
from __future__ import annotations

import re
from dataclasses import dataclass

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Grace:
    """Slack after a period before a service counts as missing: seconds or a fraction."""

    seconds: float | None = None
    fraction: float | None = 0.10

    def for_period(self, period: float) -> float:
        value = self.seconds if self.seconds is not None else period * (self.fraction or 0.0)
        return max(1.0, value)


def parse_duration(text: str) -> float:
    """``90d``, ``12h``, ``30m``, ``45s`` or plain seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (like 30s, 15m, 12h, 90d)")
    return float(match.group(1)) * _UNITS[match.group(2).lower()]


def parse_grace(text: str) -> Grace:
    """``10%`` of the period, or a duration like ``30s``."""
    text = text.strip()
    if text.endswith("%"):
        try:
            percent = float(text[:-1])
        except ValueError:
            raise ValueError(f"{text!r} is not a percentage like 10%") from None
        if not 0 <= percent <= 1000:
            raise ValueError("a percentage from 0% to 1000%")
        return Grace(seconds=None, fraction=percent / 100.0)
    return Grace(seconds=parse_duration(text), fraction=None)
