"""`GET /metrics`: Prometheus text, protected, with every reason code counted."""

from __future__ import annotations

import pytest

from bot.models import Message, Reason, State
from tests.conftest import ADMIN
from tests.factories import queued_message


@pytest.fixture
def settings(settings):
    return settings.replace(metrics_token="scrape-me")


def test_metrics_need_the_token_or_the_admin_login(client):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).status_code == 200
    assert client.get("/metrics", headers=ADMIN).status_code == 200


def test_suppressions_and_deferrals_are_counted_by_reason(client):
    first, second = (
        queued_message(event_id="a", order_id="1"),
        queued_message(event_id="b", order_id="2"),
    )
    Message.update(state=State.SUPPRESSED, reason=Reason.OPTED_OUT).where(
        Message.id == first.id
    ).execute()
    Message.update(state=State.DEFERRED, reason=Reason.QUIET_HOURS).where(
        Message.id == second.id
    ).execute()
    text = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).get_data(
        as_text=True
    )
    assert 'dakiya_messages{category="utility",reason="opted_out",state="suppressed"} 1.0' in text
    assert 'dakiya_messages{category="utility",reason="quiet_hours",state="deferred"} 1.0' in text
    assert 'dakiya_order_events{source="generic"} 2.0' in text
    assert 'dakiya_queue_depth{queue="orders"} 2.0' in text
