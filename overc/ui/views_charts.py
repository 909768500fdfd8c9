"""Chart geometry and human units: pure functions, tested without a browser.

Charts are server-rendered SVG: 10,000 points are reduced to a min/max envelope per pixel column
(in SQL, :func:`overc.storage.read_service._txn_perfdata_series`), so the browser draws at most a
few hundred segments whatever the history length. A sparse series also gets a marker per bucket,
so one report is a visible dot rather than a one-point line.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence

#: Nagios byte units, as multiples of a byte (plugins mean KiB by "KB").
BYTE_UNITS = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}
BYTE_NAMES = (("TiB", 1024 ** 4), ("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024),
              ("B", 1))
#: Nagios time units, as multiples of a second.
TIME_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
TIME_NAMES = (("h", 7200, 3600), ("min", 120, 60), ("s", 1, 1), ("ms", 1e-3, 1e-3),
              ("µs", 0.0, 1e-6))
SI_NAMES = (("T", 1e12, 1e12), ("G", 1e9, 1e9), ("M", 1e6, 1e6), ("k", 1e3, 1e4))  # name, unit, from
#: Steps of the time axis, shortest first: a chart of minutes gets minute ticks.
TIME_STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800)
#: Up to this many buckets a series also gets a marker per bucket.
SPARSE = 60
PAD_LEFT, PAD_RIGHT, PAD_BOTTOM, PAD_TOP = 56, 4, 18, 6
LABEL_GAP = 12  # user units between two threshold labels' baselines (10 px text, 3 px halo)


def display_unit(uom: str | None, magnitude: float) -> tuple[float, str]:
    """``(divisor, suffix)`` to show values near ``magnitude`` (in ``uom``) humanly.

    ``value / divisor`` then ``suffix``: bytes in B/KiB/MiB/GiB/TiB, durations in
    µs/ms/s/min/h, ``%`` as is, other large numbers with k/M/G/T.
    """
    uom = "" if uom == "c" else (uom or "")  # a counter is a plain number
    size = abs(magnitude)
    if uom.upper() in BYTE_UNITS:
        size_of = BYTE_UNITS[uom.upper()]
        for name, bytes_ in BYTE_NAMES:
            if size * size_of >= bytes_:
                return bytes_ / size_of, name
        return 1 / size_of, "B"
    if uom in TIME_UNITS:
        base = TIME_UNITS[uom]
        for name, from_, unit in TIME_NAMES:
            if size * base >= from_:
                return unit / base, name
        return 1 / base, "s"
    if uom in ("%", ""):
        for name, unit, from_ in SI_NAMES:
            if uom == "" and size >= from_:
                return unit, name
        return 1.0, uom
    for name, unit, from_ in SI_NAMES:
        if size >= from_:
            return unit, f"{name}{uom}"
    return 1.0, uom


def short_number(value: float) -> str:
    """Three or four significant digits, no exponent: ``0.012``, ``1.5``, ``42.1``, ``815``."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    size = abs(value)
    digits = 0 if size >= 100 else 1 if size >= 10 else 2 if size >= 0.1 else 4
    text = f"{value:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def with_unit(number: str, suffix: str) -> str:
    if not suffix:
        return number
    return f"{number}{suffix}" if suffix == "%" else f"{number} {suffix}"


def human(value: float, uom: str | None) -> str:
    """One value with its unit, humanly: ``24.8 GiB``, ``12 ms``, ``2.5 min``, ``85%``."""
    divisor, suffix = display_unit(uom, value)
    return with_unit(short_number(value / divisor), suffix)


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    ticks, value = [], first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


def time_step(span: float, most: int = 8) -> int:
    """The shortest tick step that puts at most ``most`` ticks across ``span`` seconds."""
    return next((s for s in TIME_STEPS if span / s <= most), TIME_STEPS[-1])


def label_baselines(ys: Sequence[float], top: float, bottom: float,
                    gap: float = LABEL_GAP) -> list[float]:
    """Baselines for labels drawn just above lines at ``ys``: inside [top + gap, bottom] and at
    least ``gap`` apart, each as near its line as that allows."""
    order = sorted(range(len(ys)), key=lambda i: ys[i])
    placed = [0.0] * len(ys)
    previous = None
    for i in order:  # top to bottom: push down what would overlap the label above
        y = max(ys[i] - 3, top + gap - 1)
        if previous is not None:
            y = max(y, previous + gap)
        placed[i] = y
        previous = y
    following = None
    for i in reversed(order):  # bottom to top: pull back inside the box
        y = min(placed[i], bottom)
        if following is not None:
            y = min(y, following - gap)
        placed[i] = round(y, 1)
        following = y
    return placed


def _threshold_value(text: str | None) -> float | None:
    """The upper bound of a Nagios range (``90``, ``10:90``, ``~:90``); None when not numeric."""
    if not text:
        return None
    part = text.rsplit(":", 1)[-1].lstrip("@")
    try:
        value = float(part)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass
class Chart:
    label: str
    uom: str
    width: int
    height: int
    line: str  # SVG polyline points of the average per column
    band: str  # SVG polygon points of the min/max envelope
    dots: list[tuple[float, float]]  # a marker per bucket when the series is sparse
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str, float]]
    thresholds: list[tuple[str, float, str, float]]  # (kind, line y, text, label baseline)
    last: float
    low: float
    high: float
    count: int
    last_text: str = ""
    low_text: str = ""
    high_text: str = ""


