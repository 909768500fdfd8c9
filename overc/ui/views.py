"""Pure presentation logic: state ranking, run collapsing, timelines and chart geometry.

Kept free of Klein, Jinja and the database so the rules test fast and exhaustively. Charts are
server-rendered SVG: 10,000 points are reduced to a min/max envelope per pixel column, so the
browser draws at most a few hundred segments whatever the history length.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from operator import itemgetter
from typing import Iterable, Sequence

from markupsafe import Markup

#: Display rank: worst first. "STALE" is a service whose deadline passed (not a reported FAIL).
RANK = {"FAIL": 0, "STALE": 1, "WARN": 2, "UNK": 3, "OK": 4, None: 5}
ICON = {"OK": "✓", "WARN": "▲", "FAIL": "✖", "UNK": "?", "STALE": "◔", None: "·"}
STATES = ("FAIL", "STALE", "WARN", "UNK", "OK")


def display_state(state: str | None, stale: bool) -> str | None:
    """What a tile shows: stale wins over the last reported state (it is newer news)."""
    return "STALE" if stale else state


def rank(state: str | None) -> int:
    return RANK.get(state, 3)


def is_problem(state: str | None) -> bool:
    return state in ("FAIL", "STALE", "WARN", "UNK")


def ago(now: float, then: float | None) -> str:
    """``12 s ago``, ``5 min ago``, ``3 h ago``, ``2 d ago`` (the browser refreshes these)."""
    if then is None:
        return "never"
    delta = now - then
    future = delta < 0
    delta = abs(delta)
    if delta < 90:
        text = f"{int(delta)} s"
    elif delta < 5400:
        text = f"{int(delta // 60)} min"
    elif delta < 172800:
        text = f"{int(delta // 3600)} h"
    else:
        text = f"{int(delta // 86400)} d"
    return f"in {text}" if future else f"{text} ago"


def utc_text(ts: float | None) -> str:
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


@dataclass
class Card:
    """One server on the overview; ``tiles`` is its services' HTML, worst first."""

    id: int
    name: str
    worst: int
    count: int
    tiles: Markup
    silenced: bool
    silence_reason: str | None


ACK_MARK = '<span class="ackm" aria-hidden="true">✔</span>'
_TILE_PARTS: dict[tuple[str | None, bool], tuple[str, str, str, str]] = {}


def _tile_parts(shown: str | None, acked: bool) -> tuple[str, str, str, str]:
    """The constant pieces of a tile for one (state, acknowledged) pair, built once."""
    parts = _TILE_PARTS.get((shown, acked))
    if parts is None:
        state = escape(shown or "")
        text = escape(shown or "NONE")
        css = escape((shown or "none").lower())
        icon = escape(ICON.get(shown, "?"))
        parts = (
            f'<li><a class="tile st-{css}{" acked" if acked else ""}" href="/ui/service/',
            f'" data-state="{state}" title="{text}{" (acknowledged)" if acked else ""}: ',
            f'"><span class="ic" aria-hidden="true">{icon}</span><span class="nm">',
            f'</span><span class="sr">{text}{", acknowledged" if acked else ""}</span>'
            + (ACK_MARK if acked else "") + "</a></li>",
        )
        _TILE_PARTS[(shown, acked)] = parts
    return parts


def overview_cards(servers: Iterable, now: float) -> tuple[list[Card], dict[str, int]]:
    """Overview cards, problems first (worst tile, then name), and the count per state.

    The tiles are the page's hot loop (10,000 per render): they are HTML built here from
    constant pieces with every database string escaped (``html.escape``, quotes included),
    because a Jinja loop spent ~2 us per escaped expression, 12 per tile. ``servers`` are
    :class:`overc.storage.read_servers.OverviewServer`.
    """
    counts = {s: 0 for s in STATES}
    cards = []
    get_rank = RANK.get
    by_rank_name = itemgetter(0, 1)
    for server in servers:
        rows = []
        for service_id, name, state, info, stale, acked in server.tiles:
            shown = "STALE" if stale else state
            if shown in counts:
                counts[shown] += 1
            rows.append((get_rank(shown, 3), name, shown, service_id, info, bool(acked)))
        rows.sort(key=by_rank_name)
        html = []
        for _, name, shown, service_id, info, acked in rows:
            head, middle, before_name, tail = _tile_parts(shown, acked)
            name_html = escape(name)
            html.append(f'{head}{service_id}" data-name="{name_html.lower()}{middle}'
                        f'{escape(info or "")}{before_name}{name_html}{tail}')
        silenced = bool(server.silenced_until and server.silenced_until > now)
        cards.append(Card(server.id, server.name, rows[0][0] if rows else 5, len(rows),
                          Markup("\n".join(html)), silenced, server.silence_reason))
    cards.sort(key=lambda c: (c.worst, c.name))
    return cards, counts


