"""Pure presentation logic: state ranking, run collapsing, timelines and chart geometry.

Kept free of Klein, Jinja and the database so the rules test fast and exhaustively. Chart
geometry and human units live in :mod:`overc.ui.views_charts` (re-exported here).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from operator import itemgetter
from typing import Any, Iterable, Sequence

from markupsafe import Markup

from overc.core.maintenance import SILENCE, Window, WindowIndex, server_cover

from overc.ui.views_charts import (  # noqa: F401 - the pages use them through this module
    Chart, ago_labels, chart, chart_columns, chart_series, fit_window, human)

#: Display rank: worst first. "STALE" is a service whose deadline passed (not a reported FAIL).
RANK = {"FAIL": 0, "STALE": 1, "WARN": 2, "UNK": 3, "OK": 4, None: 5}
ICON = {"OK": "✓", "WARN": "▲", "FAIL": "✖", "UNK": "?", "STALE": "◔", None: "·"}
STATES = ("FAIL", "STALE", "WARN", "UNK", "OK")


def display_state(state: str | None, stale: bool) -> str | None:
    """What a tile shows: stale wins over the last reported state (it is newer news)."""
    return "STALE" if stale else state


def rank(state: str | None) -> int:
    return RANK.get(state, 3)


def service_rank(state: str | None, stale: bool) -> int:
    """Where a service sorts: a stale FAIL is still a FAIL (the worse of the two)."""
    return min(RANK["STALE"], rank(state)) if stale else rank(state)


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
    #: The server's newest API alerts (``overcli alert``), newest first.
    api_alerts: list = field(default_factory=list)
    #: SPEC 10.3: the whole server stopped pushing: one banner, its tiles dimmed.
    offline: bool = False
    #: SPEC 11: a window running now over the whole server (its own or a glob window), and
    #: when that occurrence ends.
    maintenance: Window | None = None
    maintenance_until: float | None = None


ACK_MARK = '<span class="ackm" aria-hidden="true">✔</span>'
SILENCE_MARK = '<span class="silm" aria-hidden="true">⊘</span>'
#: A service in a maintenance window: the mark says it in a word (few tiles carry it).
MAINTENANCE_MARK = '<span class="mntm" aria-hidden="true">⚒ in maintenance</span>'
_TILE_PARTS: dict[tuple[str | None, bool, str | None, bool, bool],
                  tuple[str, str, str, str]] = {}


def _tile_parts(shown: str | None, acked: bool, last: str | None = None,
                silenced: bool = False, maintenance: bool = False
                ) -> tuple[str, str, str, str]:
    """The constant pieces of a tile for one (state, acknowledged, last state if stale,
    silenced, in maintenance), built once. A stale tile keeps its last reported state visible:
    ``◔ STALE, last FAIL``; acknowledged, silenced and maintenance tiles carry a mark and say
    so in words. A tile is one link (no list item around it, no icon element: the state's
    icon is the stylesheet's ``.tile.st-*::before``, hidden from screen readers; no hidden
    text element: the link's ``aria-label`` is its name and the state in words); live
    updates know it by its ``href``. 10,000 tiles: each element less is 10,000 fewer for the
    browser to parse, style and keep. The pieces go around ``id``, ``name``, ``name``."""
    key = (shown, acked, last, silenced, maintenance)
    parts = _TILE_PARTS.get(key)
    if parts is None:
        state = escape(shown or "NONE")
        text = escape(shown or "NONE")
        if last:
            text += f", last {escape(last)}"
        css = escape((shown or "none").lower())
        if last:
            css += f" last-{escape(last.lower())}"
        last_icon = (f'<span class="ic last st-{escape(last.lower())}" aria-hidden="true">'
                     f'{escape(ICON.get(last, "?"))}</span>') if last else ""
        said = (", acknowledged" if acked else "") + (", silenced" if silenced else "")
        # the name begins with what the tile shows in words ("app in maintenance")
        shown_words = ", in maintenance" if maintenance else ""
        marks = (" acked" if acked else "") + (" silenced" if silenced else "") \
            + (" maint" if maintenance else "")
        parts = (
            f'<a class="tile st-{css}{marks}" href="/ui/service/',
            f'" data-state="{state}"' + (f' data-last="{escape(last)}"' if last else "")
            + ' aria-label="',
            f'{shown_words}, {text}{said}">{last_icon}',
            (ACK_MARK if acked else "") + (SILENCE_MARK if silenced else "")
            + (MAINTENANCE_MARK if maintenance else "") + "</a>",
        )
        _TILE_PARTS[key] = parts
    return parts


#: Overview count chips, worst first; NONE counts the services with no report yet.
COUNTED = STATES + ("NONE",)


def overview_cards(servers: Iterable, now: float, windows: Iterable[Window] = ()
                   ) -> tuple[list[Card], dict[str, int]]:
    """Overview cards, problems first (worst tile, then name), and the count per state.

    Counting rule (the page states it): every service counts under its last reported state
    (NONE before its first report), and a stale one counts under STALE too, so a FAIL that
    went stale stays in the FAIL count; a stale service ranks as the worse of STALE and its
    last state.

    The tiles are the page's hot loop (10,000 per render): they are HTML built here from
    constant pieces with every database string escaped (``html.escape``, quotes included),
    because a Jinja loop spent ~2 us per escaped expression, 12 per tile. A tile carries no
    info excerpt: varied plugin output was two thirds of the compressed page, so the page
    script fetches a card's excerpts when one of its tiles is hovered or focused
    (:mod:`overc.ui.tile_tips`). ``servers`` are
    :class:`overc.storage.read_servers.OverviewServer`; a tile is ``(id, name, state, info,
    stale, acked[, silenced_until])``.

    ``windows`` (SPEC 11) are the maintenance windows not over yet; those running at ``now``
    mark the card (a window over the whole server) or the tiles (one over some services).
    Silences are windows too but keep their own mark (the ``silenced_until`` columns). The
    cost is the windows that apply: a server none covers pays one dictionary lookup plus the
    glob windows, its tiles nothing.
    """
    index = WindowIndex((w for w in windows if w.source != SILENCE), now)
    counts = {s: 0 for s in COUNTED}
    cards = []
    get_rank = RANK.get
    stale_rank = RANK["STALE"]
    by_rank_name = itemgetter(0, 1)
    for server in servers:
        cover = server_cover(index, server.id, server.name) if index else None
        some = cover.service if cover is not None and cover.some_services else None
        rows = []
        for tile in server.tiles:
            service_id, name, state, _info, stale, acked = tile[:6]
            silenced = len(tile) > 6 and tile[6] is not None and tile[6] > now
            maint = some is not None and some(service_id, name) is not None
            counts[state if state in counts else "NONE"] += 1
            if stale:
                counts["STALE"] += 1
                order = min(stale_rank, get_rank(state, 3))
                rows.append((order, name, "STALE", service_id, bool(acked), state,
                             silenced, maint))
            else:
                rows.append((get_rank(state, 3), name, state, service_id, bool(acked),
                             None, silenced, maint))
        rows.sort(key=by_rank_name)
        html = []
        for _, name, shown, service_id, acked, last, silenced, maint in rows:
            head, before_label, before_name, tail = _tile_parts(shown, acked, last, silenced,
                                                                maint)
            name_html = escape(name)
            html.append(f'{head}{service_id}{before_label}{name_html}{before_name}{name_html}'
                        f'{tail}')
        silenced_server = bool(server.silenced_until and server.silenced_until > now)
        whole = cover.whole if cover is not None else None
        running = whole.occurrence(now) if whole is not None else None
        cards.append(Card(server.id, server.name, rows[0][0] if rows else 5, len(rows),
                          Markup("".join(html)), silenced_server, server.silence_reason,
                          offline=bool(getattr(server, "offline", False)),
                          maintenance=whole, maintenance_until=running[1] if running else None))
    cards.sort(key=lambda c: (c.worst, c.name))
    return cards, counts


def attach_api_alerts(cards: list[Card], alerts: Iterable, per_server: int = 3) -> None:
    """Give each card its newest API alerts (``overcli alert``), at most ``per_server``."""
    by_id = {card.id: card for card in cards}
    for alert in alerts:  # newest first
        card = by_id.get(alert.server_id)
        if card is not None and len(card.api_alerts) < per_server:
            card.api_alerts.append(alert)


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


@dataclass(frozen=True)
class Delivery:
    """One channel's delivery of an alert, as the alert tables show it."""

    channel: str | None  # None: only a count per status is known (an older read model)
    status: str
    attempts: int | None = None
    last_error: str | None = None
    count: int = 1


def deliveries(alert: Any) -> list[Delivery]:
    """The adapter between the alert read model and the tables' Delivery column.

    Prefers ``alert.deliveries``: one item per notification (object or dict) with ``channel``,
    ``status``, ``attempts`` and ``last_error``; falls back to ``alert.delivery``, the count
    per status, which names no channel.
    """
    items = getattr(alert, "deliveries", None)
    if items:
        out = []
        for item in items:
            get = item.get if isinstance(item, dict) else (
                lambda name, item=item: getattr(item, name, None))
            attempts = get("attempts")
            out.append(Delivery(str(get("channel") or "?"), str(get("status") or "?"),
                                int(attempts) if attempts is not None else None,
                                get("last_error") or None))
        return sorted(out, key=lambda d: (d.channel or "", d.status))
    counts = getattr(alert, "delivery", None) or {}
    return [Delivery(None, str(status), count=int(n)) for status, n in sorted(counts.items())]
