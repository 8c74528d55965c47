"""Migrations: applied in order by the release phase, and they build exactly the schema
the models describe (on SQLite and on PostgreSQL)."""

from __future__ import annotations

from playhouse.schema_diff import diff_models

from bot.core.models import ALL_MODELS, db


def test_migrated_schema_matches_the_models(app):
    diff = diff_models(db.obj, ALL_MODELS)
    assert not diff, diff


def test_every_model_is_listed_so_it_is_migrated_checked_and_truncated():
    from bot.core.models import BaseModel

    assert set(BaseModel.__subclasses__()) == set(ALL_MODELS)


def test_the_identities_migration_keeps_every_row_and_lets_a_customer_have_no_phone(app):
    """0015: customers, messages and inbound messages written before it keep every value;
    afterwards a customer may be known by a BSUID alone (PROVIDERS.md §9.1)."""
    from datetime import datetime

    from playhouse.migrations import Runner

    from bot.core.models import MIGRATIONS_DIR, Customer, InboundMessage, Message

    runner = Runner(db.obj, MIGRATIONS_DIR)
    runner.down("0015_customer_identities")
    try:
        asha = Customer.create(phone="+919811122233", name="Asha", opted_out=True)
        Message.create(customer=asha, phone=asha.phone, dedupe_key="k1", kind="order_shipped")
        InboundMessage.create(
            provider="meta",
            provider_message_id="wamid.1",
            phone=asha.phone,
            customer=asha,
            type="text",
            text="STOP",
            occurred_at=datetime(2026, 4, 1, 9, 0),
        )
    finally:
        runner.up()
    kept = Customer.get_by_id(asha.id)
    assert (kept.phone, kept.name, kept.opted_out, kept.user_id) == (
        "+919811122233",
        "Asha",
        True,
        None,
    )
    assert Message.get(Message.dedupe_key == "k1").phone == "+919811122233"
    assert InboundMessage.get(InboundMessage.provider_message_id == "wamid.1").text == "STOP"
    username_user = Customer.create(phone=None, user_id="US.13491208655302741918")
    assert Customer.get(Customer.user_id == "US.13491208655302741918").id == username_user.id
    assert not diff_models(db.obj, ALL_MODELS)


def test_the_route_migration_keeps_every_message_on_the_usual_api(app):
    """0019: messages written before it keep every value and went through /messages."""
    from playhouse.migrations import Runner

    from bot.core.models import MIGRATIONS_DIR, Customer, Message

    runner = Runner(db.obj, MIGRATIONS_DIR)
    runner.down("0019_message_route")
    try:
        asha = Customer.create(phone="+919811122233")
        Message.insert(
            customer=asha,
            phone=asha.phone,
            dedupe_key="k1",
            kind="campaign",
            category="marketing",
            template_name="diwali_sale",
            state="sent",
            provider_message_id="wamid.1",
        ).execute()
    finally:
        runner.up()
    kept = Message.get(Message.dedupe_key == "k1")
    assert (kept.category, kept.template_name, kept.state, kept.provider_message_id) == (
        "marketing",
        "diwali_sale",
        "sent",
        "wamid.1",
    )
    assert kept.route is None
    assert not diff_models(db.obj, ALL_MODELS)


def test_the_pricing_migration_prices_the_receipts_stored_before_it(app):
    """0020: each Meta message's first stored receipt with `pricing` becomes its
    message_pricing row (country from the recipient's number or BSUID); receipts without
    pricing, or with pricing that says nothing, price nothing; every receipt is kept."""
    from datetime import datetime

    from playhouse.migrations import Runner

    from bot.core.models import MIGRATIONS_DIR, MessagePricing, StatusEvent

    utility = {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "UTILITY"}
    receipts = [
        ("wamid.A", "sent", {"recipient_id": "919812345678", "pricing": utility}),
        (
            "wamid.A",
            "delivered",
            {"recipient_id": "919812345678", "pricing": {**utility, "billable": False}},
        ),
        (
            "wamid.B",
            "sent",
            {
                "recipient_user_id": "BR.1234567890",
                "pricing": {"billable": False, "category": "service"},
            },
        ),
        ("wamid.C", "sent", {"recipient_id": "919812345678"}),
        ("wamid.D", "sent", {"recipient_id": "919812345678", "pricing": {"billable": "yes"}}),
    ]
    runner = Runner(db.obj, MIGRATIONS_DIR)
    runner.down("0020_message_pricing")
    try:
        for n, (wamid, status, payload) in enumerate(receipts):
            StatusEvent.create(
                provider="meta",
                provider_message_id=wamid,
                status=status,
                dedupe_key=f"{wamid}:{status}",
                occurred_at=datetime(2026, 11, 3, 9, n),
                payload={"id": wamid, "status": status, **payload},
            )
    finally:
        runner.up()
    priced = {
        row.provider_message_id: (
            row.billable,
            row.category,
            row.type,
            row.pricing_model,
            row.country,
            row.priced_at,
        )
        for row in MessagePricing.select()
    }
    assert priced == {
        "wamid.A": (True, "utility", "regular", "PMP", "IN", datetime(2026, 11, 3, 9, 0)),
        "wamid.B": (False, "service", None, None, "BR", datetime(2026, 11, 3, 9, 2)),
    }
    assert StatusEvent.select().count() == len(receipts)
    assert not diff_models(db.obj, ALL_MODELS)


def test_the_language_evidence_migration_keeps_every_customer_and_calls_old_languages_hints(app):
    """0022: a customer's stored language is kept; its source is unknown (None), which
    counts as a hint like a storefront locale, never as the customer's choice."""
    from playhouse.migrations import Runner

    from bot.core.languages import preferred_languages
    from bot.core.models import MIGRATIONS_DIR, Customer

    runner = Runner(db.obj, MIGRATIONS_DIR)
    runner.down("0022_language_evidence")
    try:
        Customer.insert(phone="+919811122233", name="Asha", language="hi").execute()
    finally:
        runner.up()
    kept = Customer.get(Customer.phone == "+919811122233")
    assert (kept.name, kept.language, kept.language_source, kept.written_language) == (
        "Asha",
        "hi",
        None,
        None,
    )
    assert preferred_languages(kept, "en") == [None, None, "hi", "en"]
    assert not diff_models(db.obj, ALL_MODELS)


def test_the_event_key_migration_keeps_every_order_event_and_leaves_old_ones_keyless(app):
    """0023: order events stored before it keep their dedupe key (their webhook id) and
    have no event key; a later delivery of the same event is still a duplicate by it."""
    from playhouse.migrations import Runner

    from bot.core.models import MIGRATIONS_DIR, OrderEvent

    runner = Runner(db.obj, MIGRATIONS_DIR)
    runner.down("0023_order_event_key")
    try:
        OrderEvent.insert(
            source="shopify",
            dedupe_key="shopify:wh-old-1",
            external_event_id="evt-old-1",
            topic="orders/create",
            payload={"id": 1},
        ).execute()
    finally:
        runner.up()
    kept = OrderEvent.get(OrderEvent.dedupe_key == "shopify:wh-old-1")
    assert (kept.external_event_id, kept.event_key, kept.payload) == ("evt-old-1", None, {"id": 1})
    assert not diff_models(db.obj, ALL_MODELS)
