"""Webhook channels: one POST per notification through an injected treq client.

The body is the notification as JSON, or what a Jinja2 ``template`` file renders from it (for
Slack, Teams, ...). A 2xx answer means delivered; anything else, or no answer within the
timeout, is a failed attempt with the status and the start of the answer as the error.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

import jinja2

from overc.core.alerts import Alert
from overc.core.notification_text import notification_json
from overc.notify.base import ChannelSpec, DeliveryError, within


def default_client(reactor: Any) -> Any:
    """Persistent connections, enough per host for parallel deliveries.

    The pool logs every connection it opens at info level; the server's log filter
    (:mod:`overc.runtime.loglevel`) holds those lines back below ``debug``.
    """
    from treq.client import HTTPClient
    from twisted.web.client import Agent, HTTPConnectionPool

    pool = HTTPConnectionPool(reactor)
    pool.maxPersistentPerHost = 16
    return HTTPClient(Agent(reactor, pool=pool, connectTimeout=10))


class WebhookChannel:
    def __init__(self, spec: ChannelSpec, client: Any, clock: Any, *, public_url: str = ""
                 ) -> None:
        self.spec = spec
        self.client = client
        self.clock = clock
        self.public_url = public_url
        self.template: jinja2.Template | None = None
        if spec.template is not None:
            env = jinja2.Environment(
                loader=jinja2.FileSystemLoader(str(spec.template.parent)),
                autoescape=False, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
            )
            self.template = env.get_template(spec.template.name)

    def body(self, alerts: Sequence[Alert], kind: str,
             notification_id: int | None = None) -> bytes:
        payload = notification_json(alerts, channel=self.spec.name, kind=kind,
                                    public_url=self.public_url, notification_id=notification_id)
        if self.template is None:
            return json.dumps(payload, ensure_ascii=False).encode("utf-8")
        return self.template.render(**payload).encode("utf-8")

    async def send(self, alerts: Sequence[Alert], kind: str,
                   notification_id: int | None = None) -> None:
        try:
            data = self.body(alerts, kind, notification_id)
        except jinja2.TemplateError as e:
            raise DeliveryError(f"template {self.spec.template}: {e}") from None
        headers = {"Content-Type": "application/json", "User-Agent": "OverC"}
        if notification_id is not None:
            headers["X-OverC-Notification"] = str(notification_id)
        headers.update(self.spec.headers)
        request = self.client.request(
            "POST", self.spec.url, data=data,
            headers={k: [v] for k, v in headers.items()},
        )
        try:
            response = await within(request, self.spec.timeout, self.clock)
            content = await within(response.content(), self.spec.timeout, self.clock)
        except DeliveryError:
            raise
        except Exception as e:
            raise DeliveryError(f"{type(e).__name__}: {e}") from None
        if not 200 <= response.code < 300:
            snippet = content[:200].decode("utf-8", "replace").strip()
            raise DeliveryError(f"HTTP {response.code}" + (f": {snippet}" if snippet else ""))