def chart_columns(width: int = 720) -> int:
    """How many time buckets a chart of ``width`` draws (one per 2 px of plot)."""
    return max(1, int((width - PAD_LEFT - PAD_RIGHT) / 2))


def chart(points: Sequence, start: float, end: float, width: int = 720,
          height: int = 140) -> Chart:
    """Geometry of one perfdata metric: points are PerfPoints of one label, oldest first.

    The page reduces in SQL (:func:`chart_series`); this is the same geometry from raw points.
    """
    columns = chart_columns(width)
    scale = columns / ((end - start) or 1.0)  # as the SQL of _txn_perfdata_series
    buckets: dict[int, list] = {}
    for p in points:
        col = min(columns - 1, max(0, int((p.time - start) * scale)))
        b = buckets.get(col)
        if b is None:
            buckets[col] = [col, p.value, p.value, p.value, 1]
        else:
            b[1] = min(b[1], p.value)
            b[2] = max(b[2], p.value)
            b[3] += p.value
            b[4] += 1
    return chart_series(points[-1], [tuple(buckets[c]) for c in sorted(buckets)], start, end,
                        width, height)


def chart_series(last, buckets: Sequence[tuple[int, float, float, float, int]], start: float,
                 end: float, width: int = 720, height: int = 140) -> Chart:
    """Geometry of one metric from ``(column, low, high, sum, count)`` buckets in column order
    (``chart_columns(width)`` of them across [start, end]); ``last`` is the newest PerfPoint."""
    uom = last.uom or ""
    plot_w, plot_h = width - PAD_LEFT - PAD_RIGHT, height - PAD_BOTTOM - PAD_TOP
    columns = chart_columns(width)
    span = (end - start) or 1.0
    low = min(b[1] for b in buckets)
    high = max(b[2] for b in buckets)
    count = sum(b[4] for b in buckets)
    warn = _threshold_value(last.warn)
    crit = _threshold_value(last.crit)
    bottom_v = min(low, 0.0) if low >= 0 else low
    top_v = max([high] + [v for v in (warn, crit) if v is not None])
    if last.max is not None and last.max >= top_v and last.max <= top_v * 1.5:
        top_v = last.max
    if top_v == bottom_v:
        top_v = bottom_v + (abs(bottom_v) or 1.0)
    top_v += (top_v - bottom_v) * 0.05

    def y(v: float) -> float:
        return round(PAD_TOP + plot_h - (v - bottom_v) / (top_v - bottom_v) * plot_h, 1)

    def x(col: int) -> float:
        return round(PAD_LEFT + (col + 0.5) * plot_w / columns, 1)

    line, upper, lower = [], [], []
    dots: list[tuple[float, float]] = []
    for col, b_low, b_high, total, n in buckets:
        xc, yc = x(col), y(total / n)
        line.append(f"{xc},{yc}")
        upper.append(f"{xc},{y(b_high)}")
        lower.append(f"{xc},{y(b_low)}")
        if len(buckets) <= SPARSE:
            dots.append((xc, yc))
    band = " ".join(upper + list(reversed(lower))) if len(buckets) > 1 else ""
    divisor, suffix = display_unit(uom, max(abs(bottom_v), abs(top_v)))
    y_ticks = [(y(v * divisor), with_unit(short_number(v), suffix))
               for v in nice_ticks(bottom_v / divisor, top_v / divisor)]
    step = time_step(span)
    x_ticks: list[tuple[float, str, float]] = []
    t = math.ceil(start / step) * step
    while t <= end:
        dt = datetime.fromtimestamp(t, timezone.utc)
        text = dt.strftime("%H:%M") if step < 86400 else dt.strftime("%a %d")
        x_ticks.append((round(PAD_LEFT + (t - start) / span * plot_w, 1), text, t))
        t += step
    shown = [(kind, v) for kind, v in (("warn", warn), ("crit", crit))
             if v is not None and bottom_v <= v <= top_v]
    baselines = label_baselines([y(v) for _, v in shown], PAD_TOP, PAD_TOP + plot_h)
    thresholds = [(kind, y(v), human(v, uom), baseline)
                  for (kind, v), baseline in zip(shown, baselines)]
    return Chart(label=last.label, uom=uom, width=width, height=height, line=" ".join(line),
                 band=band, dots=dots, y_ticks=y_ticks, x_ticks=x_ticks, thresholds=thresholds,
                 last=last.value, low=low, high=high, count=count,
                 last_text=human(last.value, uom), low_text=human(low, uom),
                 high_text=human(high, uom))


def fit_window(first: float | None, now: float, longest: float = 86400.0,
               shortest: float = 300.0) -> float:
    """How far back a young service's charts and timeline look: its whole life and a margin,
    at least ``shortest`` (minutes of data fill the box), at most ``longest``.

    ``first`` is its oldest report (None: older than ``longest``, or no report yet).
    """
    if first is None:
        return longest
    age = max(0.0, now - first)
    return min(longest, max(shortest, age * 1.1 + 30))


def ago_labels(span: float) -> tuple[str, str, str]:
    """The timeline's axis: ``("24 h ago", "12 h ago", "now")`` for a day, minutes when young."""
    def text(seconds: float) -> str:
        if seconds >= 7200:
            return f"{short_number(seconds / 3600)} h ago"
        if seconds >= 120:
            return f"{short_number(round(seconds / 60))} min ago"
        return f"{int(seconds)} s ago"

    return text(span), text(span / 2), "now"
