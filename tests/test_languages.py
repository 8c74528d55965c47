"""Languages in one spelling (BCP 47) wherever they come from, money in the customer's full
locale, segments matching a language with or without its region (issue 17, items 1 and 4)."""

from __future__ import annotations

import importlib.util
import json
from decimal import Decimal
from pathlib import Path

import pytest

from bot.campaigns import segments
from bot.core.models import MIGRATIONS_DIR, Customer, InboundMessage, Message, db, utcnow
from bot.core.notifications import choose_language
from bot.intake.sources.base import CustomerFacts
from tests.conftest import ADMIN, SECRETS, load_payload
from tests.test_conversation_flow import ASHA, inbound, replies_to

INDIAN = "+919812345678"
GERMAN = "+4915123456789"
BRAZILIAN = "+5511987654321"


def post_event(client, sign, *, kind="placed", total, currency, language, phone, event_id):
    event = load_payload("generic/order_shipped") | {"event": kind, "event_id": event_id}
    event["order"] |= {"total": total, "currency": currency}
    event["customer"] |= {"language": language, "phone": phone}
    raw = json.dumps(event).encode()
    signature = "sha256=" + sign(SECRETS["order_webhook_secret"], raw)
    response = client.post(
        "/webhooks/orders",
        data=raw,
        headers={"X-Signature-256": signature},
        content_type="application/json",
    )
    assert response.status_code == 202, response.get_json()
    return Message.get_by_id(response.get_json()["message_ids"][0])


# --- item 1: money in the customer's locale ------------------------------------------------


@pytest.mark.parametrize(
    ("language", "phone", "total", "currency", "expected"),
    [
        pytest.param("en-IN", INDIAN, "1250000", "INR", "₹12,50,000.00", id="en-IN lakhs"),
        pytest.param("de", GERMAN, "1234.50", "EUR", "1.234,50\xa0€", id="de"),
        pytest.param("pt-BR", BRAZILIAN, "1999.90", "BRL", "R$\xa01.999,90", id="pt-BR"),
        # Only the language is known: the number's country gives the region.
        pytest.param("en", INDIAN, "1250000", "INR", "₹12,50,000.00", id="en on an Indian number"),
        # German on an Indian number: Babel has no de_IN, so German as Germans write it.
        pytest.param("de", INDIAN, "1234.50", "EUR", "1.234,50\xa0€", id="de on an Indian number"),
    ],
)
def test_an_order_total_is_written_in_the_customers_language_and_region(
    client, sign, language, phone, total, currency, expected
):
    message = post_event(
        client,
        sign,
        total=total,
        currency=currency,
        language=language,
        phone=phone,
        event_id=f"evt-{language}-{phone}",
    )
    assert message.params["body"][2] == expected
    # The template is still the one approved in the customer's language (en, hi): an
    # en-IN or de reader gets "en", the code Meta's send body wants.
    assert message.language == "en"


def test_a_language_babel_lacks_falls_back_to_its_base_then_the_default():
    from bot.core.languages import money_locale

    assert str(money_locale("en-ZZ", INDIAN, "en")) == "en_IN"  # unknown region: base + number
    assert str(money_locale("xx-IN", None, "de")) == "de"  # unknown language: DEFAULT_LANGUAGE
    assert str(money_locale(None, BRAZILIAN, "pt")) == "pt_BR"  # no language: default + number
    assert str(money_locale("en-GB", INDIAN, "en")) == "en_GB"  # a region given wins


# --- item 4: one spelling at every entry point ---------------------------------------------


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("en-IN", "en-IN"),
        ("en_IN", "en-IN"),
        ("en_in", "en-IN"),
        ("EN", "en"),
        ("pt-br", "pt-BR"),
        ("zh_Hant_TW", "zh-Hant-TW"),
        ("iw", "he"),  # Babel's alias, without the region it would guess (IL)
    ],
)
def test_every_spelling_of_a_language_becomes_its_bcp47_tag(value, tag):
    from bot.core.languages import parse_language

    assert parse_language(value) == tag
    assert CustomerFacts(phone=INDIAN, language=value).language == tag  # every shop source


def test_a_hint_babel_does_not_know_is_its_base_language_or_nothing():
    from bot.core.languages import language_tag, parse_language

    assert language_tag("en-ZZ") == "en"
    assert language_tag("xx") is None
    with pytest.raises(ValueError):
        parse_language("xx")


def test_the_generic_event_stores_the_customers_language_as_bcp47(client, sign):
    post_event(
        client,
        sign,
        total="10",
        currency="INR",
        language="en-in",
        phone=INDIAN,
        event_id="evt-lower",
    )
    assert Customer.get(Customer.phone == INDIAN).language == "en-IN"


def test_the_shopify_locale_is_stored_as_bcp47(client, sign):
    from tests.webhooks.test_shops import SHOPIFY_SECRET

    order = load_payload("shopify/orders_create") | {"customer_locale": "pt_br"}
    raw = json.dumps(order).encode()
    headers = {
        "X-Shopify-Hmac-Sha256": sign(SHOPIFY_SECRET, raw, "base64"),
        "X-Shopify-Shop-Domain": "asha-store.myshopify.com",
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": "wh-locale-1",
    }
    response = client.post(
        "/webhooks/orders/shopify", data=raw, headers=headers, content_type="application/json"
    )
    assert response.status_code == 202, response.get_json()
    assert [c.language for c in Customer.select()] == ["pt-BR"]


