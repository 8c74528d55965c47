"""Customers in their own words (issue 15), end to end through the signed Meta webhook:
natural opt-outs act, unclear ones are asked with buttons and the tap decides, order
questions without the word "order" are answered, and each reply is in the language the
customer wrote in, whatever the storefront said."""

from __future__ import annotations

import copy
import itertools
import json
import time
from datetime import timedelta

import pytest

from bot.conversation.handling import OPT_OUT_QUESTION, QUESTION_NO, QUESTION_YES
from bot.core.models import ConsentEvent, Customer, InboundMessage, Message
from bot.delivery.sending import OPT_OUT_CONFIRMATION
from tests.conftest import SECRETS, load_payload
from tests.factories import queued_message

ASHA = "919812345678"
_ids = itertools.count(1)


def text_from(text: str, sender: str = ASHA, at: float | None = None) -> dict:
    body = copy.deepcopy(load_payload("meta/messages")["text"])
    value = body["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = sender
    message = value["messages"][0]
    message.update(
        {
            "from": sender,
            "id": f"wamid.U{next(_ids):06d}",
            "timestamp": str(int(at or time.time())),
        }
    )
    message["text"]["body"] = text
    return body


def tap(button_id: str, title: str, sender: str = ASHA) -> dict:
    """An interactive `button_reply`, as Meta's webhook reference shows it (§1.8 b1)."""
    body = text_from("", sender)
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    del message["text"]
    message.update(
        {
            "type": "interactive",
            "interactive": {
                "type": "button_reply",
                "button_reply": {"id": button_id, "title": title},
            },
        }
    )
    return body


def answers() -> list[Message]:
    return list(Message.select().where(Message.text.is_null(False)).order_by(Message.id))


def asha() -> Customer:
    return Customer.get(Customer.phone == "+" + ASHA)


def devanagari(text: str) -> bool:
    return any("\u0900" <= ch <= "\u097f" for ch in text)


@pytest.mark.parametrize(
    "text",
    [
        "pls stop sending me these offers",
        "I don't want any more whatsapp msgs from you",
        "remove my number from your list",
        "STOPPP",
        "who is this? stop",
    ],
)
def test_a_natural_opt_out_acts_at_once_and_is_confirmed(app, say, text):
    say(text_from(text))

    assert asha().opted_out
    [event] = ConsentEvent.select()
    assert (event.action, event.source) == ("opt_out", "keyword")
    assert event.evidence["text"] == text and event.evidence["phrase"]
    [reply] = answers()
    assert reply.kind == OPT_OUT_CONFIRMATION and reply.language == "en"


def test_a_natural_opt_out_in_hindi_is_confirmed_in_hindi(app, say):
    say(text_from("मुझे आपके मैसेज नहीं चाहिए, बंद करो"))

    assert asha().opted_out
    [reply] = answers()
    assert reply.language == "hi" and devanagari(reply.text)


@pytest.mark.parametrize(
    "text",
    [
        "please don't stop sending me updates",
        "cancel my order",
        "the bus stop is near my house",
        "can you stop the delivery, I am not home",
    ],
)
def test_what_only_sounds_like_stop_never_opts_out(app, say, text):
    say(text_from(text))

    assert not asha().opted_out
    assert ConsentEvent.select().count() == 0


def test_an_unclear_stop_is_asked_with_buttons_and_the_tap_decides(app, say, fake_whatsapp):
    say(text_from("too many messages"))

    customer = asha()
    assert not customer.opted_out
    [question] = answers()
    assert question.kind == OPT_OUT_QUESTION
    assert [button[0] for button in question.params["reply_buttons"]] == [QUESTION_YES, QUESTION_NO]
    assert "STOP" in question.text

    say(tap(QUESTION_YES, "Stop messages"))

    assert asha().opted_out
    [event] = ConsentEvent.select()
    assert (event.action, event.category, event.source) == ("opt_out", "all", "question")
    assert answers()[-1].kind == OPT_OUT_CONFIRMATION


def test_keep_them_keeps_the_customer_subscribed(app, say):
    say(text_from("why are you messaging me"))
    say(tap(QUESTION_NO, "Keep them"))

    assert not asha().opted_out
    assert ConsentEvent.select().count() == 0
    assert "keep getting messages" in answers()[-1].text


def test_the_question_goes_to_meta_as_reply_buttons(
    make_app, meta_settings, sign, fake_whatsapp, run_jobs
):
    """The fake Graph API checks the interactive body as Meta documents it (1-3 reply
    buttons, unique ids, titles of 1-20 characters)."""
    app = make_app(meta_settings)
    client = app.test_client()
    raw = json.dumps(text_from("enough")).encode()
    headers = {"X-Hub-Signature-256": "sha256=" + sign(SECRETS["meta_app_secret"], raw)}
    response = client.post(
        "/webhooks/whatsapp/meta", data=raw, headers=headers, content_type="application/json"
    )
    assert response.status_code == 200
    run_jobs()
    run_jobs()

    [sent] = [request.json for request in fake_whatsapp.requests]
    assert sent["type"] == "interactive" and sent["interactive"]["type"] == "button"
    buttons = sent["interactive"]["action"]["buttons"]
    assert [b["reply"]["id"] for b in buttons] == [QUESTION_YES, QUESTION_NO]
    [question] = answers()
    assert question.provider_message_id  # Graph accepted it


@pytest.mark.parametrize(
    "text", ["where is my parcel", "has my package shipped?", "kab tak aayega mera parcel"]
)
def test_order_questions_without_the_word_order_are_answered(app, say, text):
    queued_message(phone="+" + ASHA)
    say(text_from(text))

    [reply] = [m for m in answers() if m.kind == "reply"]
    assert "#1042" in reply.text


def test_english_from_an_indian_number_is_answered_in_english(app, say):
    say(text_from("Hey"))

    [reply] = answers()
    assert reply.language == "en" and not devanagari(reply.text)


def test_the_customers_writing_beats_the_storefront_locale(app, say):
    queued_message(phone="+" + ASHA, language="en")  # Shopify said customer_locale "en"
    assert asha().language_source == "shop"

    say(text_from("मेरा पार्सल कहाँ है?"))

    [reply] = [m for m in answers() if m.kind == "reply"]
    assert reply.language == "hi" and devanagari(reply.text)
    assert asha().written_language == "hi"
    # A later "ok" says little: their Hindi holds.
    say(text_from("ok"))
    assert answers()[-1].language == "hi" or len(answers()) == 1


def test_a_language_the_customer_chose_wins_over_the_message(app, say):
    say(text_from("हिंदी"))  # the language switch
    customer = asha()
    assert (customer.language, customer.language_source) == ("hi", "customer")

    say(text_from("where is my order"))

    assert answers()[-1].language == "hi"


def test_a_message_older_than_the_service_window_is_kept_but_not_answered(app, say):
    old = time.time() - timedelta(hours=25).total_seconds()
    say(text_from("hello?", at=old))
    say(text_from("pls stop sending me messages", at=old))

    assert InboundMessage.select().where(InboundMessage.handled == True).count() == 2  # noqa: E712
    assert answers() == []
    customer = asha()
    assert customer.opted_out  # a stop is a stop, even late
    assert customer.last_fallback_reply_at is None  # the help reply is still due
    say(text_from("hello?"))
    assert len(answers()) == 1


def test_make_say_posts_what_metas_parser_reads_as_the_customers_message():
    """scripts/say.py (`make say`) builds the body a newcomer tries the conversation with."""
    import importlib.util
    from pathlib import Path

    from bot.delivery.providers.meta import MetaProvider

    path = Path(__file__).resolve().parents[2] / "scripts" / "say.py"
    spec = importlib.util.spec_from_file_location("say", path)
    say_script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(say_script)

    [text] = MetaProvider.parse_webhook(None, say_script.webhook(ASHA, "kab aayega", None))
    [tapped] = MetaProvider.parse_webhook(None, say_script.webhook(ASHA, None, QUESTION_YES))
    assert (text.from_phone, text.text) == ("+" + ASHA, "kab aayega")
    assert tapped.button_payload == QUESTION_YES


def test_order_updates_follow_the_language_the_customer_writes_in(app, say):
    """The storefront says en; the customer writes Hindi: the next update is the Hindi
    template (order_shipped is approved in en and hi)."""
    first = queued_message(phone="+" + ASHA, language="en")
    assert first.language == "en"

    say(text_from("मेरा पार्सल कब आएगा?"))
    later = queued_message(phone="+" + ASHA, language="en", event_id="evt-2", order_id="1043")

    assert later.language == "hi"


def test_an_admins_language_is_a_choice_the_storefront_does_not_override(app, client):
    from tests.conftest import ADMIN

    customer = queued_message(phone="+" + ASHA, language="en").customer
    response = client.patch(
        f"/admin/api/customers/{customer.id}", json={"language": "hi"}, headers=ADMIN
    )
    assert response.status_code == 200
    assert asha().language_source == "admin"
    later = queued_message(phone="+" + ASHA, language="en", event_id="evt-2", order_id="1043")
    assert later.language == "hi"
