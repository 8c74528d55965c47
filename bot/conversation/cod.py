"""The customer's tap on the cash-on-delivery confirmation's Confirm or Cancel button
(issue 16 item 3): recorded once on the order, the unsent reminder withdrawn, and the
change owed to the shop queued as a `ShopWriteBack` for the write-back job
(bot/integrations/write_back.py). A tap on an order that has shipped or was cancelled
meanwhile, or a second tap, changes nothing and gets a polite answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.core.models import (
    Customer,
    Message,
    Order,
    Reason,
    ShopWriteBack,
    State,
)
from bot.core.notifications import COD_PAYLOAD, COD_REMINDER, COD_TOO_LATE

#: The two buttons' answers, by the word after "COD:" in their payload.
ANSWERS = {"CONFIRM": "confirmed", "CANCEL": "cancelled"}


@dataclass(frozen=True, slots=True)
class Tap:
    order_id: int
    answer: str  # confirmed | cancelled


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the tap did: `recorded` (now written back), `already` (answered before),
    `too_late` (the order moved on), or `unknown` (not this customer's order)."""

    kind: str
    order: Order | None = None
    status: str | None = None  # the word the reply names: the answer or the stage


def tap_of(payload: str | None) -> Tap | None:
    """ "COD:CONFIRM:<order id>" / "COD:CANCEL:<order id>", else None."""
    if not payload or not payload.startswith(COD_PAYLOAD):
        return None
    word, _, order_id = payload.removeprefix(COD_PAYLOAD).partition(":")
    if word not in ANSWERS or not order_id.isdigit():
        return None
    return Tap(int(order_id), ANSWERS[word])


def take_tap(customer: Customer, tap: Tap, now: datetime) -> Outcome:
    """Record the answer (inside the caller's transaction)."""
    order = Order.get_or_none((Order.id == tap.order_id) & (Order.customer == customer))
    if order is None:
        return Outcome("unknown")
    if order.cod_answer in ANSWERS.values():
        return Outcome("already", order, order.cod_answer)
    if order.stage in COD_TOO_LATE:
        return Outcome("too_late", order, order.stage)
    recorded = (
        Order.update(cod_answer=tap.answer, cod_answered_at=now, updated_at=now)
        .where(
            (Order.id == order.id)
            & (Order.cod_answer.is_null() | (Order.cod_answer == "unanswered"))
        )
        .execute()
    )
    if not recorded:  # another delivery of the same tap won
        return Outcome("already", Order.get_by_id(order.id), tap.answer)
    ShopWriteBack.insert(
        order=order, action=tap.answer, created_at=now, next_attempt_at=now
    ).on_conflict_ignore().execute()
    Message.update(state=State.SUPPRESSED, reason=Reason.CANCELLED, updated_at=now).where(
        (Message.order == order)
        & (Message.kind == COD_REMINDER)
        & Message.state.in_([State.QUEUED, State.DEFERRED])
    ).execute()
    return Outcome("recorded", Order.get_by_id(order.id), tap.answer)
