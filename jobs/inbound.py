"""Jobs answering customers' messages."""

from __future__ import annotations

from functools import cache

from bot.conversation.handling import handle_inbound
from bot.conversation.intents import LOCALES_DIR, KeywordBook, load_keyword_book
from bot.core.models import db, utcnow
from bot.delivery.dispatch import enqueue_sends
from bot.extensions import services


@cache
def keyword_book() -> KeywordBook:
    """The keyword lists from locales/, read once per process."""
    return load_keyword_book(LOCALES_DIR)


def handle_inbound_messages(inbound_ids: list[int]) -> int:
    """RQ entry point: answer each stored customer message once; how many got a reply."""
    svc = services()
    replies = []
    with db.connection_context():
        for inbound_id in inbound_ids:
            reply = handle_inbound(inbound_id, keyword_book(), svc.settings, utcnow())
            if reply is not None:
                replies.append((reply.id, reply.queue))
    enqueue_sends(svc.queues, replies)
    return len(replies)
