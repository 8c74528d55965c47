"""The WooCommerce catch-up pull (issue 16 item 4): WooCommerce never redelivers a
webhook and disables one that keeps failing, so every WOOCOMMERCE_CATCH_UP_MINUTES the
worker asks the store's REST API for the orders modified since the last pull and takes
each like a webhook delivery (`take_order_event`), through the same dedupe: an order the
webhook already brought sends nothing twice (one message per order, kind and shipment).

The cursor (the newest modification time taken, less a second of overlap) is kept in the
database (`runtime_setting` "woocommerce_catch_up_after"), so a restart or another worker
carries on from it; the first pull looks back two intervals only, so that enabling it
does not announce a day of old orders. A store that does not answer leaves the cursor
where it was: the next pull asks again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.core.config import Settings
from bot.core.models import RuntimeSetting, write_transaction
from bot.intake.intake import IntakeServices, take_order_event
from bot.intake.sources.base import PayloadError
from bot.intake.sources.woocommerce import kind_for, order_event
from bot.integrations.woocommerce_api import modified_orders

log = logging.getLogger(__name__)

CURSOR = "woocommerce_catch_up_after"
OVERLAP = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Pulled:
    orders: int = 0  # order resources read
    new: int = 0  # events that were new (the webhook had not brought them)
    refused: int = 0  # resources that are not a readable order (logged)


def configured(settings: Settings) -> bool:
    return bool(
        settings.woocommerce_base_url
        and settings.woocommerce_consumer_key
        and settings.woocommerce_consumer_secret
        and settings.woocommerce_catch_up_minutes > 0
        and "woocommerce" in settings.order_sources
    )


def catch_up(svc: IntakeServices, now: datetime) -> Pulled:
    """One pull; raises WooCommerceError (cursor unchanged) when the store does not answer."""
    settings = svc.settings
    after = read_cursor() or now - 2 * timedelta(minutes=settings.woocommerce_catch_up_minutes)
    newest, orders, new, refused = after, 0, 0, 0
    for resource in modified_orders(
        settings.woocommerce_base_url,
        settings.woocommerce_consumer_key,
        settings.woocommerce_consumer_secret,
        after,
    ):
        orders += 1
        modified = gmt(resource.get("date_modified_gmt"))
        created = gmt(resource.get("date_created_gmt"))
        # Its status now is the news; an order created in the gap that is still pending
        # or on hold is news as a new order ("placed").
        status, method = str(resource.get("status") or ""), resource.get("payment_method")
        news_now = kind_for("order.updated", status, method) is not None
        topic = "order.created" if created and created > after and not news_now else "order.updated"
        key = f"woocommerce:pull:{resource.get('id')}:{resource.get('date_modified_gmt')}"
        try:
            event = order_event(resource, topic, key[:255], None)
        except PayloadError as exc:
            refused += 1
            log.warning("catch-up: order %s is unreadable: %s", resource.get("id"), exc.fields)
            continue
        if take_order_event(svc, event, now).created:
            new += 1
        if modified and modified > newest:
            newest = modified
    if newest > after:
        save_cursor(newest - OVERLAP, now)
    return Pulled(orders, new, refused)


def gmt(text: object) -> datetime | None:
    """WooCommerce's `*_gmt` times ("2026-11-25T06:10:02", UTC, no zone) as naive UTC."""
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


def read_cursor() -> datetime | None:
    row = RuntimeSetting.get_or_none(RuntimeSetting.key == CURSOR)
    return gmt(row.value) if row is not None else None


def save_cursor(after: datetime, now: datetime) -> None:
    with write_transaction():
        fields = {"value": after.isoformat(), "updated_by": "catch-up", "updated_at": now}
        if not RuntimeSetting.update(**fields).where(RuntimeSetting.key == CURSOR).execute():
            RuntimeSetting.create(key=CURSOR, **fields)
