"""What every notification channel shares: its validated spec, the protocol it implements,
the error it raises and the body it sends. Channels import this module and the core only.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from overc.core.alerts import Alert
from overc.core.notification_text import notification_json, notification_text
from overc.core.routing import Route


class DeliveryError(Exception):
    """A channel could not deliver; the message is recorded as the attempt's error."""


class Channel(Protocol):
    spec: "ChannelSpec"

    async def send(self, alerts: Sequence[Alert], kind: str,
                   notification_id: int | None = None) -> None:
        """Deliver one notification; raise :class:`DeliveryError` (or any error) on failure.

        ``notification_id`` is the same on every attempt of one notification: it is handed to
        the receiver (``OVERC_NOTIFICATION_ID``, ``X-OverC-Notification``, ``Message-ID``) so a
        delivery repeated after a crash can be recognised.
        """


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    kind: str  # command | url | smtp
    base_dir: Path
    command: tuple[str, ...] = ()
    format: str = "text"
    url: str = ""
    template: Path | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    sender: str = ""
    recipients: tuple[str, ...] = ()
    min_severity: str = "WARN"
    servers: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    timeout: float = 30.0
    retries: int = 5
    repeat: float | None = None
    after: float | None = None

    @property
    def route(self) -> Route:
        return Route(self.name, self.min_severity, self.servers, self.services, self.repeat,
                     self.after)

    @property
    def lease(self) -> float:
        """How long a delivery may hold its claim: the timeout, the kill grace and a margin."""
        return self.timeout + 10.0


def render_body(spec: ChannelSpec, alerts: Sequence[Alert], kind: str,
                public_url: str, notification_id: int | None = None) -> bytes:
    """The 1.x text (default) or ``format = json`` body of one notification."""
    if spec.format == "json":
        payload = notification_json(alerts, channel=spec.name, kind=kind, public_url=public_url,
                                    notification_id=notification_id)
        return json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return notification_text(alerts).encode("utf-8")


async def within(d: Deferred[Any], seconds: float, clock: IReactorTime) -> Any:
    """Await ``d``, cancelling it after ``seconds``; a timeout is one clear DeliveryError
    (whatever the cancelled client wraps the cancellation in)."""
    timed_out: list[bool] = []

    def on_timeout(result: Any, timeout: float) -> Any:
        timed_out.append(True)
        return result

    d.addTimeout(seconds, clock, onTimeoutCancel=on_timeout)
    try:
        return await d
    except Exception:
        if timed_out:
            raise DeliveryError(f"no answer within {seconds:g} s") from None
        raise
