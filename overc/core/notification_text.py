"""What a notification says: the 1.x text format, the JSON document and a command's
``OVERC_*`` environment, all made from the same alerts so every channel tells the same story.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Any, Sequence

from overc.core.alerts import OFFLINE, Alert, channel_event
from overc.core.watchdog_rules import silence_of


# C0 and C1 controls, DEL, and the Unicode line and paragraph separators: what a pushing host
# could use to forge lines in the text, break a header or an environment variable (NUL).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char)
    if named is not None:
        return named
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def one_line(text: str) -> str:
    """``text`` safe for one line of the text format, a header or an environment variable:
    control characters become visible escapes (``\\n``, ``\\x00``). Names and messages come
    from pushing hosts; a CR/LF must not forge a line, a NUL must not stop a delivery."""
    return _CONTROL.sub(_escape, text)


def multi_line(text: str) -> str:
    """A plugin's output keeps its lines (``\\r\\n`` counts as one); other controls are escaped."""
    return _CONTROL_BUT_NEWLINE.sub(_escape, text.replace("\r\n", "\n"))


def alert_block(alert: Alert) -> str:
    """One alert in the 1.x text format, byte for byte::

        web1 disk: [service:state/WARN] State changed: "OK" -> "WARN"
        Current: WARN: DISK WARNING - /var 91%

    An ``offline`` alert's service is not in its last state any more: its second line says
    what is known, ``Current: no report for 75 s; last: OK: app back``.
    """
    who = " ".join(one_line(x) for x in (alert.server_name, alert.service_name) if x)
    channel, event = channel_event(alert.kind, alert.severity)
    text = (f"{who}: " if who else "") + f"[{channel}/{one_line(event)}] {one_line(alert.message)}\n"
    info = multi_line(alert.info or "")
    state = one_line(alert.state or "")
    if alert.service_name is not None and alert.kind == OFFLINE:
        last = f"; last: {state}: {info}" if state else ""
        text += f"Current: {silence_of(alert.message)}{last}\n"
    elif alert.service_name is not None and state:
        text += f"Current: {state}: {info}\n"
    return text


def summary_line(alerts: Sequence[Alert]) -> str:
    """``web1: 12 alerts (10 offline, 2 state)``: most frequent kind first."""
    counts = Counter(a.kind for a in alerts)
    by_count = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kinds = ", ".join(f"{n} {one_line(kind)}" for kind, n in by_count)
    servers = sorted({one_line(a.server_name) for a in alerts})
    return f"{', '.join(servers)}: {len(alerts)} alerts ({kinds})"


def notification_text(alerts: Sequence[Alert]) -> str:
    """A single alert is exactly its block (1.x); several start with the summary line."""
    if len(alerts) == 1:
        return alert_block(alerts[0])
    return summary_line(alerts) + "\n" + "".join(alert_block(a) for a in alerts)


def notification_subject(alerts: Sequence[Alert]) -> str:
    if len(alerts) == 1:
        return alert_block(alerts[0]).splitlines()[0]
    return summary_line(alerts)


def alert_url(public_url: str, alert: Alert) -> str:
    """The UI page of the alert's service (or server), when the public URL is known."""
    if not public_url:
        return ""
    base = public_url if public_url.endswith("/") else public_url + "/"
    if alert.service_id is not None:
        return f"{base}ui/service/{alert.service_id}"
    return f"{base}ui/server/{alert.server_id}"


def alert_json(alert: Alert) -> dict[str, Any]:
    """One alert in a notification's JSON document (webhooks and ``format = json``)."""
    channel, event = channel_event(alert.kind, alert.severity)
    return {
        "id": alert.id, "time": alert.time, "kind": alert.kind, "severity": alert.severity,
        "server": alert.server_name, "service": alert.service_name, "message": alert.message,
        "state": alert.state, "info": alert.info, "channel": channel, "event": event,
    }


def notification_json(
    alerts: Sequence[Alert], *, channel: str, kind: str, public_url: str,
    notification_id: int | None = None,
) -> dict[str, Any]:
    return {
        # the same id on every attempt: receivers can drop a repeated delivery with it
        "notification": notification_id,
        "channel": channel,
        "kind": kind,
        "server": alerts[0].server_name if alerts else None,
        "count": len(alerts),
        "summary": notification_subject(alerts) if alerts else "",
        "url": alert_url(public_url, alerts[0]) if alerts else "",
        "text": notification_text(alerts) if alerts else "",
        "alerts": [alert_json(a) for a in alerts],
    }


def command_environment(alerts: Sequence[Alert], public_url: str) -> dict[str, str]:
    """The ``OVERC_*`` variables of a command channel: the first alert, plus the count."""
    first = alerts[0]
    environment = {
        "OVERC_SERVER": first.server_name,
        "OVERC_SERVICE": first.service_name or "",
        "OVERC_KIND": first.kind,
        "OVERC_SEVERITY": first.severity,
        "OVERC_STATE": first.state or "",
        "OVERC_MESSAGE": first.message,
        "OVERC_URL": alert_url(public_url, first),
        "OVERC_ALERT_COUNT": str(len(alerts)),
    }
    # An environment variable cannot hold a NUL (the program would not start at all).
    return {name: one_line(value) for name, value in environment.items()}
