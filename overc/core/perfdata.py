"""Nagios plugin output: status text plus performance data.

The format (Nagios plugin guidelines): the first line is the status text; text after the first
``|`` of the first line, and after a ``|`` on any later line, is perfdata:
``'label'=value[UOM];[warn];[crit];[min];[max]``, space separated, labels quoted with ``'`` when
they hold spaces (``''`` inside a quoted label is one quote). Whatever does not parse stays in
the text: a client never gets a 400 for it and nothing it sent disappears.
"""
from __future__ import annotations

import math
from functools import lru_cache
import re
from dataclasses import dataclass

_VALUE = re.compile(r"^([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)([^;\d\s][^;]*)?$")
_NUMBER = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$")
MAX_LABEL = 255
MAX_THRESHOLD = 64
MAX_UOM = 32


@dataclass(frozen=True)
class Metric:
    label: str
    value: float
    uom: str = ""
    warn: str = ""
    crit: str = ""
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class PluginOutput:
    text: str
    metrics: tuple[Metric, ...] = ()


def _tokens(text: str) -> list[str] | None:
    """Split perfdata on spaces, keeping quoted labels whole; None if a quote never closes."""
    tokens, i, n = [], 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        if text[i] == "'":
            i += 1
            while True:
                j = text.find("'", i)
                if j < 0:
                    return None
                if j + 1 < n and text[j + 1] == "'":
                    i = j + 2
                    continue
                i = j + 1
                break
        while i < n and not text[i].isspace():
            i += 1
        tokens.append(text[start:i])
    return tokens


def _number(text: str) -> float | None:
    if not text or not _NUMBER.match(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def parse_metric(token: str) -> Metric | None:
    """One ``label=value[UOM];warn;crit;min;max`` item, or None if it is not one."""
    if token.startswith("'"):
        end = 1
        while True:
            end = token.find("'", end)
            if end < 0:
                return None
            if token[end + 1:end + 2] == "'":
                end += 2
                continue
            break
        label = token[1:end].replace("''", "'")
        rest = token[end + 1:]
        if not rest.startswith("="):
            return None
        rest = rest[1:]
    else:
        label, sep, rest = token.partition("=")
        if not sep:
            return None
    if not label or len(label) > MAX_LABEL:
        return None
    fields = rest.split(";")
    if len(fields) > 5:
        return None
    match = _VALUE.match(fields[0])
    if not match:
        return None
    value = float(match.group(1))
    if not math.isfinite(value):
        return None
    uom = (match.group(2) or "").strip()
    if len(uom) > MAX_UOM:
        return None
    fields += [""] * (5 - len(fields))
    warn, crit = fields[1].strip(), fields[2].strip()
    if len(warn) > MAX_THRESHOLD or len(crit) > MAX_THRESHOLD:
        return None
    low, high = fields[3].strip(), fields[4].strip()
    minimum, maximum = _number(low), _number(high)
    if (low and minimum is None) or (high and maximum is None):
        return None
    return Metric(label, value, uom, warn, crit, minimum, maximum)


def parse_perfdata(text: str) -> tuple[list[Metric], list[str]]:
    """Parse a perfdata string: ``(metrics, tokens that did not parse)``."""
    tokens = _tokens(text)
    if tokens is None:
        return [], [text.strip()] if text.strip() else []
    metrics, bad = [], []
    for token in tokens:
        metric = parse_metric(token)
        if metric is None:
            bad.append(token)
        else:
            metrics.append(metric)
    return metrics, bad


#: Outputs up to this long are remembered (:func:`parse_plugin_output`): agents resend the same
#: output again and again ("OK - 12 items | items=12"); 4,096 of them cost at most ~10 MiB.
CACHED_OUTPUT = 1024


def parse_plugin_output(info: str) -> PluginOutput:
    """:func:`split_plugin_output`, parsed once per distinct short output (the result is
    immutable, so sharing it between reports is safe)."""
    if "|" not in info:
        return PluginOutput(info)
    if len(info) > CACHED_OUTPUT:
        return split_plugin_output(info)
    return _cached_output(info)


@lru_cache(maxsize=4096)
def _cached_output(info: str) -> PluginOutput:
    return split_plugin_output(info)


def split_plugin_output(info: str) -> PluginOutput:
    """Split plugin output into the text to show and its metrics.

    A perfdata section (after ``|`` on the first line; after the first ``|`` of the later lines,
    to the end) leaves the text only when all of it parsed; otherwise the unparsed items stay
    visible after a `` | `` so nothing the plugin said is lost.
    """
    if "|" not in info:
        return PluginOutput(info)
    first, newline, later = info.partition("\n")
    metrics: list[Metric] = []

    def take(text_part: str, perf: str) -> str:
        found, bad = parse_perfdata(perf)
        metrics.extend(found)
        if bad:
            return text_part.rstrip() + " | " + " ".join(bad)
        return text_part.rstrip()

    head, sep, perf = first.partition("|")
    text = take(head, perf) if sep else first
    if newline:
        long_text, sep, perf = later.partition("|")
        long_text = take(long_text, perf) if sep else later
        if long_text.strip():
            text = text + "\n" + long_text.rstrip("\n")
    return PluginOutput(text, tuple(metrics))