def test_the_admin_api_stores_a_customers_language_as_bcp47(client):
    created = client.post(
        "/admin/api/customers",
        json={"phone": INDIAN, "name": "Asha", "language": "en_IN"},
        headers=ADMIN,
    )
    assert created.status_code == 201
    assert created.get_json()["language"] == "en-IN"
    changed = client.patch(
        f"/admin/api/customers/{created.get_json()['id']}",
        json={"language": "pt_br"},
        headers=ADMIN,
    )
    assert changed.status_code == 200
    assert changed.get_json()["language"] == "pt-BR"
    assert Customer.get().language == "pt-BR"
    refused = client.patch(
        f"/admin/api/customers/{created.get_json()['id']}",
        json={"language": "xx"},
        headers=ADMIN,
    )
    assert refused.status_code == 400


def test_the_csv_import_stores_a_customers_language_as_bcp47(client):
    csv = "phone,name,language\r\n+919812345678,Asha,hi_in\r\n+919876543210,Ravi,EN-gb\r\n"
    response = client.post(
        "/admin/api/customers/import",
        data=csv.encode(),
        headers={**ADMIN, "X-Requested-With": "dakiya"},
        content_type="text/csv; charset=utf-8",
    )
    assert response.status_code == 200, response.get_json()
    assert sorted(c.language for c in Customer.select()) == ["en-GB", "hi-IN"]


def test_the_conversation_switch_keeps_the_region_of_the_same_language(app, say):
    Customer.create(phone="+" + ASHA, language="en-IN", timezone="Asia/Kolkata")
    say(inbound("english"))
    assert Customer.get().language == "en-IN"  # still en-IN: amounts keep lakhs
    say(inbound("hindi"))
    assert Customer.get().language == "hi"
    assert replies_to(ASHA)[-1].language == "hi"
    assert InboundMessage.select().where(InboundMessage.language == "hi").count() == 1


# --- item 4: segments by language with or without region ------------------------------------


def test_a_segment_language_matches_with_or_without_its_region(app):
    people = {}
    for n, language in enumerate(["en", "en-IN", "en-GB", "hi-IN", "hi", None, "ben"]):
        people[language] = Customer.create(
            phone=f"+9198123456{n:02d}", language=language, timezone="Asia/Kolkata"
        ).id

    def selected(*languages: str) -> set[str | None]:
        found = {c.id for c in segments.segment_query({"languages": list(languages)})}
        return {language for language, id in people.items() if id in found}

    assert selected("en") == {"en", "en-IN", "en-GB"}
    assert selected("en-IN") == {"en-IN"}
    assert selected("en_in") == {"en-IN"}  # spelled any way
    assert selected("EN-gb", "hi") == {"en-GB", "hi", "hi-IN"}
    assert selected("hi-IN") == {"hi-IN"}
    # The preview matches the same customers (none consented to marketing: none targeted).
    assert segments.preview({"languages": ["en"]})["matched"] == 3


# --- template language -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preferred", "approved", "expected"),
    [
        (["en-IN"], ("en", "hi"), "en"),
        (["en-US"], ("en_US", "hi"), "en_US"),
        (["pt-BR"], ("pt_BR", "en"), "pt_BR"),
        (["pt-BR"], ("pt-BR", "en"), "pt_BR"),  # an approved code written BCP 47 style
        (["hi-IN"], ("en", "hi"), "hi"),
    ],
)
def test_the_template_language_is_meta_s_code_for_the_normalised_tag(preferred, approved, expected):
    assert choose_language(preferred, approved, "en") == expected


# --- the migration ---------------------------------------------------------------------------


def test_the_migration_respells_stored_languages(app):
    for n, language in enumerate(["en_IN", "en-IN", "hi_in", "en", "pt_BR", "xx_YY", None]):
        Customer.create(phone=f"+9198123456{n:02d}", language=language)
    customer = Customer.get(Customer.language == "en")
    InboundMessage.create(
        provider="sandbox",
        provider_message_id="in-1",
        phone=customer.phone,
        customer=customer,
        type="text",
        occurred_at=utcnow(),
        language="pt_BR",
    )
    Message.create(phone=customer.phone, dedupe_key="m-1", kind="reply", language="pt-BR")
    Message.create(phone=customer.phone, dedupe_key="m-2", kind="reply", language="en_US")

    path = Path(MIGRATIONS_DIR) / "0013_language_tags.py"
    spec = importlib.util.spec_from_file_location("language_tags", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    migration.up(None, db.obj)

    assert sorted((c.language or "-") for c in Customer.select()) == [
        "-",
        "en",
        "en-IN",
        "en-IN",
        "hi-IN",
        "pt-BR",
        "xx_YY",  # Babel does not know it: left as it was
    ]
    assert InboundMessage.get().language == "pt-BR"
    assert sorted(m.language for m in Message.select()) == ["en_US", "pt_BR"]


def test_campaign_totals_use_the_customers_locale(app):
    from bot.campaigns.campaigns import customer_values
    from bot.core.models import Order
    from bot.core.notifications import customer_locale

    asha = Customer.create(phone=INDIAN, language="en", name="Asha")
    Order.create(
        source="generic", external_id="1", customer=asha, total=Decimal("1250000"), currency="INR"
    )
    values = customer_values(asha, list(Order.select()), customer_locale(asha, None, "en"))
    assert values["order_total"] == "₹12,50,000.00"
