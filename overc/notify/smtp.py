"""E-mail channels through ``twisted.mail``'s client: one message per notification.

The subject is the first line of the text (or the summary line of a group), the body is the
1.x text format, or the JSON document with ``format = json``.
"""
from __future__ import annotations

import email.utils
from email.message import EmailMessage
from typing import Any, Sequence

from twisted.mail.smtp import sendmail

from overc.core.alerts import Alert
from overc.core.notification_text import notification_subject
from overc.notify.base import ChannelSpec, DeliveryError, render_body, within


class SMTPChannel:
    def __init__(self, spec: ChannelSpec, reactor: Any, *, public_url: str = "") -> None:
        self.spec = spec
        self.reactor = reactor
        self.public_url = public_url

    def message(self, alerts: Sequence[Alert], kind: str,
                notification_id: int | None = None) -> bytes:
        msg = EmailMessage()
        subject = notification_subject(alerts)
        msg["Subject"] = ("[OverC] " + ("Repeat: " if kind == "repeat" else "") + subject)[:250]
        msg["From"] = self.spec.sender
        msg["To"] = ", ".join(self.spec.recipients)
        msg["Date"] = email.utils.formatdate(self.reactor.seconds(), usegmt=True)
        if notification_id is None:
            msg["Message-ID"] = email.utils.make_msgid("overc")
        else:  # the same on a repeated attempt: mail systems drop the duplicate
            domain = self.spec.sender.rpartition("@")[2] or "overc"
            msg["Message-ID"] = f"<overc-notification-{notification_id}@{domain}>"
        body = render_body(self.spec, alerts, kind, self.public_url, notification_id).decode()
        msg.set_content(body)
        return msg.as_bytes()

    async def send(self, alerts: Sequence[Alert], kind: str,
                   notification_id: int | None = None) -> None:
        d = sendmail(
            self.spec.smtp_host, self.spec.sender, list(self.spec.recipients),
            self.message(alerts, kind, notification_id), port=self.spec.smtp_port, reactor=self.reactor,
            username=self.spec.smtp_user, password=self.spec.smtp_password,
            requireAuthentication=self.spec.smtp_user is not None,
        )
        try:
            await within(d, self.spec.timeout, self.reactor)
        except DeliveryError:
            raise
        except Exception as e:
            raise DeliveryError(f"{type(e).__name__}: {e}") from None
