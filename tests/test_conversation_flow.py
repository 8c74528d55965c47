"""Customers writing back, end to end: Meta webhook in, job, reply out through the
sandbox, consent recorded, and nothing about another customer's orders revealed."""

from __future__ import annotations

import copy
import itertools
import json
import time

import pytest

from bot.conversation.handling import handle_inbound
from bot.core.models import ConsentEvent, Customer, InboundMessage, Message, Reason, State, utcnow
from bot.delivery.sending import OPT_OUT_CONFIRMATION
from bot.extensions import services
from jobs.inbound import keyword_book
from tests.conftest import SECRETS, load_payload
from tests.factories import queued_message

ASHA = "919812345678"
RAVI = "919876543210"
_ids = itertools.count(1)


def inbound(
    text: str | None = None, sender: str = ASHA, button: tuple[str, str] | None = None
) -> dict:
    body = copy.deepcopy(load_payload("meta/messages")["text"])
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    body["entry"][0]["changes"][0]["value"]["contacts"][0]["wa_id"] = sender
    message.update(
        {"from": sender, "id": f"wamid.IN{next(_ids):06d}", "timestamp": str(int(time.time()))}
    )
    if button:
        del message["text"]
        message.update({"type": "button", "button": {"payload": button[0], "text": button[1]}})
    else:
        message["text"]["body"] = text
    return body


def replies_to(phone: str) -> list[Message]:
    return list(
        Message.select()
        .where((Message.phone == "+" + phone) & Message.text.is_null(False))
        .order_by(Message.id)
    )


def test_stop_opts_out_records_evidence_and_confirms_once(app, say):
    say(inbound("STOP"))
    say(inbound("stop!!"))
    customer = Customer.get(Customer.phone == "+" + ASHA)
    assert customer.opted_out
    [event] = ConsentEvent.select()
    assert (event.action, event.category, event.source) == ("opt_out", "all", "keyword")
    assert event.evidence["inbound_message_id"] == InboundMessage.select().first().id
    [reply] = replies_to(ASHA)
    assert reply.kind == OPT_OUT_CONFIRMATION and reply.state == State.READ  # sent via the sandbox
    assert "START" in reply.text


def test_stop_in_hindi_cancels_a_queued_order_update_and_confirms_in_hindi(
    app, say, run_jobs, redis_conn
):
    from jobs.inbound import handle_inbound_messages

    waiting = queued_message(language="en")  # its send job is in the queue
    Customer.update(language=None).execute()
    say(inbound("बंद करो"), run=False)
    handle_inbound_messages([InboundMessage.get().id])  # the STOP is handled first
    run_jobs()
    waiting = Message.get_by_id(waiting.id)
    assert (waiting.state, waiting.reason) == (State.SUPPRESSED, Reason.OPTED_OUT)
    [reply] = replies_to(ASHA)
    assert reply.language == "hi" and any("\u0900" <= ch <= "\u097f" for ch in reply.text)
    from bot.delivery.providers.sandbox import recorded

    assert [r["message_id"] for r in recorded(redis_conn)] == [reply.id]


def test_start_after_stop_opts_back_in(app, say):
    say(inbound("STOP"))
    say(inbound("START"))
    assert not Customer.get(Customer.phone == "+" + ASHA).opted_out
    assert [e.action for e in ConsentEvent.select().order_by(ConsentEvent.id)] == [
        "opt_out",
        "opt_in",
    ]
    assert len(replies_to(ASHA)) == 2


def test_a_sentence_with_stop_inside_a_word_opts_nobody_out(app, say):
    say(inbound("my stopwatch order, please restart it"))
    assert not Customer.get(Customer.phone == "+" + ASHA).opted_out


def test_order_status_answers_with_the_customers_own_order(app, say):
    queued_message(order_id="1042")
    say(inbound("where is my order #1042?"))
    [reply] = replies_to(ASHA)
    assert "#1042" in reply.text and "shipped" in reply.text
    assert "https://track.example.com/1042" in reply.text


def test_someone_elses_order_gets_the_same_answer_as_a_missing_one(app, say):
    queued_message(order_id="1042")  # Asha's order
    say(inbound("where is my order 1042", sender=RAVI))
    say(inbound("where is my order 9999", sender=RAVI))
    probe, missing = replies_to(RAVI)
    assert probe.text == missing.text.replace("9999", "1042")
    assert "track.example.com" not in probe.text


def test_status_button_on_a_template_answers_for_that_order(app, say):
    queued_message(order_id="1042")
    say(inbound(button=("STATUS:#1042", "Track order")))
    [reply] = replies_to(ASHA)
    assert "#1042" in reply.text


def test_status_question_without_a_number_lists_open_orders(app, say):
    queued_message(order_id="1042")
    queued_message(event_id="evt-2", order_id="2077")
    say(inbound("where is my order?"))
    [reply] = replies_to(ASHA)
    assert "#1042" in reply.text and "#2077" in reply.text


def test_unknown_text_gets_help_once_per_window(app, say):
    say(inbound("hello there"))
    say(inbound("are you a bot?"))
    assert len(replies_to(ASHA)) == 1


def test_language_switch_changes_the_reply_language(app, say):
    say(inbound("hindi"))
    assert Customer.get(Customer.phone == "+" + ASHA).language == "hi"
    say(inbound("help"))
    assert all(r.language == "hi" for r in replies_to(ASHA))


