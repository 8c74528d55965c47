"""Where alerts go: a Slack-compatible incoming webhook, email over SMTP, and WhatsApp to
the admins' own numbers. One small class per channel, one verb (`send`), one error type;
adding a channel is adding a class. A channel that fails never stops the others.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Iterable
from email.message import EmailMessage
from typing import ClassVar
from urllib.parse import unquote, urlsplit

import requests
from rq import Queue

from bot.core import phones
from bot.core.config import Settings
from bot.core.models import Category, Message, utcnow, write_transaction
from bot.core.rows import Erased, get_or_create_customer, insert_message
from bot.delivery.dispatch import enqueue_sends
from bot.observability.alerts import Notice

log = logging.getLogger(__name__)

ALERT_KIND = "alert"  # Message.kind of the WhatsApp alerts
#: A template parameter is at most 1024 characters; leave room for WhatsApp's own text.
MAX_PARAMETER_CHARS = 900


class AlertChannelError(Exception):
    """A channel could not deliver a notice; the message says why, without secrets."""


class AlertChannel:
    """Base class: one verb, `send`, which raises `AlertChannelError` on failure."""

    name: ClassVar[str]

    def send(self, alert: Notice) -> None:
        raise NotImplementedError


class SlackChannel(AlertChannel):
    """POST {"text": ...} to a Slack (or Mattermost, Rocket.Chat, Teams-workflow)
    incoming-webhook URL."""

    name = "slack"

    def __init__(self, url: str, timeout: float = 10.0, session: requests.Session | None = None):
        self.url = url
        self.timeout = timeout
        self.session = session or requests.Session()

    def send(self, alert: Notice) -> None:
        try:
            response = self.session.post(
                self.url, json={"text": alert.as_text()}, timeout=self.timeout
            )
        except requests.RequestException as exc:
            # The URL is the secret: name only the kind of failure.
            raise AlertChannelError(f"slack: {type(exc).__name__}") from exc
        if not response.ok:
            raise AlertChannelError(f"slack: HTTP {response.status_code} {response.text[:200]}")


class EmailChannel(AlertChannel):
    """One email per notice through SMTP_URL: smtp://[user:pass@]host[:port] (STARTTLS
    whenever the server offers it) or smtps:// (TLS from the start)."""

    name = "email"

    def __init__(self, url: str, sender: str, recipients: Iterable[str], timeout: float = 10.0):
        self.url = urlsplit(url)
        self.sender = sender or f"dakiya@{self.url.hostname or 'localhost'}"
        self.recipients = list(recipients)
        self.timeout = timeout

    def send(self, alert: Notice) -> None:
        message = EmailMessage()
        message["Subject"] = alert.title
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message.set_content(f"{alert.text}\n\nSeverity: {alert.severity}\nAt: {alert.at} UTC\n")
        try:
            with self._connect() as smtp:
                if self.url.username:
                    smtp.login(unquote(self.url.username), unquote(self.url.password or ""))
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            raise AlertChannelError(f"email: {exc}") from exc

    def _connect(self) -> smtplib.SMTP:
        host, context = self.url.hostname or "localhost", ssl.create_default_context()
        if self.url.scheme == "smtps":
            return smtplib.SMTP_SSL(
                host, self.url.port or 465, timeout=self.timeout, context=context
            )
        smtp = smtplib.SMTP(host, self.url.port or 587, timeout=self.timeout)
        smtp.ehlo()
        if smtp.has_extn("starttls"):
            smtp.starttls(context=context)
            smtp.ehlo()
        return smtp


class WhatsAppChannel(AlertChannel):
    """A message to each admin number as an approved utility template with the notice as
    its one body parameter, sent like any other message: policy, caps, rate limit."""

    name = "whatsapp"

    def __init__(
        self,
        numbers: Iterable[str],
        template: str,
        language: str,
        region: str,
        queues: dict[str, Queue],
        salt: str = "",
    ):
        self.numbers = list(numbers)
        self.template = template
        self.language = language
        self.region = region
        self.queues = queues
        self.salt = salt

    def send(self, alert: Notice) -> None:
        now = utcnow()
        body = alert.as_text()[:MAX_PARAMETER_CHARS]
        queued, unusable = [], []
        with write_transaction():
            for number in self.numbers:
                phone = phones.to_e164(number, self.region)
                if phone is None:
                    unusable.append(number)
                    continue
                try:
                    customer, _ = get_or_create_customer(phone, now, salt=self.salt)
                except Erased:  # an admin who had themselves erased: no alerts either
                    unusable.append(number)
                    continue
                message = Message(
                    customer=customer,
                    phone=phone,
                    dedupe_key=f"{ALERT_KIND}:{alert.dedupe_id}:{phone}",
                    kind=ALERT_KIND,
                    category=Category.UTILITY,
                    queue="orders",
                    template_name=self.template,
                    language=self.language,
                    params={"body": [body]},
                    created_at=now,
                    updated_at=now,
                )
                if not insert_message(message):
                    continue  # this notice was already handed over (or is, by a twin)
                queued.append((message.id, message.queue))
        enqueue_sends(self.queues, queued)
        if unusable:
            raise AlertChannelError(f"whatsapp: unusable numbers {', '.join(unusable)}")


def configured_channels(settings: Settings, queues: dict[str, Queue]) -> list[AlertChannel]:
    """Every channel the settings configure, in a fixed order."""
    channels: list[AlertChannel] = []
    if settings.alert_slack_webhook_url:
        channels.append(
            SlackChannel(settings.alert_slack_webhook_url, settings.provider_timeout_seconds)
        )
    if settings.smtp_url:
        channels.append(
            EmailChannel(settings.smtp_url, settings.alert_email_from, settings.alert_email_to)
        )
    if settings.alert_whatsapp_numbers and settings.alert_whatsapp_template:
        channels.append(
            WhatsAppChannel(
                settings.alert_whatsapp_numbers,
                settings.alert_whatsapp_template,
                settings.default_language,
                settings.default_region,
                queues,
                settings.suppression_salt,
            )
        )
    return channels


def send_everywhere(channels: Iterable[AlertChannel], alert: Notice) -> dict[str, str | None]:
    """Send `alert` through every channel; channel name -> None, or why it failed."""
    results: dict[str, str | None] = {}
    for channel in channels:
        try:
            channel.send(alert)
        except Exception as exc:  # noqa: BLE001  one broken channel must not silence the rest
            log.error("alert %s via %s failed: %s", alert.dedupe_id, channel.name, exc)
            results[channel.name] = str(exc) or type(exc).__name__
        else:
            results[channel.name] = None
    return results
