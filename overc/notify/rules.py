"""Pure decisions of notification delivery: severities, filters, routing, grouping, backoff,
repeats and what happens when a silence ends.

Everything here takes plain values (``now`` included) and returns plain values, so the rules
that decide whether somebody gets paged are tested exhaustively without a reactor or database.
"""
from __future__ import annotations

import fnmatch
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

#: 1.x order (``state_t``): UNK ranks above FAIL, so ``min-severity = FAIL`` still gets UNK.
SEVERITIES = ("OK", "WARN", "FAIL", "UNK")
#: Delay before retry n (1-based); later retries reuse the last step.
BACKOFF = (10.0, 30.0, 120.0, 600.0, 1800.0)
#: The 1.x ``[channel/event]`` pair of each alert kind (STATE is the new state).
_CHANNEL_EVENT = {
    "offline": ("plugin", "offline"),
    "online": ("plugin", "online"),
    "api": ("api", "alert"),
    "internal": ("overc", "internal"),
}


def severity_rank(severity: str | None) -> int:
    try:
        return SEVERITIES.index((severity or "").upper())
    except ValueError:
        return SEVERITIES.index("FAIL")  # unknown severities are treated as serious


def backoff_delay(failed_attempts: int) -> float:
    """Seconds to wait after the ``failed_attempts``-th failure (1-based): 10 s, 30 s, ..."""
    index = max(1, failed_attempts) - 1
    return BACKOFF[min(index, len(BACKOFF) - 1)]


def next_attempt(now: float, failed_attempts: int, retries: int) -> float | None:
    """When to try again after a failure, or None when the channel has failed for good.

    ``retries`` counts retries, so a notification is tried at most ``1 + retries`` times.
    """
    if failed_attempts > retries:
        return None
    return now + backoff_delay(failed_attempts)


def channel_event(kind: str, severity: str) -> tuple[str, str]:
    if kind == "state":
        return "service:state", severity
    return _CHANNEL_EVENT.get(kind, ("overc", kind))


@dataclass(frozen=True)
class AlertView:
    """One alert as a channel sees it (names joined in, state/info as raised)."""

    id: int
    time: float
    kind: str
    severity: str
    server_id: int
    server: str
    service_id: int | None
    service: str | None
    message: str
    state: str | None = None
    info: str | None = None
    skip_channel: str | None = None

    @property
    def is_problem(self) -> bool:
        return severity_rank(self.severity) > 0

    def as_json(self) -> dict:
        channel, event = channel_event(self.kind, self.severity)
        return {
            "id": self.id, "time": self.time, "kind": self.kind, "severity": self.severity,
            "server": self.server, "service": self.service, "message": self.message,
            "state": self.state, "info": self.info, "channel": channel, "event": event,
        }


@dataclass(frozen=True)
class Route:
    """What the dispatcher needs to know of a channel: its filters and its repeat period."""

    name: str
    min_severity: str = "WARN"
    servers: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    repeat: float | None = None

    def matches_names(self, alert: AlertView) -> bool:
        if alert.kind == "internal":
            return True  # OverC's own trouble reaches every other channel, whatever its filters
        if self.servers and not _glob_any(alert.server, self.servers):
            return False
        if self.services and not _glob_any(alert.service or "", self.services):
            return False
        return True