def test_agent_request_flags_the_conversation_and_silences_the_bot(app, say, client):
    say(inbound("agent"))
    say(inbound("help"))
    assert len(replies_to(ASHA)) == 1  # only the hand-over note
    from tests.conftest import ADMIN as auth

    [conversation] = client.get("/admin/api/conversations", headers=auth).get_json()[
        "conversations"
    ]
    assert conversation["phone"] == "+" + ASHA and conversation["needs_agent_since"]
    assert {m["direction"] for m in conversation["messages"]} == {"in", "out"}
    customer_id = conversation["customer_id"]
    assert (
        client.post(f"/admin/api/conversations/{customer_id}/release", headers=auth).status_code
        == 200
    )
    say(inbound("help"))
    assert len(replies_to(ASHA)) == 2


def test_redelivered_inbound_webhook_is_answered_once(app, say):
    body = inbound("help")
    say(body)
    say(body)
    assert InboundMessage.select().count() == 1
    assert len(replies_to(ASHA)) == 1


def test_inbound_message_opens_the_service_window(app, say):
    say(inbound("hello"))
    customer = Customer.get(Customer.phone == "+" + ASHA)
    assert customer.last_inbound_at is not None
    assert customer.timezone == "Asia/Kolkata"


def unique_phrases(section: str) -> dict[str, str]:
    """For each language, the first phrase of `section` that no other language lists."""
    import tomllib

    from bot.conversation.intents import LOCALES_DIR

    books = {
        p.parent.name: tomllib.loads(p.read_text())
        for p in sorted(LOCALES_DIR.glob("*/keywords.toml"))
    }
    chosen = {}
    for language, book in books.items():
        others = {
            phrase.casefold()
            for lang, b in books.items()
            if lang != language
            for phrase in b.get(section, [])
        }
        chosen[language] = next(p for p in book.get(section, []) if p.casefold() not in others)
    return chosen


LANGUAGES = [
    "en",
    "hi",
    "bn",
    "ta",
    "te",
    "mr",
    "gu",
    "kn",
    "ml",
    "es",
    "pt",
    "ar",
    "id",
    "fr",
    "de",
]


@pytest.mark.parametrize("language", LANGUAGES)
def test_stop_in_each_language_opts_out_and_confirms_in_that_language(app, say, language):
    from bot.conversation.replies import opted_out

    say(inbound(unique_phrases("opt_out")[language] + " 🙏", sender=RAVI))
    assert Customer.get(Customer.phone == "+" + RAVI).opted_out
    [reply] = replies_to(RAVI)
    assert reply.language == language
    assert reply.text == opted_out(language, "our shop")


@pytest.mark.parametrize("language", LANGUAGES)
def test_help_in_each_language_is_answered_in_that_language(app, say, language):
    from bot.conversation.replies import help_text

    say(inbound(unique_phrases("help")[language].upper() + "?", sender=RAVI))
    [reply] = replies_to(RAVI)
    assert reply.text == help_text(language, "our shop")


@pytest.mark.parametrize("language", LANGUAGES)
def test_order_question_in_each_language_is_answered_in_that_language(app, say, language):
    from bot.conversation.replies import recent_orders

    say(inbound(unique_phrases("order_status")[language], sender=RAVI))
    [reply] = replies_to(RAVI)
    assert reply.language == language
    assert reply.text == recent_orders([], language, "Asia/Kolkata")


def test_interakt_inbound_stop_is_understood_too(app, client, sign, run_jobs):
    from datetime import UTC, datetime

    body = copy.deepcopy(load_payload("interakt/webhooks")["received_text"])
    body["data"]["customer"]["channel_phone_number"] = RAVI
    body["data"]["message"].update(
        {
            "message": "UNSUBSCRIBE",
            "id": "60076f05-0000-4000-8000-00000000abcd",
            "received_at_utc": datetime.now(UTC).replace(tzinfo=None).isoformat(),
        }
    )
    raw = json.dumps(body).encode()
    signature = "sha256=" + sign(SECRETS["interakt_webhook_secret"], raw)
    response = client.post(
        "/webhooks/whatsapp/interakt", data=raw, headers={"Interakt-Signature": signature}
    )
    assert response.status_code == 200
    run_jobs()
    assert Customer.get(Customer.phone == "+" + RAVI).opted_out
    [reply] = replies_to(RAVI)
    assert reply.kind == OPT_OUT_CONFIRMATION and reply.state == State.READ


def test_customer_message_whose_job_was_lost_is_answered_after_the_sweep(
    app, say, redis_conn, run_jobs, time_machine
):
    from datetime import timedelta

    from bot.core.models import utcnow
    from bot.extensions import services
    from jobs.sweep import sweep_once

    time_machine.move_to(utcnow(), tick=True)
    say(inbound("help"), run=False)
    redis_conn.flushdb()
    time_machine.shift(timedelta(minutes=2))
    assert sweep_once(services(), utcnow())["inbound_requeued"] == 1
    run_jobs()
    assert len(replies_to(ASHA)) == 1


def test_opt_in_confirmation_links_the_privacy_notice(make_app, settings, say):
    make_app(settings.replace(public_base_url="https://shop.example.in"))
    say(inbound("STOP"))
    say(inbound("START"))
    assert replies_to(ASHA)[-1].text.endswith("https://shop.example.in/legal/privacy")


def test_a_message_another_job_answered_meanwhile_changes_nothing_more(app, say):

    say(inbound("STOP"), run=False)
    stored = InboundMessage.get()
    # The twin job's reply, committed while this one was deciding (Postgres, no lock).
    Message.create(phone="+" + ASHA, dedupe_key=f"reply:{stored.id}", kind="reply", text="x")
    reply = handle_inbound(stored.id, keyword_book(), services().settings, utcnow())
    assert reply is None
    assert not ConsentEvent.select().exists()  # ours rolled back whole
    assert not Customer.get(Customer.phone == "+" + ASHA).opted_out
    assert Message.select().count() == 1
