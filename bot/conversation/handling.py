"""Answering a customer's message: detect the intent, act on it, queue the reply.

Runs in an RQ job after the webhook stored the message. One transaction marks the
message handled and writes whatever it changes (consent, language, handoff) and the
reply row, so a redelivered job answers nothing twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from peewee import fn

from bot.conversation import cod, replies
from bot.conversation.intents import Intent, IntentKind, KeywordBook, detect_intent
from bot.conversation.replies import CLOSED_STAGES, OrderView
from bot.core import languages
from bot.core.config import Settings
from bot.core.legal import legal_url
from bot.core.models import Category, Customer, InboundMessage, Message, Order, write_transaction
from bot.core.notifications import choose_language
from bot.core.rows import insert_message
from bot.delivery.sending import CONTACT_REQUEST, OPT_OUT_CONFIRMATION
from bot.policy import consent
from bot.policy.policy import SERVICE_WINDOW, in_service_window

log = logging.getLogger(__name__)

REPLY = "reply"
STATUS_PAYLOAD = "STATUS:"  # what bot.intake.outbox.order_values puts on "Track order" buttons
#: The question asked about an unclear opt-out, and its two buttons' ids.
OPT_OUT_QUESTION = "opt_out_question"
QUESTION_YES = "OPTOUT:YES"
QUESTION_NO = "OPTOUT:NO"
RECENT_ORDERS = 3
#: While a person handles the conversation, only these still get an automatic answer.
HANDOFF_INTENTS = frozenset({IntentKind.OPT_OUT, IntentKind.OPT_IN, IntentKind.OPT_OUT_UNCLEAR})


@dataclass(frozen=True, slots=True)
class Reply:
    text: str | None
    language: str
    kind: str = REPLY
    template: str | None = None  # an approved template instead of text (its language)
    buttons: list[list[str]] | None = None  # quick-reply buttons: [id, title] each


def handle_inbound(
    inbound_id: int, book: KeywordBook, settings: Settings, now: datetime
) -> Message | None:
    """Handle one stored inbound message; the queued reply, if any."""
    with write_transaction() as transaction:
        inbound = InboundMessage.get_or_none(InboundMessage.id == inbound_id)
        if inbound is None or inbound.handled:
            return None
        customer = inbound.customer
        if customer is None:  # its customer was erased meanwhile: nobody to answer
            InboundMessage.update(handled=True).where(InboundMessage.id == inbound.id).execute()
            return None
        intent = (
            shared_number_answers(customer, inbound, book, now)
            or question_intent(inbound.button_payload)
            or cod_intent(inbound.button_payload)
            or status_button_intent(inbound.button_payload)
            or detect_intent(
                inbound.text or "",
                book,
                button_payload=inbound.button_payload,
                preferred_language=customer.language,
            )
        )
        if now - inbound.occurred_at > SERVICE_WINDOW:
            # Older than the service window (a redelivery, a backlog): no answer can go
            # out and none is due, nor does it count against the help reply; a stop in
            # it still stops.
            reply = None
            if intent.kind is IntentKind.OPT_OUT:
                consent.record_opt_out(
                    customer, consent.ALL, "keyword", evidence_of(inbound, intent), now
                )
        else:
            reply = act(customer, intent, inbound, settings, now)
        language = languages.language_tag(intent.written_in or intent.language)
        InboundMessage.update(handled=True, intent=intent.kind, language=language).where(
            InboundMessage.id == inbound.id
        ).execute()
        if intent.written_in and not intent.written_weak:
            Customer.update(written_language=language).where(Customer.id == customer.id).execute()
        if reply is None:
            return None
        log.info("reply to customer %s (%s, %s)", customer.id, intent.kind, reply.language)
        message = Message(
            customer=customer,
            phone=customer.phone,  # the number when known, else the BSUID (§9.1)
            user_id=customer.user_id,
            dedupe_key=f"reply:{inbound.id}",
            kind=reply.kind,
            category=Category.UTILITY if reply.template else Category.SERVICE,
            queue="orders",
            language=reply.language,
            text=reply.text,
            template_name=reply.template,
            params=reply_params(reply),
            created_at=now,
            updated_at=now,
        )
        if not insert_message(message):
            # Another job answered this message meanwhile: ours changes nothing.
            transaction.rollback()
            return None
        return message


def evidence_of(inbound: InboundMessage, intent: Intent) -> dict:
    """What a consent change keeps of the message that made it."""
    return {
        "inbound_message_id": inbound.id,
        "text": inbound.text,
        "language": intent.written_in or intent.language,
        "phrase": intent.phrase,
    }


def reply_params(reply: Reply) -> dict | None:
    if reply.template:
        return {"header": [], "body": [], "buttons": []}
    return {"reply_buttons": reply.buttons} if reply.buttons else None


def cod_intent(payload: str | None) -> Intent | None:
    """A tap on the COD confirmation's Confirm or Cancel button."""
    tap = cod.tap_of(payload)
    if tap is None:
        return None
    return Intent(IntentKind.COD_ANSWER, None, order_reference=str(tap.order_id), phrase=tap.answer)