def _glob_any(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def parse_globs(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def route_alert(
    routes: Sequence[Route], alert: AlertView, told: frozenset[str] | set[str] = frozenset()
) -> list[str]:
    """Names of the channels that get ``alert``.

    ``told`` holds the channels already told about a problem of this service: a recovery
    (severity OK) goes to them even though it is below their ``min-severity``.
    """
    out = []
    for route in routes:
        if alert.skip_channel == route.name or not route.matches_names(alert):
            continue
        if severity_rank(alert.severity) >= severity_rank(route.min_severity):
            out.append(route.name)
        elif not alert.is_problem and route.name in told:
            out.append(route.name)
    return out


def group_by_server(
    alerts: Iterable[AlertView], channels_of: dict[int, list[str]]
) -> dict[tuple[int, str], list[AlertView]]:
    """Storm control: the alerts of one server pending together make one notification per
    channel. ``channels_of`` maps alert id to its routed channels. Order is kept."""
    groups: dict[tuple[int, str], list[AlertView]] = {}
    for alert in alerts:
        for channel in channels_of.get(alert.id, ()):
            groups.setdefault((alert.server_id, channel), []).append(alert)
    return groups


# ---------------------------------------------------------------- text and JSON formats


def alert_block(alert: AlertView) -> str:
    """One alert in the 1.x text format, byte for byte::

        web1 disk: [service:state/WARN] State changed: "OK" -> "WARN"
        Current: WARN: DISK WARNING - /var 91%
    """
    who = " ".join(x for x in (alert.server, alert.service) if x)
    channel, event = channel_event(alert.kind, alert.severity)
    text = (f"{who}: " if who else "") + f"[{channel}/{event}] {alert.message}\n"
    if alert.service is not None and alert.state:
        text += f"Current: {alert.state}: {alert.info or ''}\n"
    return text


def summary_line(alerts: Sequence[AlertView]) -> str:
    """``web1: 12 alerts (10 offline, 2 state)``: most frequent kind first."""
    counts = Counter(a.kind for a in alerts)
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    servers = sorted({a.server for a in alerts})
    return f"{', '.join(servers)}: {len(alerts)} alerts ({kinds})"


def notification_text(alerts: Sequence[AlertView]) -> str:
    """A single alert is exactly its block (1.x); several start with the summary line."""
    if len(alerts) == 1:
        return alert_block(alerts[0])
    return summary_line(alerts) + "\n" + "".join(alert_block(a) for a in alerts)


def notification_subject(alerts: Sequence[AlertView]) -> str:
    if len(alerts) == 1:
        return alert_block(alerts[0]).splitlines()[0]
    return summary_line(alerts)


def alert_url(public_url: str, alert: AlertView) -> str:
    if not public_url:
        return ""
    base = public_url if public_url.endswith("/") else public_url + "/"
    if alert.service_id is not None:
        return f"{base}ui/service/{alert.service_id}"
    return f"{base}ui/server/{alert.server_id}"


def notification_json(
    alerts: Sequence[AlertView], *, channel: str, kind: str, public_url: str,
    notification_id: int | None = None,
) -> dict:
    return {
        # the same id on every attempt: receivers can drop a repeated delivery with it
        "notification": notification_id,
        "channel": channel,
        "kind": kind,
        "server": alerts[0].server if alerts else None,
        "count": len(alerts),
        "summary": notification_subject(alerts) if alerts else "",
        "url": alert_url(public_url, alerts[0]) if alerts else "",
        "text": notification_text(alerts) if alerts else "",
        "alerts": [a.as_json() for a in alerts],
    }


def command_environment(alerts: Sequence[AlertView], public_url: str) -> dict[str, str]:
    """The ``OVERC_*`` variables of a command channel: the first alert, plus the count."""
    first = alerts[0]
    return {
        "OVERC_SERVER": first.server,
        "OVERC_SERVICE": first.service or "",
        "OVERC_KIND": first.kind,
        "OVERC_SEVERITY": first.severity,
        "OVERC_STATE": first.state or "",
        "OVERC_MESSAGE": first.message,
        "OVERC_URL": alert_url(public_url, first),
        "OVERC_ALERT_COUNT": str(len(alerts)),
    }


# ---------------------------------------------------------------- repeats and silences


def in_problem(state: str | None, stale: bool) -> bool:
    """A service needs attention while it is stale or its current state is not OK."""
    return bool(stale) or (state is not None and state.upper() != "OK")


def is_silenced(now: float, *until: float | None) -> bool:
    return any(u is not None and u > now for u in until)


@dataclass(frozen=True)
class RepeatDecision:
    action: str  # "send", "drop" (forget: recovered), "stop" (acked), "later" (silenced)
    next_due: float | None = None


def decide_repeat(
    now: float, *, repeat: float | None, state: str | None, stale: bool, acked: bool,
    silenced: bool,
) -> RepeatDecision:
    """What to do with a due repeat of a problem a channel was told about."""
    if not in_problem(state, stale):
        return RepeatDecision("drop")
    if repeat is None or acked:
        # acknowledged: no more repeats until the state changes (a new alert re-arms it)
        return RepeatDecision("stop")
    if silenced:
        return RepeatDecision("later", now + repeat)
    return RepeatDecision("send", now + repeat)


@dataclass(frozen=True)
class HeldAlert:
    id: int
    service_id: int | None


@dataclass
class ReleaseDecision:
    notify: list[int] = field(default_factory=list)
    supersede: list[int] = field(default_factory=list)


def decide_release(
    held: Sequence[HeldAlert], *, service_status: dict[int, tuple[str | None, bool, bool]],
    told_services: set[int],
) -> ReleaseDecision:
    """A silence ended: which held alerts are notified now, once, and which are dropped.

    Per service only the newest held alert can matter: it is notified when the problem is still
    active and not acknowledged, or when a channel was told about the problem before the
    silence (so it gets the recovery). Alerts without a service (api) were events, not lasting
    problems: they stay recorded and are not sent late. ``service_status`` maps service id to
    ``(state, stale, acked)``.
    """
    decision = ReleaseDecision()
    newest: dict[int, int] = {}
    for alert in held:
        if alert.service_id is None:
            decision.supersede.append(alert.id)
            continue
        previous = newest.get(alert.service_id)
        if previous is None or alert.id > previous:
            if previous is not None:
                decision.supersede.append(previous)
            newest[alert.service_id] = alert.id
        else:
            decision.supersede.append(alert.id)
    for service_id, alert_id in newest.items():
        state, stale, acked = service_status.get(service_id, (None, False, False))
        if in_problem(state, stale):
            wanted = not acked
        else:
            wanted = service_id in told_services  # the recovery, for channels told before
        if wanted:
            decision.notify.append(alert_id)
        else:
            decision.supersede.append(alert_id)
    decision.notify.sort()
    decision.supersede.sort()
    return decision
