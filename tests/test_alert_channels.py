"""Alert channels: Slack faked at the HTTP boundary, email through a real local SMTP
server, WhatsApp through the normal sending path; a broken channel never silences the
others; `flask --app wsgi test-alert`."""

from __future__ import annotations

import email
import json
from datetime import datetime
from email import policy

import pytest
import responses
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from bot.core.models import Category, Customer, Message, State, utcnow
from bot.delivery.providers.sandbox import recorded
from bot.extensions import services
from bot.observability.alert_channels import (
    AlertChannelError,
    EmailChannel,
    SlackChannel,
    WhatsAppChannel,
    send_everywhere,
)
from bot.observability.alerts import Notice
from jobs.alerts import check_alerts
from tests.conftest import free_port

SLACK_URL = "https://hooks.slack.example/services/T000/B000/XXXX"
NOTICE = Notice(
    "dead_letters",
    "firing",
    "warning",
    "2 message(s) gave up after every retry in the last 15 min",
    datetime(2025, 11, 24, 16, 15),
)


class Inbox:
    """What the local SMTP server received, and who logged in."""

    def __init__(self) -> None:
        self.envelopes = []
        self.logins = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=True)

    def messages(self) -> list:
        return [email.message_from_bytes(e.content, policy=policy.default) for e in self.envelopes]