def question_intent(payload: str | None) -> Intent | None:
    """A tap on the stop question's buttons: the only way an unclear stop opts out."""
    if payload == QUESTION_YES:
        return Intent(IntentKind.OPT_OUT, None, phrase=QUESTION_YES)
    if payload == QUESTION_NO:
        return Intent(IntentKind.KEEP_MESSAGES, None, phrase=QUESTION_NO)
    return None


def status_button_intent(payload: str | None) -> Intent | None:
    """Our own "Track order" quick-reply button carries "STATUS:<order number>"."""
    if not payload or not payload.startswith(STATUS_PAYLOAD):
        return None
    reference = payload.removeprefix(STATUS_PAYLOAD).lstrip("#").strip()
    return Intent(IntentKind.ORDER_STATUS, None, order_reference=reference or None)


def act(
    customer: Customer, intent: Intent, inbound: InboundMessage, settings: Settings, now: datetime
) -> Reply | None:
    """Carry out what the customer asked for; the reply to send, if one is due."""
    if customer.needs_agent_since and intent.kind not in HANDOFF_INTENTS:
        return None  # a person is answering
    shop = settings.shop_name
    language = replies.reply_language(
        replies.LanguageEvidence.of(
            customer,
            intent.written_in or intent.language,
            settings.default_language,
            weak=intent.written_weak,
        )
    )
    evidence = evidence_of(inbound, intent)
    match intent.kind:
        case IntentKind.OPT_OUT if inbound.type == "button":
            # A tapped button ("Stop promotions", PROVIDERS.md §1.8 b3) stops marketing
            # only; WhatsApp itself confirms it to the customer.
            consent.record_opt_out(customer, consent.MARKETING, "button", evidence, now)
            return None
        case IntentKind.OPT_OUT:
            source = "question" if intent.phrase == QUESTION_YES else "keyword"
            if consent.record_opt_out(customer, consent.ALL, source, evidence, now):
                return Reply(replies.opted_out(language, shop), language, OPT_OUT_CONFIRMATION)
            return None  # already out: one confirmation, never a loop
        case IntentKind.OPT_OUT_UNCLEAR if not customer.opted_out:
            # Perhaps a stop: asked, with buttons; the tap decides (nothing else opts out).
            buttons = [
                [QUESTION_YES, replies.stop_button(language)],
                [QUESTION_NO, replies.keep_button(language)],
            ]
            text = replies.stop_question(language, shop)
            return Reply(text, language, OPT_OUT_QUESTION, buttons=buttons)
        case IntentKind.COD_ANSWER:
            tap = cod.Tap(int(intent.order_reference or 0), intent.phrase or "")
            outcome = cod.take_tap(customer, tap, now)
            if outcome.order is None:
                return Reply(
                    replies.order_not_found(language, intent.order_reference or ""), language
                )
            number = outcome.order.number or outcome.order.external_id
            text = replies.cod_answered(language, outcome.kind, number, outcome.status)
            return Reply(text, language)
        case IntentKind.KEEP_MESSAGES:
            return Reply(replies.kept(language, shop), language)
        case IntentKind.OPT_IN:
            if consent.record_opt_in(customer, consent.ALL, "keyword", evidence, now):
                text = replies.opted_in(language, shop)
                privacy = legal_url(settings, "privacy")
                return Reply(f"{text}\n{privacy}" if privacy else text, language)
            return None
        case IntentKind.HELP:
            return Reply(replies.help_text(language, shop), language)
        case IntentKind.LANGUAGE:
            target = replies.supported(intent.target_language) or language
            stored = switched_language(customer.language, target)
            Customer.update(language=stored, language_source="customer", updated_at=now).where(
                Customer.id == customer.id
            ).execute()
            return Reply(replies.language_switched(target), target)
        case IntentKind.ORDER_STATUS if customer.phone is None:
            # A username user: whose orders they are cannot be checked without the
            # number the shop knows them by, so none is shown until they share it.
            return contact_request(language, settings)
        case IntentKind.ORDER_STATUS:
            timezone = customer.timezone or settings.default_timezone
            return Reply(
                order_answer(customer, intent.order_reference, language, timezone), language
            )
        case IntentKind.AGENT:
            Customer.update(needs_agent_since=now, updated_at=now).where(
                Customer.id == customer.id
            ).execute()
            return Reply(replies.handed_over(language, shop), language)
    # Not understood: a short help, at most once per service window, so two bots
    # answering each other cannot start a reply storm.
    if in_service_window(customer.last_fallback_reply_at, now):
        return None
    Customer.update(last_fallback_reply_at=now).where(Customer.id == customer.id).execute()
    return Reply(replies.help_text(language, shop), language)


