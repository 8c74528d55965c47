"""The one way to create a message row and a customer row.

Every message row carries a unique `dedupe_key` saying what it is for (an order's
shipment, a campaign's customer, a reminder, an alert, a reply), and every customer a
unique phone number. Creating one is therefore an `INSERT … ON CONFLICT DO NOTHING
RETURNING`: a redelivery, a re-run job or a racing twin creates nothing, with no
check-then-insert race and no IntegrityError to catch (a known customer is then read
back). The SQL is compiled once per database (bot/core/statements.py: this is the order
webhook's hot path).

A number whose owner was erased (bot/policy/privacy.py) is never a customer again:
`get_or_create_customer` refuses it (`Erased`), whoever asks — an order, a customer's
message, a WhatsApp preference, a CSV row, an admin, an alert channel.

Core level: it imports only models, statements, phones and the suppression list, so
every caller is above it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from peewee import Case, Query

from bot.core import phones, zones
from bot.core.models import Customer, Message, OrderEvent
from bot.core.statements import BatchStatement, Statement, columns, insert_ignoring, row_values
from bot.core.suppression import is_suppressed


class Erased(Exception):
    """The number's owner was erased: Dakiya keeps no customer for it again."""


def insert_message(message: Message) -> bool:
    """Insert the unsaved `message` unless a row with its dedupe key exists.

    True when it was inserted (its `id` is then set); False when the key was already
    taken, by an earlier delivery or by a transaction racing this one (which then
    waited for it): the caller's "once" holds either way.
    """
    inserted = MESSAGE_INSERT.execute(row_values(message)).fetchone()
    if inserted is None:
        return False
    message.id = inserted[0]
    message._dirty.clear()
    return True


def insert_messages(messages: Sequence[Message]) -> list[Message]:
    """`insert_message` for a batch (a campaign's), in one statement: the messages that
    were inserted, in the order given, their ids set; those whose dedupe key was taken
    (or repeats within the batch) are left out."""
    if not messages:
        return []
    cursor = MESSAGES_INSERT.execute([row_values(message) for message in messages])
    ids = {dedupe_key: message_id for message_id, dedupe_key in cursor.fetchall()}
    inserted = []
    for message in messages:
        if message.dedupe_key in ids:
            message.id = ids.pop(message.dedupe_key)
            message._dirty.clear()
            inserted.append(message)
    return inserted


def get_or_create_customer(
    phone: str, now: datetime, *, salt: str, rename: bool = False, **facts: Any
) -> tuple[Customer, bool]:
    """The customer with the E.164 `phone`, and whether this call created it.

    Raises `Erased`, creating nothing, when the number is on the suppression list
    (`salt` is SUPPRESSION_SALT): the caller acknowledges and drops what it was storing.

    A new customer gets `facts` (name, language, timezone, tags; the time zone defaults
    to the number's) and `now` as created and updated time. A known one is left as it
    is, unless `rename`: then it takes `facts["name"]` when given and different (the
    shop's latest spelling), and `updated_at` moves only if it did.

    A new number costs two statements (the suppression check, the insert); a known one
    three (the check, the insert that did nothing, then the read or the rename).
    """
    if is_suppressed(phone, salt):
        raise Erased("the number's owner was erased")
    new = Customer(
        phone=phone,
        **{**facts, "timezone": zones.canonical(facts.get("timezone")) or phones.time_zone(phone)},
        created_at=now,
        updated_at=now,
    )
    values = row_values(new)
    for _ in range(3):  # a known row erased between our two statements: insert again
        (created,) = CUSTOMER_INSERT.rows(values) or (None,)
        if created is not None:
            return created, True
        found = CUSTOMER_RENAME if rename and new.name is not None else CUSTOMER_BY_PHONE
        (existing,) = found.rows(values) or (None,)
        if existing is not None:
            return existing, False
    raise LookupError(f"customer {phones.mask(phone)} kept disappearing")


def get_or_create_bsuid_customer(
    user_id: str, now: datetime, *, salt: str, **facts: Any
) -> tuple[Customer, bool]:
    """`get_or_create_customer` for a WhatsApp username user known only by their BSUID
    (PROVIDERS.md §9.1): no phone, so no time zone from the number. Not a hot path (one
    insert that may do nothing, then the read); raises `Erased` like the other."""
    if is_suppressed(user_id, salt):
        raise Erased("the BSUID's owner was erased")
    values = {**facts, "user_id": user_id, "created_at": now, "updated_at": now}
    for _ in range(3):
        created = (
            Customer.insert(values)
            .on_conflict(action="NOTHING", conflict_target=[Customer.user_id])
            .returning(Customer)
            .execute()
        )
        if created := list(created):
            return created[0], True
        existing = Customer.get_or_none(Customer.user_id == user_id)
        if existing is not None:
            return existing, False
    raise LookupError("a BSUID customer kept disappearing")


def _message_insert(values: dict) -> Query:
    return (
        Message.insert(values)
        .on_conflict(action="NOTHING", conflict_target=[Message.dedupe_key])
        .returning(Message.id)
    )


def _customer_insert(values: dict) -> Query:
    return (
        Customer.insert(values)
        .on_conflict(action="NOTHING", conflict_target=[Customer.phone])
        .returning(Customer)
    )


def _customer_by_phone(values: dict) -> Query:
    return Customer.select().where(Customer.phone == values["phone"])


def _customer_rename(values: dict) -> Query:
    # SET's right-hand sides all read the row as it was, so the CASE sees the old name.
    renamed = Customer.name.is_null() | (Customer.name != values["name"])
    return (
        Customer.update(
            {
                Customer.name: values["name"],
                Customer.updated_at: Case(
                    None, [(renamed, values["updated_at"])], Customer.updated_at
                ),
            }
        )
        .where(Customer.phone == values["phone"])
        .returning(Customer)
    )


# Compiled once per database (bot/core/statements.py says why).
MESSAGE_INSERT = Statement(Message, columns(Message), _message_insert)
MESSAGES_INSERT = BatchStatement(
    Message, columns(Message), insert_ignoring(Message.dedupe_key, Message.id, Message.dedupe_key)
)
CUSTOMER_INSERT = Statement(Customer, columns(Customer), _customer_insert)
CUSTOMER_BY_PHONE = Statement(Customer, [Customer.phone], _customer_by_phone)
CUSTOMER_RENAME = Statement(
    Customer,
    [Customer.name, Customer.name, Customer.updated_at, Customer.phone],
    _customer_rename,
)


def first_delivery(source: str, dedupe_key: str, topic: str, now: datetime) -> bool:
    """Record a shop delivery that is not an order event (a consent change, a privacy
    request) by its dedupe key, keeping nothing of what it said; False when it was
    recorded before (a redelivery, also one racing this one: one INSERT settles it)."""
    inserted = (
        OrderEvent.insert(
            source=source,
            dedupe_key=dedupe_key,
            topic=topic,
            kind=None,
            payload={},
            received_at=now,
        )
        .on_conflict(action="NOTHING", conflict_target=[OrderEvent.dedupe_key])
        .returning(OrderEvent.id)
        .execute()
    )
    return bool(list(inserted))
