"""Small builders for test data, so each test states only what matters to it."""

from __future__ import annotations

from decimal import Decimal

from bot.core.models import EventKind, Message, utcnow
from bot.extensions import services
from bot.intake.intake import take_order_event
from bot.intake.sources.base import CustomerFacts, OrderEvent, OrderFacts


def order_event(
    *,
    event_id: str = "evt-1",
    kind: EventKind | None = EventKind.SHIPPED,
    order_id: str = "1042",
    phone: str | None = "+919812345678",
    name: str | None = "Asha",
    language: str | None = "en",
    country: str | None = "IN",
    tracking_url: str | None = "https://track.example.com/1042",
    notification_key: str = "",
) -> OrderEvent:
    return OrderEvent(
        source="generic",
        dedupe_key=f"generic:{event_id}",
        topic=str(kind),
        kind=kind,
        external_event_id=event_id,
        order=OrderFacts(
            external_id=order_id,
            number=f"#{order_id}",
            total=Decimal("1299.00"),
            currency="INR",
            tracking_url=tracking_url,
            carrier="Delhivery",
        ),
        customer=CustomerFacts(phone=phone, name=name, language=language, country=country),
        notification_key=notification_key,
        payload={"event_id": event_id},
    )


def queued_message(**kwargs) -> Message:
    """Accept an order event (no enqueue side effects besides the send job) and return
    its message row."""
    accepted = take_order_event(services(), order_event(**kwargs), utcnow())
    return Message.get_by_id(accepted.message_ids[0])


def marketing_message(
    customer_phone: str = "+919812345678", key: str = "m1", opt_in: bool = True
) -> Message:
    """A queued marketing template (campaigns create these) to a customer who opted in."""
    from bot.core.models import Category, Customer

    customer, _ = Customer.get_or_create(
        phone=customer_phone, defaults={"timezone": "Asia/Kolkata"}
    )
    Customer.update(marketing_opt_in=opt_in).where(Customer.id == customer.id).execute()
    return Message.create(
        customer=customer,
        phone=customer.phone,
        dedupe_key=f"campaign:{key}:{customer.id}",
        kind="campaign",
        category=Category.MARKETING,
        queue="campaigns",
        template_name="diwali_sale",
        language="en",
        params={"header": [], "body": [key], "buttons": []},
    )