def contact_request(language: str, settings: Settings) -> Reply:
    """The offer to share their number: the shop's template with a REQUEST_CONTACT_INFO
    button when it has one (in the approved language closest to the customer's), else
    WhatsApp's request-contact-info button on a reply."""
    if settings.contact_request_template:
        approved = settings.contact_request_languages or (settings.default_language,)
        chosen = choose_language([language], approved, settings.default_language)
        return Reply(None, chosen, CONTACT_REQUEST, template=settings.contact_request_template)
    return Reply(replies.share_number(language, settings.shop_name), language, CONTACT_REQUEST)


def shared_number_answers(
    customer: Customer, inbound: InboundMessage, book: KeywordBook, now: datetime
) -> Intent | None:
    """A username user who was asked for their number and shared it (the `contacts`
    message linked it): the order question they asked before, now answered."""
    if inbound.type != "contacts" or customer.phone is None:
        return None
    since = now - SERVICE_WINDOW
    asked_for_number = (
        Message.select()
        .where(
            (Message.customer == customer)
            & (Message.kind == CONTACT_REQUEST)
            & (Message.created_at >= since)
        )
        .exists()
    )
    if not asked_for_number:
        return None
    question = (
        InboundMessage.select()
        .where(
            (InboundMessage.customer == customer)
            & (InboundMessage.intent == IntentKind.ORDER_STATUS)
            & (InboundMessage.type != "contacts")
            & (InboundMessage.received_at >= since)
        )
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
        .first()
    )
    if question is None:
        return Intent(IntentKind.ORDER_STATUS, None)
    return status_button_intent(question.button_payload) or detect_intent(
        question.text or "", book, preferred_language=customer.language
    )


def switched_language(stored: str | None, target: str) -> str | None:
    """What a customer who asked for `target` ("hi") is stored as: its BCP 47 tag, or the
    tag they have when it is that language already (an `en-IN` reader asking for English
    keeps `en-IN`, so amounts keep their Indian grouping)."""
    if stored and languages.base_language(stored) == languages.base_language(target):
        return stored
    return languages.language_tag(target)


def order_answer(customer: Customer, reference: str | None, language: str, timezone: str) -> str:
    """The status of the customer's own order `reference`, or of their open orders.

    Only orders of this customer are ever looked at: someone else's order number gets
    exactly the answer a non-existent one gets, so numbers cannot be probed.
    """
    if reference:
        order = find_own_order(customer, reference)
        if order is None:
            return replies.order_not_found(language, reference)
        return replies.order_status(view(order), language, timezone)
    open_orders = (
        Order.select()
        .where(
            (Order.customer == customer)
            & (Order.stage.is_null() | Order.stage.not_in(CLOSED_STAGES))
        )
        .order_by(Order.updated_at.desc())
        .limit(RECENT_ORDERS)
    )
    return replies.recent_orders([view(o) for o in open_orders], language, timezone)


def find_own_order(customer: Customer, reference: str) -> Order | None:
    wanted = reference.lstrip("#").lower()
    return (
        Order.select()
        .where(
            (Order.customer == customer)
            & (
                (fn.LOWER(Order.number) == wanted)
                | (fn.LOWER(Order.number) == f"#{wanted}")
                | (fn.LOWER(Order.external_id) == wanted)
            )
        )
        .order_by(Order.updated_at.desc())
        .first()
    )


def view(order: Order) -> OrderView:
    return OrderView(
        number=order.number or order.external_id,
        stage=order.stage,
        updated_at=order.updated_at,
        tracking_url=order.tracking_url,
    )
