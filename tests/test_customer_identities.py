"""Customers known by phone, by BSUID (a WhatsApp username user, PROVIDERS.md §9.1) or
both, end to end through Meta's webhook: a username-only customer is answered through
`recipient` and their STOP honoured, a known customer's later username-only message is
theirs, two rows of one person are merged, and changed identities re-key the customer."""

from __future__ import annotations

import copy
import itertools
import json
import time

import pytest

from bot.core.models import (
    AuditLog,
    ConsentEvent,
    Customer,
    InboundMessage,
    Message,
    Order,
    Reason,
    State,
    utcnow,
)
from bot.extensions import services
from tests.conftest import PAYLOADS, SECRETS, load_payload
from tests.factories import queued_message

ASHA_PHONE = "919812345678"
ASHA_BSUID = "IN.1349120865530274"
_ids = itertools.count(1)


def message_from(
    text: str,
    *,
    phone: str | None = None,
    user_id: str | None = None,
    username: str | None = "@asha",
    on_message: bool = True,
) -> dict:
    """Meta's text-message webhook from a phone, a BSUID or both. With both, the BSUID
    sits on the contact only unless `on_message` (Meta's examples do either)."""
    body = copy.deepcopy(load_payload("meta/messages")["text"])
    value = body["entry"][0]["changes"][0]["value"]
    message = value["messages"][0]
    contact = {"profile": {"name": "Asha"}}
    if username:
        contact["profile"]["username"] = username
    if phone:
        contact["wa_id"] = phone
        message["from"] = phone
    else:
        del message["from"]
    if user_id:
        contact["user_id"] = user_id
        if on_message or not phone:
            message["from_user_id"] = user_id
    value["contacts"] = [contact]
    message.update({"id": f"wamid.ID{next(_ids):06d}", "timestamp": str(int(time.time()))})
    message["text"]["body"] = text
    return body


def system_message(system: dict, sender: dict) -> dict:
    """A `type: system` message as Meta's system messages reference shows it."""
    body = copy.deepcopy(load_payload("meta/messages")["text"])
    value = body["entry"][0]["changes"][0]["value"]
    del value["contacts"]  # system messages carry no contacts array
    value["messages"] = [
        {
            **sender,
            "id": f"wamid.SYS{next(_ids):06d}",
            "timestamp": str(int(time.time())),
            "type": "system",
            "system": system,
        }
    ]
    return body


@pytest.fixture
def meta_app(make_app, meta_settings):
    return make_app(meta_settings)


