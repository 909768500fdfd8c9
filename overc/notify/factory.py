"""The live channel for a validated spec: the one place that knows every channel kind."""
from __future__ import annotations

from typing import Any

from overc.notify.base import Channel, ChannelSpec
from overc.notify.command import CommandChannel
from overc.notify.smtp import SMTPChannel
from overc.notify.webhook import WebhookChannel, default_client


def build_channel(spec: ChannelSpec, *, reactor: Any, public_url: str,
                  http_client: Any = None) -> Channel:
    """The live channel for a spec; ``http_client`` is a treq ``HTTPClient`` (or StubTreq)."""
    if spec.kind == "command":
        return CommandChannel(spec, reactor, public_url=public_url)
    if spec.kind == "url":
        return WebhookChannel(spec, http_client or default_client(reactor), reactor,
                              public_url=public_url)
    return SMTPChannel(spec, reactor, public_url=public_url)
