"""Analytics: the daily rollup matches a fixture computed by hand, number for number;
reports read the rollup only; the admin endpoint validates its query."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from itertools import count

import pytest

from bot.core.models import (
    Category,
    ConsentEvent,
    Customer,
    DailyStat,
    InboundMessage,
    Message,
    OrderEvent,
    State,
    utcnow,
)
from bot.observability.analytics import rollup_day, rollup_recent, summary, weighted_median
from jobs.analytics import rollup
from tests.conftest import ADMIN, VIEWER

DAY1, DAY2, DAY3 = date(2024, 3, 4), date(2024, 3, 5), date(2024, 3, 6)
NOW = datetime(2024, 3, 14, 12, 0)
numbers = count(1)


def at(day: date, clock: str) -> datetime:
    return datetime.combine(day, datetime.strptime(clock, "%H:%M:%S").time())


def seconds(n: int) -> timedelta:
    return timedelta(seconds=n)


def message(
    created_at: datetime,
    state: State,
    *,
    template: str | None = "order_shipped",
    language: str | None = "en",
    source: str | None = "shopify",
    category: Category = Category.UTILITY,
    customer: Customer | None = None,
    sent_at: datetime | None = None,
    delivered_after: int | None = None,
    read_after: int | None = None,
    code: str | None = None,
    reason: str | None = None,
) -> Message:
    n = next(numbers)
    event = None
    if source:
        event = OrderEvent.create(
            source=source, dedupe_key=f"{source}:{n}", topic="shipped", payload={}
        )
    return Message.create(
        order_event=event,
        customer=customer,
        phone=customer.phone if customer else "not a number",
        dedupe_key=f"m{n}",
        kind="campaign" if category == Category.MARKETING else "shipped",
        category=category,
        template_name=template,
        language=language,
        state=state,
        reason=reason,
        error_code=code,
        created_at=created_at,
        sent_at=sent_at,
        delivered_at=sent_at + seconds(delivered_after) if delivered_after is not None else None,
        read_at=sent_at + seconds(read_after) if read_after is not None else None,
        failed_at=created_at if state == State.FAILED else None,
    )


def wrote(customer: Customer, moment: datetime) -> None:
    InboundMessage.create(
        provider="meta",
        provider_message_id=f"wamid.{next(numbers)}",
        phone=customer.phone,
        customer=customer,
        type="text",
        text="hi",
        occurred_at=moment,
    )


def consent(customer: Customer, action: str, moment: datetime) -> None:
    ConsentEvent.create(
        customer=customer, category="all", action=action, source="keyword", created_at=moment
    )


@pytest.fixture
def fixture_messages(app):
    """Two days of messages. Latencies are in seconds after `sent_at`."""
    asha, bilal, chitra, dev = (
        Customer.create(phone=f"+9198123456{n:02d}", name=name)
        for n, name in enumerate(("Asha", "Bilal", "Chitra", "Dev"))
    )
    # Day 1, order_shipped/en/shopify: delivered after 60, 120, 300 s; read after 3600, 600 s.
    sent = at(DAY1, "09:00:10")
    message(at(DAY1, "09:00:00"), State.READ, customer=asha, sent_at=sent, delivered_after=60,
            read_after=3600)  # fmt: skip
    wrote(asha, sent + timedelta(hours=3))  # a reply 3 h after: counts
    sent = at(DAY1, "10:00:00")
    message(sent, State.DELIVERED, customer=bilal, sent_at=sent, delivered_after=120)
    wrote(bilal, sent + timedelta(hours=30))  # 30 h after: no reply to this one
    sent = at(DAY1, "11:00:00")
    message(sent, State.READ, customer=chitra, sent_at=sent, delivered_after=300, read_after=600)
    consent(chitra, "opt_out", sent + timedelta(days=2))  # opted out 2 days after: counts
    sent = at(DAY1, "12:00:00")
    message(sent, State.FAILED, customer=dev, sent_at=sent, code="131026")  # sent, then failed
    message(at(DAY1, "12:30:00"), State.FAILED, customer=dev, code="131026")  # never sent
    # Day 1, order_shipped/hi/woocommerce: two suppressed, one sent after midnight.
    woo = {"language": "hi", "source": "woocommerce"}
    message(at(DAY1, "13:00:00"), State.SUPPRESSED, reason="invalid_phone", **woo)
    message(at(DAY1, "14:00:00"), State.SUPPRESSED, reason="opted_out", **woo)
    message(at(DAY1, "23:30:00"), State.DELIVERED, customer=chitra,
            sent_at=at(DAY2, "00:10:00"), delivered_after=60, **woo)  # fmt: skip
    # Day 1, order_placed/hi/woocommerce: deferred by quiet hours.
    message(at(DAY1, "22:00:00"), State.DEFERRED, template="order_placed", customer=bilal,
            reason="quiet_hours", **woo)  # fmt: skip
    # Day 1, a free-form reply, sent after Asha's message: not itself replied to.
    sent = at(DAY1, "12:05:00")
    message(sent, State.SENT, template=None, language=None, source=None,
            category=Category.SERVICE, customer=asha, sent_at=sent)  # fmt: skip
    consent(asha, "opt_in", at(DAY1, "13:00:00"))  # an opt-in is not an opt-out
    # Day 2, order_shipped/en/shopify: delivered after 30 and 90 s, one read after 90 s.
    sent = at(DAY2, "08:00:00")
    message(sent, State.READ, customer=bilal, sent_at=sent, delivered_after=30, read_after=90)
    sent = at(DAY2, "09:00:00")
    message(sent, State.DELIVERED, customer=dev, sent_at=sent, delivered_after=90)
    # Day 2, a campaign: one sent, one failed after sending (Bilal wrote 6 h later).
    campaign = {"template": "diwali_sale", "source": None, "category": Category.MARKETING}
    sent = at(DAY2, "10:00:00")
    message(sent, State.SENT, customer=asha, sent_at=sent, **campaign)
    message(sent, State.FAILED, customer=bilal, sent_at=sent, code="131050", **campaign)
    # Day 3: outside the reports' range.
    message(at(DAY3, "10:00:00"), State.QUEUED, customer=asha)


def zeroes(**values) -> dict:
    base = {
        "messages": 0,
        "sent": 0,
        "delivered": 0,
        "read": 0,
        "failed": 0,
        "suppressed": 0,
        "deferred": 0,
        "failed_by_code": {},
        "suppressed_by_reason": {},
        "replied_24h": 0,
        "opted_out_7d": 0,
        "delivery_seconds_median": None,
        "read_seconds_median": None,
    }
    return {**base, **values}


EXPECTED_ROWS = {
    (DAY1, "order_shipped", "en", "shopify", "utility"): zeroes(
        messages=5,
        sent=4,
        delivered=3,
        read=2,
        failed=2,
        failed_by_code={"131026": 2},
        replied_24h=1,
        opted_out_7d=1,
        delivery_seconds_median=120.0,
        read_seconds_median=2100.0,  # (600 + 3600) / 2
    ),
    (DAY1, "order_shipped", "hi", "woocommerce", "utility"): zeroes(
        messages=3,
        sent=1,
        delivered=1,
        suppressed=2,
        suppressed_by_reason={"invalid_phone": 1, "opted_out": 1},
        opted_out_7d=1,  # Chitra opted out within 7 days of 00:10 on day 2
        delivery_seconds_median=60.0,
    ),
    (DAY1, "order_placed", "hi", "woocommerce", "utility"): zeroes(messages=1, deferred=1),
    (DAY1, "", "", "", "service"): zeroes(messages=1, sent=1),
    (DAY2, "order_shipped", "en", "shopify", "utility"): zeroes(
        messages=2,
        sent=2,
        delivered=2,
        read=1,
        replied_24h=1,  # Bilal wrote 8 h after
        delivery_seconds_median=60.0,  # (30 + 90) / 2
        read_seconds_median=90.0,
    ),
    (DAY2, "diwali_sale", "en", "", "marketing"): zeroes(
        messages=2,
        sent=2,
        failed=1,
        failed_by_code={"131050": 1},
        replied_24h=1,  # Bilal wrote 6 h after
    ),
    (DAY3, "order_shipped", "en", "shopify", "utility"): zeroes(messages=1),
}


def stored_rows() -> dict:
    fields = list(zeroes())
    return {
        (row.day, row.template, row.language, row.source, row.category): {
            name: getattr(row, name) for name in fields
        }
        for row in DailyStat.select()
    }


def test_rollup_matches_the_hand_computed_fixture(fixture_messages):
    written = sum(rollup_day(day, NOW) for day in (DAY1, DAY2, DAY3))
    assert written == len(EXPECTED_ROWS)
    assert stored_rows() == EXPECTED_ROWS
    assert {row.variant for row in DailyStat.select()} == {""}


def test_summary_by_day_matches_the_hand_computed_fixture(fixture_messages):
    rollup_recent(NOW, days=11)
    report = summary(DAY1, DAY2, "day")
    assert report["rows"] == [
        {
            "key": "2024-03-04",
            "messages": 10,
            "sent": 6,
            "delivered": 4,
            "read": 2,
            "failed": 2,
            "suppressed": 2,
            "delivery_rate": 0.6667,
            "read_rate": 0.5,
            "replied_24h": 1,
            "opted_out_7d": 2,
            "failed_by_code": {"131026": 2},
            "suppressed_by_reason": {"invalid_phone": 1, "opted_out": 1},
            "delivery_seconds_median": 120.0,  # medians 120 (x3) and 60 (x1)
            "read_seconds_median": 2100.0,
        },
        {
            "key": "2024-03-05",
            "messages": 4,
            "sent": 4,
            "delivered": 2,
            "read": 1,
            "failed": 1,
            "suppressed": 0,
            "delivery_rate": 0.5,
            "read_rate": 0.5,
            "replied_24h": 2,
            "opted_out_7d": 0,
            "failed_by_code": {"131050": 1},
            "suppressed_by_reason": {},
            "delivery_seconds_median": 60.0,
            "read_seconds_median": 90.0,
        },
    ]
    assert report["totals"] == {
        "messages": 14,
        "sent": 10,
        "delivered": 6,
        "read": 3,
        "failed": 3,
        "suppressed": 2,
        "delivery_rate": 0.6,
        "read_rate": 0.5,
        "replied_24h": 3,
        "opted_out_7d": 2,
        "failed_by_code": {"131026": 2, "131050": 1},
        "suppressed_by_reason": {"invalid_phone": 1, "opted_out": 1},
        # Medians 120 (x3), 60 (x1), 60 (x2): 90, where the true median of the six
        # samples is 75 -- the documented approximation across rollup rows.
        "delivery_seconds_median": 90.0,
        "read_seconds_median": 2100.0,  # 2100 (x2), 90 (x1)
    }


@pytest.mark.parametrize(
    ("group_by", "expected"),
    [
        # key: (messages, sent, delivered, read, delivery_rate, read_rate, replied, opted out)
        (
            "template",
            {
                "": (1, 1, 0, 0, 0.0, None, 0, 0),
                "diwali_sale": (2, 2, 0, 0, 0.0, None, 1, 0),
                "order_placed": (1, 0, 0, 0, None, None, 0, 0),
                "order_shipped": (10, 7, 6, 3, 0.8571, 0.5, 2, 2),
            },
        ),
        (
            "language",
            {
                "": (1, 1, 0, 0, 0.0, None, 0, 0),
                "en": (9, 8, 5, 3, 0.625, 0.6, 3, 1),
                "hi": (4, 1, 1, 0, 1.0, 0.0, 0, 1),
            },
        ),
        (
            "source",
            {
                "": (3, 3, 0, 0, 0.0, None, 1, 0),
                "shopify": (7, 6, 5, 3, 0.8333, 0.6, 2, 1),
                "woocommerce": (4, 1, 1, 0, 1.0, 0.0, 0, 1),
            },
        ),
        (
            "category",
            {
                "marketing": (2, 2, 0, 0, 0.0, None, 1, 0),
                "service": (1, 1, 0, 0, 0.0, None, 0, 0),
                "utility": (11, 7, 6, 3, 0.8571, 0.5, 2, 2),
            },
        ),
    ],
)
def test_summary_breaks_down_by_template_language_source_and_category(
    fixture_messages, group_by, expected
):
    rollup_recent(NOW, days=11)
    rows = summary(DAY1, DAY2, group_by)["rows"]
    names = (
        "messages",
        "sent",
        "delivered",
        "read",
        "delivery_rate",
        "read_rate",
        "replied_24h",
        "opted_out_7d",
    )
    assert {row["key"]: tuple(row[name] for name in names) for row in rows} == expected


def test_median_across_rollup_rows_weighs_each_rows_median_by_its_count():
    assert weighted_median([(120.0, 3), (60.0, 1), (60.0, 2)]) == 90.0
    assert weighted_median([(2100.0, 2), (90.0, 1)]) == 2100.0
    assert weighted_median([(5.0, 1)]) == 5.0
    assert weighted_median([(None, 3), (7.0, 0)]) is None


def test_rollup_is_idempotent_and_replaces_the_days_rows(fixture_messages):
    rollup_day(DAY1, NOW)
    rollup_day(DAY1, NOW)
    assert DailyStat.select().where(DailyStat.day == DAY1).count() == 4
    Message.update(state=State.SUPPRESSED, reason="cancelled").where(
        Message.state == State.DEFERRED
    ).execute()
    rollup_day(DAY1, NOW)
    placed = DailyStat.get(template="order_placed")
    assert (placed.deferred, placed.suppressed, placed.suppressed_by_reason) == (
        0,
        1,
        {"cancelled": 1},
    )


def test_summary_reads_only_the_rollup(fixture_messages):
    rollup_recent(NOW, days=11)
    before = summary(DAY1, DAY2, "template")
    Message.delete().execute()
    OrderEvent.delete().execute()
    assert summary(DAY1, DAY2, "template") == before
    rollup_day(DAY1, NOW)  # a rollup now finds nothing for the day
    assert summary(DAY1, DAY1, "day") == {"rows": [], "totals": zeroes_summary()}


def zeroes_summary() -> dict:
    values = zeroes(delivery_rate=None, read_rate=None)
    del values["deferred"]
    return values


def test_recent_rollup_covers_today_and_the_seven_days_before(app):
    customer = Customer.create(phone="+919812345699")
    for back in (0, 7, 8):
        message(NOW - timedelta(days=back), State.QUEUED, customer=customer)
    assert rollup_recent(NOW) == 2
    assert sorted(row.day for row in DailyStat.select()) == [
        NOW.date() - timedelta(days=7),
        NOW.date(),
    ]


def test_the_rollup_job_and_command_write_todays_rows(app, runner):
    message(utcnow(), State.QUEUED)
    assert rollup() == 1
    result = runner.invoke(args=["rollup", "--days", "8"])
    assert result.exit_code == 0, result.output
    assert "wrote 1 rollup rows" in result.output
    assert DailyStat.select().count() == 1


def test_admin_analytics_answers_the_summary(client, fixture_messages):
    rollup_recent(NOW, days=11)
    response = client.get(
        "/admin/api/analytics?from=2024-03-04&to=2024-03-05&group_by=source", headers=VIEWER
    )
    assert response.status_code == 200
    assert response.get_json() == summary(DAY1, DAY2, "source")
    by_day = client.get("/admin/api/analytics?from=2024-03-04&to=2024-03-04", headers=ADMIN)
    assert [row["key"] for row in by_day.get_json()["rows"]] == ["2024-03-04"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2024-13-01&to=2024-03-05", "from"),
        ("from=2024-03-05&to=yesterday", "to"),
        ("from=2024-03-05&to=2024-03-04", "to"),
        ("from=2024-01-01&to=2025-01-01", "to"),  # 367 days
        ("from=2024-03-04&to=2024-03-05&group_by=phone", "group_by"),
        ("from=2024-03-04&to=2024-03-05&colour=red", "colour"),
    ],
)
def test_admin_analytics_query_is_validated_naming_the_field(client, query, field):
    response = client.get(f"/admin/api/analytics?{query}", headers=ADMIN)
    assert response.status_code == 400
    assert field in response.get_json()["error"]["fields"]


def test_a_full_year_is_allowed(client):
    response = client.get("/admin/api/analytics?from=2024-01-01&to=2024-12-31", headers=ADMIN)
    assert response.status_code == 200


def test_admin_analytics_needs_credentials(client):
    response = client.get("/admin/api/analytics?from=2024-03-04&to=2024-03-05")
    assert response.status_code == 401
