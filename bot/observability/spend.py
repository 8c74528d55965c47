"""Spend: what WhatsApp billed, per day, pricing category, template and country, from the
`pricing` of each message's receipts (bot/delivery/pricing.py), and what it cost at the
rate card in force (bot/core/rate_card.py).

`rollup_day` rewrites one UTC day's `DailySpend` rows from the messages priced that day
(the time of the first receipt carrying `pricing`, usually `sent`, seconds before
delivery; not the day the message was queued). `summary` reads rollup rows only and
prices them.

Definitions:

- billable: the receipt said `billable: true` and the message was delivered (or read),
  or its row is gone (erased) and only the receipt is left; a billable message that was
  never delivered is not charged (per-message pricing bills delivered messages)
- free: priced, but `billable: false` (replies in the service window, utility templates
  inside it, free entry points)
- estimated spend: billable x the card's rate for the recipient's country and the
  pricing category; a billable message the card has no rate for is `unpriced`, never 0
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from peewee import JOIN, Case, chunked, fn

from bot.core.models import DailySpend, Message, MessagePricing, State, write_transaction
from bot.core.rate_card import RateCard

GROUP_BY = ("day", "category", "template", "country")
CENT = Decimal("0.01")

DELIVERED = (
    Message.id.is_null()
    | Message.delivered_at.is_null(False)
    | Message.read_at.is_null(False)
    | Message.state.in_((State.DELIVERED, State.READ))
)
TEMPLATE = fn.COALESCE(Message.template_name, "")
COUNTRY = fn.COALESCE(MessagePricing.country, "")


def rollup_day(day: date, now: datetime) -> int:
    """Replace `day`'s DailySpend rows with ones counted from the messages priced that
    day (UTC), in one transaction; the rows written."""
    start = datetime.combine(day, time.min)
    billable = MessagePricing.billable & DELIVERED
    query = (
        MessagePricing.select(
            TEMPLATE,
            MessagePricing.category,
            COUNTRY,
            fn.SUM(Case(None, ((billable, 1),), 0)),
            fn.SUM(Case(None, ((MessagePricing.billable == False, 1),), 0)),  # noqa: E712
        )
        .join(
            Message,
            JOIN.LEFT_OUTER,
            on=(Message.provider_message_id == MessagePricing.provider_message_id),
        )
        .where(
            (MessagePricing.priced_at >= start) & (MessagePricing.priced_at < start + timedelta(1))
        )
        .group_by(TEMPLATE, MessagePricing.category, COUNTRY)
    )
    rows = [
        {
            "day": day,
            "template": template,
            "category": category,
            "country": country,
            "billable": int(billable or 0),
            "free": int(free or 0),
            "computed_at": now,
        }
        for template, category, country, billable, free in query.tuples()
    ]
    with write_transaction():
        DailySpend.delete().where(DailySpend.day == day).execute()
        for batch in chunked(rows, 100):
            DailySpend.insert_many(batch).execute()
    return len(rows)


def summary(start: date, end: date, card: RateCard) -> dict:
    """Billable and free messages and their estimated cost from `start` to `end`
    (inclusive), in total and per day, pricing category, template and country."""
    rows = list(
        DailySpend.select()
        .where(DailySpend.day.between(start, end))
        .order_by(DailySpend.day, DailySpend.id)
    )
    groups: dict[str, dict[str, list[DailySpend]]] = {by: defaultdict(list) for by in GROUP_BY}
    for row in rows:
        for by in GROUP_BY:
            groups[by][key_of(row, by)].append(row)
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "currency": card.currency,
        "rate_card": card.as_json(),
        "totals": priced(rows, card),
        **{f"by_{by}": priced_groups(found, card) for by, found in groups.items()},
    }


def priced_groups(found: dict[str, list[DailySpend]], card: RateCard) -> list[dict]:
    return [{"key": key, **priced(rows, card)} for key, rows in sorted(found.items())]


def key_of(row: DailySpend, by: str) -> str:
    return row.day.isoformat() if by == "day" else getattr(row, by)


def priced(rows: list[DailySpend], card: RateCard) -> dict:
    """Counts and estimated spend of rollup rows (each priced at its own country and
    category), the spend to the cent as a string."""
    spend, unpriced = Decimal(0), 0
    for row in rows:
        price = card.rate(row.country or None, row.category)
        if price is None:
            unpriced += row.billable
        else:
            spend += price * row.billable
    return {
        "billable": sum(row.billable for row in rows),
        "free": sum(row.free for row in rows),
        "unpriced": unpriced,
        "estimated_spend": str(spend.quantize(CENT, rounding=ROUND_HALF_UP)),
    }


def month_start(today: date) -> date:
    return today.replace(day=1)
