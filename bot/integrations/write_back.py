"""The write-back job's work (issue 16 item 3): each `ShopWriteBack` due is made at the
order's shop, tried again with growing pauses while the shop's answer says "not now"
(shop_errors.Retry), recorded as failed when it says "no" (Refused) or after
MAX_ATTEMPTS, and skipped (with the reason) for a shop Dakiya has no API access to.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import redis
import requests

from bot.core.config import Settings
from bot.core.models import EventKind, Message, Order, ShopWriteBack, write_transaction
from bot.core.notifications import COD_TOO_LATE
from bot.integrations import shopify_admin, woocommerce_api
from bot.integrations.shop_errors import Refused, Retry

log = logging.getLogger(__name__)

#: Pauses after each "not now", in seconds; the last one repeats.
BACKOFF = (30, 120, 600, 1800, 3600)
MAX_ATTEMPTS = 10
BATCH = 20
WORDS = {"confirmed": "confirmed", "cancelled": "cancelled", "unanswered": "did not answer"}


def mark_unanswered(settings: Settings, now: datetime) -> int:
    """COD orders whose confirmation went out COD_UNANSWERED_MINUTES ago and that got no
    tap (nor shipped or were cancelled meanwhile): recorded as unanswered and written
    back as unconfirmed; how many. A later tap still counts (bot/conversation/cod.py)."""
    if settings.cod_unanswered_minutes <= 0:
        return 0
    sent_before = now - timedelta(minutes=settings.cod_unanswered_minutes)
    waiting = (
        Order.select(Order.id)
        .join(Message, on=(Message.order == Order.id))
        .where(
            (Message.kind == EventKind.COD_CONFIRMATION)
            & Message.sent_at.is_null(False)
            & (Message.sent_at <= sent_before)
            & Order.cod_answer.is_null()
            & (Order.stage.is_null() | Order.stage.not_in(sorted(COD_TOO_LATE)))
        )
        .limit(BATCH * 5)
    )
    marked = 0
    for order in waiting:
        with write_transaction():
            changed = (
                Order.update(cod_answer="unanswered", cod_answered_at=now, updated_at=now)
                .where((Order.id == order.id) & Order.cod_answer.is_null())
                .execute()
            )
            if changed:
                ShopWriteBack.insert(
                    order=order.id, action="unanswered", created_at=now, next_attempt_at=now
                ).on_conflict_ignore().execute()
                marked += 1
    return marked


def due(now: datetime, limit: int = BATCH) -> list[ShopWriteBack]:
    return list(
        ShopWriteBack.select()
        .where((ShopWriteBack.state == "pending") & (ShopWriteBack.next_attempt_at <= now))
        .order_by(ShopWriteBack.next_attempt_at, ShopWriteBack.id)
        .limit(limit)
    )


def note_for(action: str, now: datetime) -> str:
    verb = WORDS.get(action, action)
    when = f"{now:%Y-%m-%d %H:%M} UTC"
    return f"Dakiya: on WhatsApp the customer {verb} this cash-on-delivery order ({when})."


def run_one(write_back: ShopWriteBack, settings: Settings, conn: redis.Redis, now: datetime) -> str:
    """Make one write-back; the state it is left in."""
    order = write_back.order
    try:
        # The note names when the customer answered, so a retry writes the same note.
        answered = order.cod_answered_at or write_back.created_at
        write(order.source, order.external_id, write_back.action, settings, conn, answered)
    except Retry as exc:
        attempts = write_back.attempts + 1
        pause = BACKOFF[min(attempts, len(BACKOFF)) - 1]
        state = "failed" if attempts >= MAX_ATTEMPTS else "pending"
        record(write_back, state, attempts, str(exc), now + timedelta(seconds=pause))
        log.warning("write-back %s to %s: not now (%s)", write_back.id, order.source, exc)
        return state
    except (Refused, Unsupported) as exc:
        state = "skipped" if isinstance(exc, Unsupported) else "failed"
        record(write_back, state, write_back.attempts + 1, str(exc), now)
        log.warning("write-back %s to %s: %s (%s)", write_back.id, order.source, state, exc)
        return state
    record(write_back, "done", write_back.attempts + 1, None, now, done=True)
    return "done"


class Unsupported(Exception):
    """No API access to this order's shop: nothing to write back to."""


def write(
    source: str,
    external_id: str,
    action: str,
    settings: Settings,
    conn: redis.Redis,
    answered: datetime,
) -> None:
    note = note_for(action, answered)
    session = requests.Session()
    if source == "shopify":
        if not (settings.shopify_client_id and settings.shopify_client_secret):
            raise Unsupported("SHOPIFY_CLIENT_ID and SHOPIFY_CLIENT_SECRET are not set")
        admin = shopify_admin.ShopifyAdmin(settings, conn, session)
        shopify_admin.write_cod_answer(admin, external_id, action, note)
    elif source == "woocommerce":
        if not (settings.woocommerce_base_url and settings.woocommerce_consumer_key):
            raise Unsupported("WOOCOMMERCE_BASE_URL and WOOCOMMERCE_CONSUMER_KEY are not set")
        status = {
            "confirmed": settings.woocommerce_cod_confirmed_status,
            "cancelled": settings.woocommerce_cod_cancelled_status,
            "unanswered": settings.woocommerce_cod_unanswered_status,
        }[action]
        woocommerce_api.write_order(
            settings.woocommerce_base_url,
            settings.woocommerce_consumer_key,
            settings.woocommerce_consumer_secret,
            external_id,
            status,
            note,
            session,
        )
    else:
        raise Unsupported(f"no write-back for {source} orders (the shop reads the admin API)")


def record(
    write_back: ShopWriteBack,
    state: str,
    attempts: int,
    error: str | None,
    next_at: datetime,
    done: bool = False,
) -> None:
    ShopWriteBack.update(
        state=state,
        attempts=attempts,
        last_error=error[:1000] if error else None,
        next_attempt_at=next_at,
        done_at=next_at if done else None,
    ).where(ShopWriteBack.id == write_back.id).execute()
