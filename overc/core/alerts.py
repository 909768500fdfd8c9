"""Alerts: their kinds, how serious a severity is, and the one row model every layer shares.

The watchdog, the dispatcher and the channels read an :class:`Alert`, and so does the read
model of the UI and API: one shape, so an alert looks the same wherever it is shown or sent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from overc.core.states import FAIL, STATES

# Alert kinds. A state alert's severity is the new state; the others have fixed severities.
STATE, OFFLINE, ONLINE, API, INTERNAL = "state", "offline", "online", "api", "internal"
#: A run (SPEC 9.3) that did not report within its timeout plus grace.
TIMEOUT = "timeout"
#: A service started or stopped flapping (SPEC 10.2).
FLAPPING, FLAPPING_END = "flapping", "flapping-end"
#: A whole server stopped pushing / pushed again (SPEC 10.3): alerts without a service.
SERVER_OFFLINE, SERVER_ONLINE = "server-offline", "server-online"
SERVER_KINDS = (SERVER_OFFLINE, SERVER_ONLINE)
KINDS = (STATE, OFFLINE, ONLINE, API, INTERNAL, TIMEOUT, FLAPPING, FLAPPING_END,
         SERVER_OFFLINE, SERVER_ONLINE)
#: Severities share the states' names and 1.x order (UNK ranks above FAIL).
SEVERITIES = STATES
#: The 1.x ``[channel/event]`` pair of each alert kind (STATE is the new state).
_CHANNEL_EVENT = {
    OFFLINE: ("plugin", "offline"),
    ONLINE: ("plugin", "online"),
    API: ("api", "alert"),
    INTERNAL: ("overc", "internal"),
    TIMEOUT: ("plugin", "timeout"),
    FLAPPING: ("service", "flapping"),
    FLAPPING_END: ("service", "flapping-end"),
    SERVER_OFFLINE: ("server", "offline"),
    SERVER_ONLINE: ("server", "online"),
}


def severity_rank(severity: str | None) -> int:
    """Position in :data:`SEVERITIES`; an unknown severity is treated as serious (FAIL)."""
    try:
        return SEVERITIES.index((severity or "").upper())
    except ValueError:
        return SEVERITIES.index(FAIL)


def channel_event(kind: str, severity: str) -> tuple[str, str]:
    """The 1.x ``channel/event`` pair notifications show, e.g. ``service:state/WARN``."""
    if kind == STATE:
        return "service:state", severity
    return _CHANNEL_EVENT.get(kind, ("overc", kind))


@dataclass(frozen=True)
class ChannelDelivery:
    """The latest notification of an alert on one channel: where it stands, how many attempts
    it took so far and the error of the last failed one (``None`` once it was sent)."""

    channel: str
    status: str  # pending | sending | sent | failed | dropped
    attempts: int
    last_error: str | None = None


@dataclass(frozen=True)
class Alert:
    """One alert with the names of its server and service joined in.

    ``state``/``info`` are the service's as the alert was raised; ``skip_channel`` names the
    channel an ``internal`` alert is about (it is not sent there); ``delivery`` counts the
    alert's notifications by status where a reader asked for it, and ``deliveries`` has the
    latest notification per channel (by channel name).
    """

    id: int
    server_id: int
    server_name: str
    service_id: int | None
    service_name: str | None
    time: float
    kind: str
    severity: str
    message: str
    state: str | None = None
    info: str | None = None
    delivery: Mapping[str, int] = field(default_factory=dict)
    skip_channel: str | None = None
    deliveries: tuple[ChannelDelivery, ...] = ()
    #: Why its notification was held: ``maintenance`` when a window (or silence) held it (and
    #: sends what is still wrong at its end), ``flapping`` (SPEC 10.2), ``server offline``
    #: for a service's ``offline`` alert while its whole server was offline (SPEC 10.3) or
    #: ``depends on <parent>`` (SPEC 10.4) when it is recorded but never notified; None:
    #: notified as usual.
    held: str | None = None

    @property
    def is_problem(self) -> bool:
        """Anything above OK needs somebody's attention; OK is a recovery."""
        return severity_rank(self.severity) > 0