@dataclass
class Run:
    """Consecutive reports with the same state, newest run first in a history list."""

    state: str
    first: float
    last: float
    count: int
    info: str | None
    items: list = field(default_factory=list)


def collapse_runs(states: Iterable, keep_items: int = 50) -> list[Run]:
    """Fold consecutive equal states (oldest first in) into runs (newest first out).

    Each run keeps its newest ``keep_items`` reports so the page can expand it.
    """
    runs: list[Run] = []
    for row in states:
        if runs and runs[-1].state == row.state:
            run = runs[-1]
            run.last = row.time
            run.count += 1
            run.info = row.info
        else:
            run = Run(row.state, row.time, row.time, 1, row.info)
            runs.append(run)
        run.items.append(row)
        if len(run.items) > keep_items:
            del run.items[0]
    for run in runs:
        run.items.reverse()
    runs.reverse()
    return runs


@dataclass(frozen=True)
class Segment:
    x: float
    width: float
    state: str
    start: float
    end: float


def timeline(states: Sequence, prior, start: float, end: float, width: float,
             stale_from: float | None = None) -> list[Segment]:
    """State segments across [start, end] scaled to ``width``; gaps before any report are blank.

    ``prior`` is the last report before ``start`` (its state covers the window's beginning);
    ``stale_from`` marks the tail after a missed deadline as STALE.
    """
    points: list[tuple[float, str]] = []
    if prior is not None:
        points.append((start, prior.state))
    for row in states:
        if row.time < start:
            continue
        if points and points[-1][1] == row.state:
            continue
        points.append((max(row.time, start), row.state))
    if stale_from is not None and start <= stale_from < end:
        points = [p for p in points if p[0] < stale_from] + [(stale_from, "STALE")]
    scale = width / (end - start) if end > start else 0.0
    segments = []
    for index, (at, state) in enumerate(points):
        stop = points[index + 1][0] if index + 1 < len(points) else end
        if stop <= at:
            continue
        segments.append(Segment(round((at - start) * scale, 2), round((stop - at) * scale, 2),
                                state, at, stop))
    return segments


@dataclass
class Chart:
    label: str
    uom: str
    width: int
    height: int
    line: str  # SVG polyline points of the average per column
    band: str  # SVG polygon points of the min/max envelope
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str, float]]
    thresholds: list[tuple[str, float, str]]  # (kind, y, text)
    last: float
    low: float
    high: float
    count: int


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


def _nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
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


def _number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e6 or abs(value) < 1e-3:
        return f"{value:.3g}"
    return f"{value:,.6g}".replace(",", " ")


def chart_columns(width: int = 720) -> int:
    """How many time buckets a chart of ``width`` draws (one per 2 px of plot)."""
    return max(1, int((width - 56 - 4) / 2))


def chart(points: Sequence, start: float, end: float, width: int = 720,
          height: int = 140, tz_label: str = "UTC") -> Chart:
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
    label = last.label
    uom = last.uom or ""
    pad_left, pad_bottom, pad_top = 56, 18, 6
    plot_w, plot_h = width - pad_left - 4, height - pad_bottom - pad_top
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
        return round(pad_top + plot_h - (v - bottom_v) / (top_v - bottom_v) * plot_h, 1)

    def x(col: int) -> float:
        return round(pad_left + (col + 0.5) * plot_w / columns, 1)

    line, upper, lower = [], [], []
    for col, b_low, b_high, total, n in buckets:
        xc = x(col)
        line.append(f"{xc},{y(total / n)}")
        upper.append(f"{xc},{y(b_high)}")
        lower.append(f"{xc},{y(b_low)}")
    band = " ".join(upper + list(reversed(lower)))
    y_ticks = [(y(v), _number(v)) for v in _nice_ticks(bottom_v, top_v)]
    hours = span / 3600
    step = 3600 * (1 if hours <= 6 else 3 if hours <= 24 else 24)
    x_ticks: list[tuple[float, str, float]] = []
    t = math.ceil(start / step) * step
    while t <= end:
        dt = datetime.fromtimestamp(t, timezone.utc)
        text = dt.strftime("%H:%M") if step < 86400 else dt.strftime("%a %d")
        x_ticks.append((round(pad_left + (t - start) / span * plot_w, 1), text, t))
        t += step
    thresholds = [(kind, y(v), _number(v)) for kind, v in (("warn", warn), ("crit", crit))
                  if v is not None and bottom_v <= v <= top_v]
    return Chart(label=label, uom=uom, width=width, height=height, line=" ".join(line),
                 band=band, y_ticks=y_ticks, x_ticks=x_ticks, thresholds=thresholds,
                 last=last.value, low=low, high=high, count=count)