@pytest.fixture
def meta_say(meta_app, sign, run_jobs):
    client = meta_app.test_client()

    def post(body: dict) -> None:
        raw = json.dumps(body).encode()
        response = client.post(
            "/webhooks/whatsapp/meta",
            data=raw,
            headers={"X-Hub-Signature-256": "sha256=" + sign(SECRETS["meta_app_secret"], raw)},
            content_type="application/json",
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        run_jobs()
        run_jobs()

    return post


def sent_bodies(fake_whatsapp) -> list[dict]:
    return [r.json for r in fake_whatsapp.requests]


def test_a_username_only_customer_is_answered_through_recipient_and_their_stop_honoured(
    meta_say, fake_whatsapp
):
    meta_say(message_from("hi", user_id=ASHA_BSUID))

    customer = Customer.get(Customer.user_id == ASHA_BSUID)
    assert (customer.phone, customer.username, customer.name) == (None, "@asha", "Asha")
    assert customer.last_inbound_at is not None  # their service window is open
    [help_reply] = sent_bodies(fake_whatsapp)
    assert help_reply["recipient"] == ASHA_BSUID and "to" not in help_reply

    meta_say(message_from("STOP", user_id=ASHA_BSUID))

    customer = Customer.get_by_id(customer.id)
    assert customer.opted_out
    [event] = ConsentEvent.select().where(ConsentEvent.customer == customer)
    assert (event.action, event.source) == ("opt_out", "keyword")
    confirmation = sent_bodies(fake_whatsapp)[-1]
    assert confirmation["recipient"] == ASHA_BSUID
    assert "won't get messages" in confirmation["text"]["body"]
    assert Customer.select().count() == 1


def test_a_username_only_customer_writing_in_india_is_answered_in_hindi_by_the_bsuid_country(
    meta_say, fake_whatsapp
):
    meta_say(message_from("??", user_id=ASHA_BSUID))

    [reply] = Message.select().where(Message.kind == "reply")
    assert reply.language == "hi"  # the "IN." of the BSUID, as a +91 number would be


def test_a_known_customer_is_linked_to_their_bsuid_and_recognised_when_they_write_by_username(
    meta_say, fake_whatsapp
):
    order_message = queued_message(phone="+" + ASHA_PHONE)
    meta_say(message_from("hi", phone=ASHA_PHONE, user_id=ASHA_BSUID, on_message=False))
    customer = Customer.get(Customer.phone == "+" + ASHA_PHONE)
    assert (customer.user_id, customer.username) == (ASHA_BSUID, "@asha")

    fake_whatsapp.reset()
    meta_say(message_from("STOP", user_id=ASHA_BSUID))  # no number this time

    assert Customer.select().count() == 1
    customer = Customer.get_by_id(customer.id)
    assert customer.opted_out
    assert InboundMessage.select().where(InboundMessage.customer == customer).count() == 2
    [confirmation] = sent_bodies(fake_whatsapp)
    # A customer whose number is known keeps being reached by it (Meta's advice).
    assert confirmation["to"] == ASHA_PHONE and "recipient" not in confirmation
    assert Message.get_by_id(order_message.id).customer_id == customer.id


def test_two_rows_of_one_person_are_merged_with_the_stricter_consent_and_audited(
    meta_say, fake_whatsapp
):
    order_message = queued_message(phone="+" + ASHA_PHONE)
    run_first = Customer.get(Customer.phone == "+" + ASHA_PHONE)
    meta_say(message_from("STOP", user_id=ASHA_BSUID))  # by username: a second row
    by_username = Customer.get(Customer.user_id == ASHA_BSUID)
    assert by_username.id != run_first.id and by_username.opted_out

    meta_say(message_from("hello", phone=ASHA_PHONE, user_id=ASHA_BSUID))

    [customer] = Customer.select()
    assert customer.id == run_first.id  # the row known by the number stays
    assert (customer.phone, customer.user_id) == ("+" + ASHA_PHONE, ASHA_BSUID)
    assert customer.opted_out  # their STOP by username binds the merged customer
    assert customer.last_inbound_at is not None
    assert {e.customer_id for e in ConsentEvent.select()} == {customer.id}
    assert [e.source for e in ConsentEvent.select().order_by(ConsentEvent.id)] == [
        "keyword",
        "merge",
    ]
    assert InboundMessage.select().where(InboundMessage.customer == customer).count() == 2
    assert Message.select().where(Message.customer != customer).count() == 0
    assert Order.get(Order.id == Message.get_by_id(order_message.id).order_id).customer_id == (
        customer.id
    )
    [merge] = AuditLog.select().where(AuditLog.action == "merge_customers")
    assert merge.subject == str(customer.id)
    assert merge.details["merged_customer_id"] == by_username.id
    assert ASHA_PHONE not in json.dumps(merge.details)  # the audit log names no one


def test_marketing_consent_after_a_merge_counts_only_rows_that_said_something(app):
    from bot.policy import consent
    from bot.policy.identities import Identity, resolve

    now = utcnow()
    salt = services().settings.suppression_salt
    by_phone = resolve(Identity(phone="+" + ASHA_PHONE), now, salt=salt).customer
    consent.record_opt_in(by_phone, consent.MARKETING, "shopify", {}, now)
    resolve(Identity(user_id=ASHA_BSUID), now, salt=salt)  # silent about marketing

    merged = resolve(Identity(phone="+" + ASHA_PHONE, user_id=ASHA_BSUID), now, salt=salt)

    customer = Customer.get_by_id(merged.customer.id)
    assert customer.marketing_opt_in  # the silent row's default "no" is not a "no"
    assert merged.merged == (by_phone.id, merged.merged[1])


def test_a_marketing_resume_by_bsuid_only_reaches_the_customer_of_that_bsuid(meta_say, payload):
    meta_say(message_from("hi", phone=ASHA_PHONE, user_id=ASHA_BSUID))
    body = copy.deepcopy(payload("meta/other")["user_preferences"])
    preference = body["entry"][0]["changes"][0]["value"]["user_preferences"][0]
    preference.pop("wa_id", None)
    preference["user_id"] = ASHA_BSUID
    preference["value"] = "resume"

    meta_say(body)

    customer = Customer.get(Customer.user_id == ASHA_BSUID)
    assert customer.phone == "+" + ASHA_PHONE
    [event] = ConsentEvent.select().where(ConsentEvent.category == "marketing")
    assert (event.customer_id, event.action) == (customer.id, "opt_in")
    assert customer.marketing_opt_in


def test_a_changed_bsuid_re_keys_the_customer(meta_say):
    meta_say(message_from("hi", user_id=ASHA_BSUID))
    new_bsuid = "IN.9876543210987654"

    meta_say(
        system_message(
            {
                "body": "User A changed their user ID",
                "type": "user_changed_user_id",
                "previous_user_id": ASHA_BSUID,
                "user_id": new_bsuid,
            },
            {"from_user_id": ASHA_BSUID},
        )
    )

    [customer] = Customer.select()
    assert customer.user_id == new_bsuid
    assert InboundMessage.select().count() == 1  # a system message is no customer message
    assert Message.select().count() == 1  # and gets no reply
    [rekey] = AuditLog.select().where(AuditLog.action == "rekey_customer")
    assert rekey.subject == str(customer.id)


def test_a_genuine_number_change_moves_the_customer_and_their_waiting_messages(
    meta_app, sign, run_jobs
):
    # pywa's tests/data/updates/system.json "phone_number_change" (commit 0bcf2f19).
    path = PAYLOADS / "meta" / "real" / "pywa__system__phone_number_change.json"
    # Its numbers are placeholders no number plan has, so the customer is stored directly.
    customer = Customer.create(phone="+972987654321")
    waiting = Message.create(
        customer=customer,
        phone=customer.phone,
        dedupe_key="campaign:1:1",
        kind="campaign",
        category="marketing",
        queue="campaigns",
        language="en",
        template_name="sale",
    )
    raw = path.read_bytes()
    response = meta_app.test_client().post(
        "/webhooks/whatsapp/meta",
        data=raw,
        headers={"X-Hub-Signature-256": "sha256=" + sign(SECRETS["meta_app_secret"], raw)},
        content_type="application/json",
    )
    run_jobs()

    assert response.status_code == 200
    [customer] = Customer.select()
    assert customer.phone == "+972912345678"
    assert Message.get_by_id(waiting.id).phone == "+972912345678"
    assert InboundMessage.select().count() == 0


def test_a_message_that_cannot_go_to_a_bsuid_goes_to_the_number_when_known(
    meta_app, fake_whatsapp, run_jobs
):
    from tests.fakes.provider_server import meta_error

    message = queued_message(phone="+" + ASHA_PHONE)
    Customer.update(user_id=ASHA_BSUID).execute()
    Message.update(phone=None, user_id=ASHA_BSUID).where(Message.id == message.id).execute()
    fake_whatsapp.script((400, meta_error(131062, "BSUID recipients not supported")))

    run_jobs()
    time.sleep(1.1)  # the resend is due at once, kicked on the next whole second
    run_jobs()

    first, second = sent_bodies(fake_whatsapp)
    assert first["recipient"] == ASHA_BSUID and second["to"] == ASHA_PHONE
    message = Message.get_by_id(message.id)
    assert (message.state, message.phone) == (State.SENT, "+" + ASHA_PHONE)


def test_a_message_that_cannot_go_to_a_bsuid_fails_with_its_reason_without_a_number(
    meta_say, fake_whatsapp
):
    from tests.fakes.provider_server import meta_error

    fake_whatsapp.script((400, meta_error(131062, "BSUID recipients not supported")))
    meta_say(message_from("hi", user_id=ASHA_BSUID))

    [reply] = Message.select()
    assert (reply.state, reply.reason) == (State.FAILED, Reason.BSUID_NOT_SUPPORTED)
    assert len(fake_whatsapp.requests) == 1


def test_a_provider_that_sends_to_numbers_only_suppresses_a_username_only_reply(
    make_app, settings, fake_whatsapp, sign, run_jobs
):
    app = make_app(
        settings.replace(whatsapp_provider="interakt", interakt_api_base_url=fake_whatsapp.url)
    )
    with app.app_context():
        from bot.core.rows import get_or_create_bsuid_customer

        customer, _ = get_or_create_bsuid_customer(
            ASHA_BSUID, utcnow(), salt=services().settings.suppression_salt
        )
        row = Message.create(
            customer=customer,
            user_id=ASHA_BSUID,
            dedupe_key="reply:x",
            kind="reply",
            category="service",
            queue="orders",
            language="en",
            text="hello",
        )
        services().queues["orders"].enqueue("jobs.send.send_message", row.id)
    run_jobs()

    row = Message.get_by_id(row.id)
    assert (row.state, row.reason) == (State.SUPPRESSED, Reason.NO_PHONE)
    assert fake_whatsapp.requests == []


def test_an_erased_bsuid_is_never_a_customer_again(meta_say, meta_app):
    from tests.conftest import ADMIN

    meta_say(message_from("hi", user_id=ASHA_BSUID))
    client = meta_app.test_client()

    exported = client.get(f"/admin/api/customers/{ASHA_BSUID}/export", headers=ADMIN)
    assert exported.status_code == 200
    assert exported.get_json()["customer"]["user_id"] == ASHA_BSUID
    assert len(exported.get_json()["inbound_messages"]) == 1

    erased = client.delete(f"/admin/api/customers/{ASHA_BSUID}", headers=ADMIN)
    assert erased.status_code == 200, erased.get_json()
    assert Customer.select().count() == 0 and InboundMessage.select().count() == 0

    meta_say(message_from("hi again", user_id=ASHA_BSUID))
    assert Customer.select().count() == 0 and InboundMessage.select().count() == 0


def test_a_bsuid_and_the_number_made_of_its_digits_are_suppressed_apart():
    from bot.core.suppression import suppression_hash

    bsuid, number = "IN.919812345678", "+919812345678"
    assert suppression_hash(bsuid, "salt") != suppression_hash(number, "salt")
    assert suppression_hash(number, "salt") == suppression_hash("+91 98123 45678", "salt")


def shared_contact(phone: str, *, user_id: str = ASHA_BSUID, origin: str = "contact_request"):
    """The `contacts` message a username user's tap on a request-contact-info button
    returns, shaped as Kapso's "request contact info" guide shows it
    (docs.kapso.ai/docs/whatsapp/send-messages/request-contact-info, fetched 2026-12-04):
    `from_user_id`, no `from`, one card of `origin` contact_request with the number."""
    body = message_from("", user_id=user_id)
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    del message["text"]
    message["type"] = "contacts"
    message["contacts"] = [
        {
            "origin": origin,
            "phones": [{"phone": "+" + phone, "wa_id": phone, "type": "CELL"}],
        }
    ]
    return body


@pytest.fixture
def asha_has_an_order(meta_app, run_jobs, fake_whatsapp):
    """Asha ordered #1042 (shipped) with her number; the shop knows her by it only."""
    queued_message(phone="+" + ASHA_PHONE)
    run_jobs()
    fake_whatsapp.reset()


def test_a_username_user_asking_for_their_order_is_asked_for_their_number_and_shown_nothing(
    asha_has_an_order, meta_say, fake_whatsapp
):
    meta_say(message_from("where is my order #1042", user_id=ASHA_BSUID))

    [ask] = sent_bodies(fake_whatsapp)
    assert ask["recipient"] == ASHA_BSUID and "to" not in ask
    assert ask["type"] == "interactive"
    assert ask["interactive"]["type"] == "request_contact_info"
    assert ask["interactive"]["action"] == {"name": "request_contact_info"}
    assert "1042" not in json.dumps(ask)  # whose order it is cannot be checked yet
    assert "phone number" in ask["interactive"]["body"]["text"]
    [row] = Message.select().where(Message.kind == "contact_request")
    assert (row.state, row.category) == (State.SENT, "service")


def test_a_username_user_who_shares_their_number_is_linked_and_answered_their_question(
    asha_has_an_order, meta_say, fake_whatsapp
):
    known = Customer.get(Customer.phone == "+" + ASHA_PHONE)
    meta_say(message_from("where is my order", user_id=ASHA_BSUID))
    assert Customer.select().count() == 2  # until she shares it, two strangers
    fake_whatsapp.reset()

    meta_say(shared_contact(ASHA_PHONE))

    [customer] = Customer.select()
    assert customer.id == known.id  # the customer the shop knew, now with her BSUID
    assert (customer.phone, customer.user_id) == ("+" + ASHA_PHONE, ASHA_BSUID)
    [answer] = sent_bodies(fake_whatsapp)
    assert answer["to"] == ASHA_PHONE  # by number from now on
    assert "Order #1042 is shipped" in answer["text"]["body"]
    assert "https://track.example.com/1042" in answer["text"]["body"]
    [merge] = AuditLog.select().where(AuditLog.action == "merge_customers")
    assert merge.subject == str(customer.id)


def test_a_contact_card_the_customer_forwards_is_never_taken_as_their_number(
    asha_has_an_order, meta_say, fake_whatsapp
):
    meta_say(message_from("where is my order", user_id=ASHA_BSUID))

    meta_say(shared_contact(ASHA_PHONE, origin="other"))  # someone's card from her phone book

    by_username = Customer.get(Customer.user_id == ASHA_BSUID)
    assert by_username.phone is None and Customer.select().count() == 2
    assert "1042" not in json.dumps(sent_bodies(fake_whatsapp))


def test_a_number_shared_without_an_order_question_links_and_lists_the_recent_orders(
    asha_has_an_order, meta_say, fake_whatsapp
):
    meta_say(message_from("track", user_id=ASHA_BSUID))
    fake_whatsapp.reset()
    InboundMessage.update(intent=None).where(InboundMessage.type == "text").execute()

    meta_say(shared_contact(ASHA_PHONE))

    [answer] = sent_bodies(fake_whatsapp)
    assert answer["text"]["body"].startswith("Your recent orders:")
    assert "#1042" in answer["text"]["body"]


def test_a_shop_with_a_contact_request_template_sends_it_in_the_customers_language(
    make_app, meta_settings, sign, run_jobs, fake_whatsapp
):
    app = make_app(
        meta_settings.replace(
            contact_request_template="share_number_v1", contact_request_languages=("en", "hi")
        )
    )
    client = app.test_client()
    raw = json.dumps(message_from("mera order kahan hai", user_id=ASHA_BSUID)).encode()
    response = client.post(
        "/webhooks/whatsapp/meta",
        data=raw,
        headers={"X-Hub-Signature-256": "sha256=" + sign(SECRETS["meta_app_secret"], raw)},
        content_type="application/json",
    )
    assert response.status_code == 200
    run_jobs()

    [ask] = sent_bodies(fake_whatsapp)
    assert ask["recipient"] == ASHA_BSUID
    assert ask["type"] == "template"
    assert ask["template"]["name"] == "share_number_v1"
    assert ask["template"]["language"]["code"] == "hi"
    [row] = Message.select().where(Message.kind == "contact_request")
    assert row.category == "utility"  # a template outside the window is paid as utility


# --- receipts that name the recipient by BSUID (§9.1) ------------------------------------


def receipt_to(wamid: str, *, phone: str | None, user_id: str) -> dict:
    """Meta's `delivered` receipt for `wamid` naming the recipient by BSUID, with or
    without their number (`recipient_id`)."""
    body = copy.deepcopy(load_payload("meta/statuses")["delivered"])
    status = body["entry"][0]["changes"][0]["value"]["statuses"][0]
    status.update(id=wamid, recipient_user_id=user_id, timestamp=str(int(time.time())))
    status.pop("biz_opaque_callback_data", None)
    if phone:
        status["recipient_id"] = phone
    else:
        status.pop("recipient_id", None)
    return body


def sent_to_asha(wamid: str) -> Message:
    message = queued_message(phone="+" + ASHA_PHONE)
    Message.update(state="sent", provider="meta", provider_message_id=wamid).where(
        Message.id == message.id
    ).execute()
    return message


@pytest.mark.parametrize("with_number", [True, False], ids=["number_and_bsuid", "bsuid_only"])
def test_a_receipt_naming_the_bsuid_links_it_so_a_later_username_message_is_the_same_customer(
    meta_say, fake_whatsapp, with_number
):
    message = sent_to_asha("wamid.LINK1")
    phone = ASHA_PHONE if with_number else None

    meta_say(receipt_to("wamid.LINK1", phone=phone, user_id=ASHA_BSUID))

    customer = Customer.get_by_id(message.customer_id)
    assert customer.user_id == ASHA_BSUID
    assert Message.get_by_id(message.id).state == "delivered"
    meta_say(message_from("STOP", user_id=ASHA_BSUID))
    assert Customer.select().count() == 1
    assert Customer.get_by_id(customer.id).opted_out
    assert sent_bodies(fake_whatsapp)[-1]["to"] == ASHA_PHONE


def test_a_receipt_merges_the_username_row_with_the_customer_known_by_number(meta_say):
    meta_say(message_from("hi", user_id=ASHA_BSUID))  # first seen by username only
    message = sent_to_asha("wamid.LINK2")
    assert Customer.select().count() == 2

    meta_say(receipt_to("wamid.LINK2", phone=ASHA_PHONE, user_id=ASHA_BSUID))

    [customer] = Customer.select()
    assert (customer.phone, customer.user_id) == ("+" + ASHA_PHONE, ASHA_BSUID)
    assert Message.get_by_id(message.id).customer_id == customer.id
    assert InboundMessage.get().customer_id == customer.id


def test_a_receipt_for_someone_unknown_creates_no_customer(meta_say):
    meta_say(receipt_to("wamid.NOBODY", phone="919800000001", user_id="IN.777"))
    meta_say(receipt_to("wamid.NOBODY2", phone=None, user_id="IN.778"))
    assert Customer.select().count() == 0
