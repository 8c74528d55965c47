"""Customers' data rights: an export holds everything about one number and nothing about
anyone else; erasure forgets it all but keeps the number blocked (as a salted hash
only); retention blanks old texts and keeps the counts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.core.config import ConfigError, Settings, validate
from bot.core.models import (
    AuditLog,
    ConsentEvent,
    Customer,
    InboundMessage,
    Message,
    Order,
    OrderEvent,
    State,
    StatusEvent,
    Suppression,
    UnhandledUpdate,
    db,
    utcnow,
)
from bot.delivery import unhandled
from bot.delivery.providers.base import Unhandled, UnhandledItem
from bot.policy import consent
from bot.policy.privacy import (
    erase_customer,
    export_customer,
    is_suppressed,
    redact_old_messages,
    suppression_hash,
)
from tests.factories import queued_message

ASHA = "+919812345678"
RAVI = "+919876543210"
SALT = "test-suppression-salt"
KINDS = (
    "consent_events",
    "orders",
    "order_events",
    "messages",
    "status_events",
    "inbound_messages",
    "unhandled_updates",
)


def customer_with_history(phone: str, order_id: str, run_jobs) -> Customer:
    """A customer with a delivered order update (and its receipts), a message they sent
    us, and a consent change: one row of every kind we hold."""
    message = queued_message(phone=phone, event_id=f"evt-{order_id}", order_id=order_id)
    run_jobs()
    customer = Customer.get_by_id(message.customer_id)
    InboundMessage.create(
        provider="meta",
        provider_message_id=f"wamid.IN-{order_id}",
        phone=phone,
        customer=customer,
        type="text",
        text=f"where is my order, I am {phone}",
        payload={"from": phone.lstrip("+"), "text": {"body": "where is my order"}},
        occurred_at=utcnow(),
        handled=True,
    )
    consent.record_opt_in(customer, consent.MARKETING, "keyword", {"from": phone}, utcnow())
    # A marketing preference Meta sent that Dakiya does not act on, kept raw.
    preference = {"wa_id": phone.lstrip("+"), "value": "signup", "timestamp": "1764000300"}
    unhandled.record(
        [
            UnhandledItem(
                "meta", "user_preference", Unhandled.UNKNOWN_VALUE, "signup", preference, "x", phone
            )
        ],
        utcnow(),
    )
    return customer


def all_text_in_database() -> str:
    """Every value of every row of every table, as one string."""
    values = []
    for table in db.get_tables():
        cursor = db.execute_sql(f'SELECT * FROM "{table}"')
        values += [str(value) for row in cursor.fetchall() for value in row]
    return "\n".join(values)


@pytest.fixture
def two_customers(app, run_jobs):
    return (
        customer_with_history(ASHA, "1042", run_jobs),
        customer_with_history(RAVI, "2077", run_jobs),
    )


def test_export_holds_every_kind_of_row_for_that_phone_and_nothing_of_another(two_customers):
    exported = export_customer(ASHA)
    assert exported["customer"]["phone"] == ASHA
    for kind in KINDS:
        assert exported[kind], f"no {kind} exported"
    assert {m["phone"] for m in exported["messages"]} == {ASHA}
    assert {o["external_id"] for o in exported["orders"]} == {"1042"}
    assert exported["inbound_messages"][0]["text"].startswith("where is my order")
    assert exported["order_events"][0]["payload"] == {"event_id": "evt-1042"}
    assert {e["status"] for e in exported["status_events"]} >= {"sent", "delivered", "read"}
    assert "9876543210" not in str(exported) and "2077" not in str(exported)


def test_export_is_plain_json(two_customers):
    import json

    json.dumps(export_customer(ASHA))


def test_export_of_an_unknown_number_is_none(app):
    assert export_customer("+447911123456") is None


def test_erasure_deletes_everything_and_leaves_no_raw_phone_in_the_database(two_customers):
    assert "9812345678" in all_text_in_database()
    result = erase_customer(ASHA, SALT, "admin", utcnow())

    assert result["erased"]["customers"] == 1
    assert all(result["erased"][kind] for kind in KINDS)
    assert export_customer(ASHA) is None
    stored = all_text_in_database()
    assert "9812345678" not in stored
    assert "9876543210" in stored  # the other customer is untouched
    assert export_customer(RAVI)["orders"][0]["external_id"] == "2077"


def test_erasure_keeps_only_a_salted_hash_and_the_number_stays_suppressed(two_customers):
    assert not is_suppressed(ASHA, SALT)
    erase_customer(ASHA, SALT, "admin", utcnow())

    assert is_suppressed(ASHA, SALT)
    assert is_suppressed("+91 98123 45678", SALT)  # the same digits
    assert not is_suppressed(RAVI, SALT)
    assert not is_suppressed(ASHA, "another-salt")
    assert Suppression.get().phone_hash == suppression_hash(ASHA, SALT)
    assert suppression_hash(ASHA, SALT) != suppression_hash(ASHA, "")


def test_erasure_writes_an_audit_row_that_does_not_identify_the_customer(two_customers):
    now = utcnow()
    erase_customer(ASHA, SALT, "dpo", now)

    entry = AuditLog.get()
    assert (entry.actor, entry.action, entry.created_at) == ("dpo", "erase", now)
    assert entry.subject == suppression_hash(ASHA, SALT)
    assert entry.details["messages"] == 1 and entry.details["customers"] == 1


def test_erasing_twice_or_an_unknown_number_records_the_block_and_changes_nothing(
    two_customers,
):
    erase_customer(ASHA, SALT, "admin", utcnow())
    again = erase_customer(ASHA, SALT, "admin", utcnow())
    stranger = erase_customer("+447911123456", SALT, "admin", utcnow())

    assert set(again["erased"].values()) == {0}
    assert set(stranger["erased"].values()) == {0}
    assert Suppression.select().count() == 2
    assert is_suppressed("+447911123456", SALT)
    assert AuditLog.select().count() == 3
    assert Customer.select().count() == 1


def test_erasure_keeps_an_order_another_customers_message_refers_to(two_customers):
    asha, ravi = two_customers
    Message.update(order=Order.get(Order.external_id == "1042")).where(
        Message.customer == ravi
    ).execute()

    erase_customer(ASHA, SALT, "admin", utcnow())

    assert Order.select().where(Order.external_id == "1042").exists()
    assert Message.select().where(Message.customer == ravi).count() == 1


def test_retention_blanks_only_old_texts_and_keeps_states_and_counts(two_customers):
    asha, ravi = two_customers
    long_ago = utcnow() - timedelta(days=200)
    Message.update(created_at=long_ago, text="hello", error_text="x").where(
        Message.customer == asha
    ).execute()
    InboundMessage.update(received_at=long_ago).where(InboundMessage.customer == asha).execute()
    asha_message = Message.get(Message.customer == asha)
    OrderEvent.update(received_at=long_ago).where(
        OrderEvent.id == asha_message.order_event_id
    ).execute()
    StatusEvent.update(received_at=long_ago).where(StatusEvent.message == asha_message).execute()
    counts = {m: m.select().count() for m in (Message, InboundMessage, OrderEvent, StatusEvent)}

    redacted = redact_old_messages(utcnow(), 180)

    assert (
        redacted
        == 1 + 1 + 1 + StatusEvent.select().where(StatusEvent.message == asha_message).count()
    )
    message = Message.get_by_id(asha_message.id)
    assert (message.text, message.params, message.error_text) == (None, None, None)
    assert (message.state, message.template_name, message.read_at) == (
        State.READ,
        asha_message.template_name,
        asha_message.read_at,
    )
    inbound = InboundMessage.get(InboundMessage.customer == asha)
    assert (inbound.text, inbound.payload, inbound.handled) == (None, None, True)
    assert OrderEvent.get_by_id(asha_message.order_event_id).payload == {}
    assert all(e.payload is None for e in asha_message.status_events)
    assert {m: m.select().count() for m in counts} == counts
    # Ravi's recent rows keep everything.
    assert Message.get(Message.customer == ravi).params is not None
    assert InboundMessage.get(InboundMessage.customer == ravi).text is not None
    assert redact_old_messages(utcnow(), 180) == 0  # idempotent


def test_erasure_finds_an_unhandled_update_holding_the_number_anywhere_in_its_payload(
    two_customers,
):
    # A payload Dakiya could not read at all names no customer, but holds Asha's number.
    unreadable = {"object": "whatsapp_business_account", "entry": {"from": "919812345678"}}
    unhandled.record(
        [UnhandledItem("meta", "payload", Unhandled.MALFORMED, "payload.entry", unreadable)],
        utcnow(),
    )

    assert len(export_customer(ASHA)["unhandled_updates"]) == 2
    assert erase_customer(ASHA, SALT, "admin", utcnow())["erased"]["unhandled_updates"] == 2
    assert [row.phone for row in UnhandledUpdate.select()] == [RAVI]


def test_retention_blanks_old_unhandled_updates_and_keeps_their_reasons(two_customers):
    UnhandledUpdate.update(received_at=utcnow() - timedelta(days=200)).where(
        UnhandledUpdate.phone == ASHA
    ).execute()

    assert redact_old_messages(utcnow(), 180) == 1

    asha, ravi = UnhandledUpdate.select().order_by(UnhandledUpdate.id)
    assert (asha.payload, asha.phone, asha.reason) == (None, None, "unknown_value")
    assert (ravi.payload["wa_id"], ravi.phone) == ("919876543210", RAVI)


def test_retention_leaves_messages_still_on_their_way_alone(app):
    message = queued_message()
    Message.update(created_at=utcnow() - timedelta(days=400)).execute()
    redact_old_messages(utcnow(), 180)
    assert Message.get_by_id(message.id).params is not None


def test_zero_retention_days_keeps_everything(two_customers):
    Message.update(created_at=utcnow() - timedelta(days=4000)).execute()
    assert redact_old_messages(utcnow(), 0) == 0
    assert Message.select().where(Message.params.is_null()).count() == 0


def test_retention_works_in_batches(two_customers, monkeypatch):
    import bot.policy.privacy

    monkeypatch.setattr(bot.policy.privacy, "REDACT_BATCH", 1)
    StatusEvent.update(received_at=utcnow() - timedelta(days=200)).execute()
    assert redact_old_messages(utcnow(), 180) == StatusEvent.select().count()
    assert StatusEvent.select().where(StatusEvent.payload.is_null(False)).count() == 0


def test_redact_command_and_job_apply_retention_days(two_customers, runner):
    from jobs.retention import redact_expired

    Message.update(created_at=utcnow() - timedelta(days=200)).execute()
    result = runner.invoke(args=["redact"])
    assert result.exit_code == 0 and "redacted 2 rows" in result.output
    assert redact_expired() == 0


def test_consent_ledger_goes_with_the_customer(two_customers):
    erase_customer(ASHA, SALT, "admin", utcnow())
    assert ConsentEvent.select().count() == 1  # Ravi's


@pytest.mark.parametrize("provider", ["meta", "interakt"])
def test_suppression_salt_is_required_unless_sandbox(provider):
    settings = Settings(
        whatsapp_provider=provider,
        meta_access_token="t",
        meta_phone_number_id="1",
        meta_app_secret="s",
        meta_verify_token="v",
        interakt_api_key="k",
        interakt_webhook_secret="w",
        order_sources=(),
    )
    with pytest.raises(ConfigError, match="SUPPRESSION_SALT"):
        validate(settings)
    assert validate(settings.replace(suppression_salt="s")).suppression_salt == "s"
    assert validate(settings.replace(whatsapp_provider="sandbox"))


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"retention_days": -1}, "RETENTION_DAYS"),
        ({"public_base_url": "shop.in"}, "PUBLIC_BASE_URL"),
    ],
)
def test_privacy_settings_are_validated(changes, named):
    with pytest.raises(ConfigError, match=named):
        validate(Settings(order_sources=(), **changes))