@pytest.fixture
def smtp():
    """A real SMTP server on 127.0.0.1 (aiosmtpd), with optional plain-text login."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=inbox.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    inbox.url = f"smtp://127.0.0.1:{port}"
    yield inbox
    controller.stop()


def test_slack_channel_posts_the_alert_as_json_text():
    with responses.RequestsMock() as mock:
        mock.post(SLACK_URL, body="ok")
        SlackChannel(SLACK_URL, timeout=3).send(NOTICE)
        [call] = mock.calls
    assert json.loads(call.request.body) == {
        "text": "[Dakiya] ALERT: dead_letters - 2 message(s) gave up after every retry "
        "in the last 15 min"
    }
    assert call.request.headers["Content-Type"] == "application/json"


def test_slack_channel_error_names_the_status_but_not_the_url():
    with responses.RequestsMock() as mock:
        mock.post(SLACK_URL, status=404, body="no_team")
        with pytest.raises(AlertChannelError, match="HTTP 404 no_team") as raised:
            SlackChannel(SLACK_URL).send(NOTICE)
    assert "XXXX" not in str(raised.value)


def test_email_channel_sends_through_a_real_smtp_server(smtp):
    EmailChannel(smtp.url, "dakiya@shop.example", ["ops@shop.example", "cto@shop.example"]).send(
        NOTICE
    )
    [message] = smtp.messages()
    assert message["Subject"] == "[Dakiya] ALERT: dead_letters"
    assert message["From"] == "dakiya@shop.example"
    assert message["To"] == "ops@shop.example, cto@shop.example"
    assert "2 message(s) gave up after every retry" in message.get_content()
    assert smtp.envelopes[0].rcpt_tos == ["ops@shop.example", "cto@shop.example"]
    assert smtp.logins == []


def test_email_channel_logs_in_with_the_url_credentials(smtp):
    url = smtp.url.replace("smtp://", "smtp://alerts%40shop.example:p%40ss%3Aword@")
    EmailChannel(url, "", ["ops@shop.example"]).send(NOTICE)
    assert smtp.logins == [("alerts@shop.example", "p@ss:word")]
    assert smtp.messages()[0]["From"] == "dakiya@127.0.0.1"


def test_email_channel_raises_its_one_error_when_the_server_is_unreachable():
    channel = EmailChannel(f"smtp://127.0.0.1:{free_port()}", "", ["ops@shop.example"], 2)
    with pytest.raises(AlertChannelError, match="email"):
        channel.send(NOTICE)


@pytest.fixture
def whatsapp_app(make_app, settings):
    return make_app(
        settings.replace(
            alert_whatsapp_numbers=("+919800000001", "9800000002"),
            alert_whatsapp_template="ops_alert",
        )
    )


def whatsapp_channel() -> WhatsAppChannel:
    s = services().settings
    return WhatsAppChannel(
        s.alert_whatsapp_numbers,
        s.alert_whatsapp_template,
        s.default_language,
        s.default_region,
        services().queues,
    )


def test_whatsapp_channel_sends_the_template_to_each_admin_through_the_policy(
    whatsapp_app, run_jobs
):
    whatsapp_channel().send(NOTICE)
    whatsapp_channel().send(NOTICE)  # the same transition again: no second message
    run_jobs()

    messages = list(Message.select().order_by(Message.phone))
    assert [m.phone for m in messages] == ["+919800000001", "+919800000002"]
    for message in messages:
        assert (message.kind, message.category, message.queue) == (
            "alert",
            Category.UTILITY,
            "orders",
        )
        assert message.state in (State.SENT, State.DELIVERED, State.READ)
        assert message.params == {"body": [NOTICE.as_text()]}
    sent = recorded(services().redis)
    assert {item["template"]["name"] for item in sent} == {"ops_alert"}
    assert sent[0]["template"]["body"] == [NOTICE.as_text()]


def test_whatsapp_alert_to_an_admin_who_opted_out_is_suppressed(whatsapp_app, run_jobs):
    Customer.create(phone="+919800000001", opted_out=True, timezone="Asia/Kolkata")
    whatsapp_channel().send(NOTICE)
    run_jobs()
    states = {m.phone: (m.state, m.reason) for m in Message.select()}
    assert states["+919800000001"] == (State.SUPPRESSED, "opted_out")
    assert states["+919800000002"][0] in (State.SENT, State.DELIVERED, State.READ)


class BrokenChannel:
    name = "broken"

    def send(self, alert):
        raise RuntimeError("boom")


def test_a_failing_channel_does_not_stop_the_others(smtp):
    with responses.RequestsMock() as mock:
        mock.post(SLACK_URL, status=500, body="internal error")
        results = send_everywhere(
            [
                SlackChannel(SLACK_URL),
                BrokenChannel(),
                EmailChannel(smtp.url, "", ["ops@shop.example"]),
            ],
            NOTICE,
        )
    assert results == {
        "slack": "slack: HTTP 500 internal error",
        "broken": "boom",
        "email": None,
    }
    assert len(smtp.envelopes) == 1


def test_the_alert_check_job_notifies_every_channel_once(make_app, settings, smtp, run_jobs):
    make_app(
        settings.replace(
            alert_slack_webhook_url=SLACK_URL,
            smtp_url=smtp.url,
            alert_email_to=("ops@shop.example",),
            alert_whatsapp_numbers=("+919800000001",),
            alert_whatsapp_template="ops_alert",
        )
    )
    Message.create(
        phone="+919812345678",
        dedupe_key="dead",
        kind="shipped",
        state=State.FAILED,
        reason="retries_exhausted",
        failed_at=utcnow(),
    )
    with responses.RequestsMock() as mock:
        mock.post(SLACK_URL, body="ok")
        [result] = check_alerts()
        assert check_alerts() == []  # still firing, within the cool-down
        [call] = mock.calls
    assert result["channels"] == {"slack": None, "email": None, "whatsapp": None}
    assert json.loads(call.request.body)["text"].startswith("[Dakiya] ALERT: dead_letters - 1")
    assert smtp.messages()[0]["Subject"] == "[Dakiya] ALERT: dead_letters"
    run_jobs()
    alert = Message.get(Message.kind == "alert")
    assert alert.state in (State.SENT, State.DELIVERED, State.READ)


def test_cli_test_alert_reports_each_channel(make_app, settings, smtp):
    app = make_app(
        settings.replace(
            alert_slack_webhook_url=SLACK_URL,
            smtp_url=smtp.url,
            alert_email_to=("ops@shop.example",),
        )
    )
    with responses.RequestsMock() as mock:
        mock.post(SLACK_URL, status=403, body="invalid_token")
        result = app.test_cli_runner().invoke(args=["test-alert"])
    assert result.output.splitlines() == [
        "slack: FAILED: slack: HTTP 403 invalid_token",
        "email: sent",
    ]
    assert result.exit_code == 1
    assert smtp.messages()[0]["Subject"] == "[Dakiya] TEST: test"


def test_cli_test_alert_without_channels_says_how_to_configure_them(runner):
    result = runner.invoke(args=["test-alert"])
    assert result.exit_code != 0
    assert "no alert channel configured" in result.output
