"""The one way to create message and customer rows (bot/core/rows.py): once per dedupe key,
once per phone number, whatever repeats or races, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.core.models import Category, Customer, Message, State
from bot.core.rows import get_or_create_customer, insert_message, insert_messages

NOW = datetime(2026, 12, 2, 9, 30)
LATER = NOW + timedelta(hours=1)
ASHA = "+919812345678"


def message(key: str, text: str = "hello", **fields) -> Message:
    return Message(
        phone=ASHA,
        dedupe_key=key,
        kind="reply",
        text=text,
        created_at=NOW,
        updated_at=NOW,
        **fields,
    )


def test_a_message_is_inserted_once_per_dedupe_key(app):
    first, again = message("reply:1", "first"), message("reply:1", "second")
    assert insert_message(first) is True
    assert insert_message(again) is False
    assert again.id is None
    [stored] = Message.select()
    assert (stored.id, stored.text) == (first.id, "first")
    assert not first.dirty_fields  # saved: a later save() writes only what changes


def test_an_inserted_message_has_the_models_defaults(app):
    row = message("reply:1")
    insert_message(row)
    stored = Message.get_by_id(row.id)
    assert (stored.state, stored.category, stored.queue, stored.attempts) == (
        State.QUEUED,
        Category.UTILITY,
        "orders",
        0,
    )


def test_a_batch_inserts_the_messages_whose_key_is_free_in_the_order_given(app):
    insert_message(message("campaign:1:2", "earlier"))
    batch = [
        message("campaign:1:3", "c"),
        message("campaign:1:2", "taken"),
        message("campaign:1:1", "a"),
        message("campaign:1:3", "repeated"),
    ]
    inserted = insert_messages(batch)
    assert [m.text for m in inserted] == ["c", "a"]
    by_key = {m.dedupe_key: (m.id, m.text) for m in Message.select()}
    assert by_key == {
        "campaign:1:1": (batch[2].id, "a"),
        "campaign:1:2": (by_key["campaign:1:2"][0], "earlier"),
        "campaign:1:3": (batch[0].id, "c"),
    }
    assert batch[1].id is None and batch[3].id is None


def test_batches_of_every_size_are_inserted(app):
    sizes = [3, 1, 3, 2]
    made = [
        insert_messages([message(f"campaign:{run}:{i}") for i in range(size)])
        for run, size in enumerate(sizes)
    ]
    assert [len(m) for m in made] == sizes
    assert insert_messages([]) == []
    assert Message.select().count() == sum(sizes)


def test_a_customer_is_created_once_per_number_with_its_time_zone(app):
    customer, created = get_or_create_customer(ASHA, NOW, salt="", name="Asha", language="hi")
    assert created
    assert (customer.phone, customer.name, customer.language, customer.timezone) == (
        ASHA,
        "Asha",
        "hi",
        "Asia/Kolkata",
    )
    assert customer.created_at == customer.updated_at == NOW and not customer.dirty_fields
    known, created = get_or_create_customer(
        ASHA, LATER, salt="", name="Someone Else", language="en"
    )
    assert not created
    assert (known.id, known.name, known.language, known.updated_at) == (
        customer.id,
        "Asha",
        "hi",
        NOW,
    )
    assert Customer.select().count() == 1


def test_a_given_time_zone_and_tags_are_kept(app):
    customer, _ = get_or_create_customer(ASHA, NOW, salt="", timezone="Europe/London", tags=["vip"])
    stored = Customer.get_by_id(customer.id)
    assert (stored.timezone, stored.tags, stored.opted_out) == ("Europe/London", ["vip"], False)


def test_renaming_takes_the_new_name_and_moves_updated_at_only_when_it_changed(app):
    get_or_create_customer(ASHA, NOW, salt="", rename=True, name="Asha")
    renamed, created = get_or_create_customer(ASHA, LATER, salt="", rename=True, name="Asha K")
    assert not created and (renamed.name, renamed.updated_at) == ("Asha K", LATER)
    same, _ = get_or_create_customer(
        ASHA, LATER + timedelta(1), salt="", rename=True, name="Asha K"
    )
    nameless, _ = get_or_create_customer(
        ASHA, LATER + timedelta(2), salt="", rename=True, name=None
    )
    assert (same.name, same.updated_at) == (nameless.name, nameless.updated_at) == ("Asha K", LATER)
    assert Customer.get(Customer.phone == ASHA).name == "Asha K"


def test_a_customer_with_no_name_gets_the_first_name_given_when_renamed(app):
    get_or_create_customer(ASHA, NOW, salt="")
    named, _ = get_or_create_customer(ASHA, LATER, salt="", rename=True, name="Asha")
    assert (named.name, named.updated_at) == ("Asha", LATER)
