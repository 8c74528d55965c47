"""Rotating a webhook secret without losing deliveries (issue 16): for every signed
source, the previous secret is accepted beside the new one until `<NAME>_PREVIOUS_UNTIL`,
and refused (401, nothing stored) after it; a half-configured rotation stops start-up."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.config import ROTATABLE_SECRETS, ConfigError, validate
from bot.core.models import InboundMessage, OrderEvent, StatusEvent
from tests.conftest import load_payload

OLD = "the-secret-before-rotation"


def later(hours: int) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def post_generic(client, sign, secret):
    body = json.dumps(load_payload("generic/order_shipped")).encode()
    headers = {"X-Signature-256": "sha256=" + sign(secret, body)}
    return client.post(
        "/webhooks/orders", data=body, headers=headers, content_type="application/json"
    )


def post_shopify(client, sign, secret):
    body = json.dumps(load_payload("shopify/orders_create")).encode()
    headers = {
        "X-Shopify-Hmac-Sha256": sign(secret, body, "base64"),
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": f"wh-{secret[:8]}",
    }
    return client.post(
        "/webhooks/orders/shopify", data=body, headers=headers, content_type="application/json"
    )


def post_woocommerce(client, sign, secret):
    body = json.dumps(load_payload("woocommerce/order_created")).encode()
    headers = {
        "X-WC-Webhook-Topic": "order.created",
        "X-WC-Webhook-Signature": sign(secret, body, "base64"),
        "X-WC-Webhook-Delivery-ID": f"d-{secret[:8]}",
    }
    return client.post(
        "/webhooks/orders/woocommerce", data=body, headers=headers, content_type="application/json"
    )


def post_meta(client, sign, secret):
    body = json.dumps(load_payload("meta/statuses")["delivered"]).encode()
    headers = {"X-Hub-Signature-256": "sha256=" + sign(secret, body)}
    return client.post(
        "/webhooks/whatsapp/meta", data=body, headers=headers, content_type="application/json"
    )


def post_interakt(client, sign, secret):
    body = json.dumps(next(iter(load_payload("interakt/webhooks").values()))).encode()
    headers = {"Interakt-Signature": "sha256=" + sign(secret, body)}
    return client.post(
        "/webhooks/whatsapp/interakt", data=body, headers=headers, content_type="application/json"
    )


SOURCES = {
    "ORDER_WEBHOOK_SECRET": (post_generic, OrderEvent),
    "SHOPIFY_WEBHOOK_SECRET": (post_shopify, OrderEvent),
    "WOOCOMMERCE_WEBHOOK_SECRET": (post_woocommerce, OrderEvent),
    "META_APP_SECRET": (post_meta, StatusEvent),
    "INTERAKT_WEBHOOK_SECRET": (post_interakt, None),
}


def test_every_rotatable_secret_is_tried_here():
    assert set(SOURCES) == set(ROTATABLE_SECRETS)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_the_previous_secret_is_accepted_until_its_time_beside_the_new_one(
    make_app, settings, sign, name
):
    post, _ = SOURCES[name]
    current = getattr(settings, name.lower())
    rotating = settings.replace(
        **{f"{name.lower()}_previous": OLD, f"{name.lower()}_previous_until": later(1)}
    )
    client = make_app(rotating).test_client()

    assert post(client, sign, OLD).status_code in (200, 202)
    assert post(client, sign, current).status_code in (200, 202)
    assert post(client, sign, "a-secret-nobody-set").status_code == 401


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_after_its_time_the_previous_secret_is_refused_and_nothing_is_stored(
    make_app, settings, sign, name
):
    post, stored = SOURCES[name]
    expired = settings.replace(
        **{f"{name.lower()}_previous": OLD, f"{name.lower()}_previous_until": later(-1)}
    )
    client = make_app(expired).test_client()

    assert post(client, sign, OLD).status_code == 401
    for model in (stored, InboundMessage) if stored else (InboundMessage,):
        assert model.select().count() == 0


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"shopify_webhook_secret_previous": OLD}, "SHOPIFY_WEBHOOK_SECRET_PREVIOUS_UNTIL"),
        (
            {"meta_app_secret_previous": OLD, "meta_app_secret_previous_until": "next week"},
            "META_APP_SECRET_PREVIOUS_UNTIL is not an ISO 8601 time",
        ),
    ],
)
def test_a_half_configured_rotation_stops_start_up_naming_the_variable(settings, changes, named):
    with pytest.raises(ConfigError, match=named):
        validate(settings.replace(**changes))


def test_a_deadline_without_a_zone_is_utc(settings):
    until = (datetime.now(UTC) + timedelta(minutes=5)).replace(tzinfo=None).isoformat()
    rotating = settings.replace(
        order_webhook_secret_previous=OLD, order_webhook_secret_previous_until=until
    )
    assert rotating.secrets_for("ORDER_WEBHOOK_SECRET") == (settings.order_webhook_secret, OLD)
    ten_minutes = datetime.now(UTC) + timedelta(minutes=10)
    assert rotating.secrets_for("ORDER_WEBHOOK_SECRET", ten_minutes) == (
        settings.order_webhook_secret,
    )


def test_signed_deliveries_are_never_rate_limited_but_bad_signatures_are(make_app, settings, sign):
    """Issue 19: a campaign's receipts come faster than any per-address limit; only
    deliveries that fail their signature count against WEBHOOK_RATE_LIMIT."""
    client = make_app(settings.replace(webhook_rate_limit="3/minute")).test_client()

    assert [post_meta(client, sign, settings.meta_app_secret).status_code for _ in range(6)] == [
        200
    ] * 6
    bad = [post_meta(client, sign, "forged").status_code for _ in range(4)]
    assert bad == [401, 401, 401, 429]
    limited = post_meta(client, sign, "forged")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert post_meta(client, sign, settings.meta_app_secret).status_code == 200


def test_guessing_the_verify_token_is_limited_like_forging_a_signature(make_app, settings):
    """The handshake is not rate limited for Meta, but a wrong verify token counts with
    the bad signatures: a guesser gets 429 after WEBHOOK_RATE_LIMIT of them."""
    client = make_app(settings.replace(webhook_rate_limit="3/minute")).test_client()

    def handshake(token: str):
        query = f"hub.mode=subscribe&hub.challenge=42&hub.verify_token={token}"
        return client.get(f"/webhooks/whatsapp/meta?{query}")

    assert [handshake(f"guess-{n}").status_code for n in range(4)] == [403, 403, 403, 429]
    assert handshake(f"guess-{5}").headers["Retry-After"]
    right = handshake(settings.meta_verify_token)
    assert right.status_code == 200 and right.get_data(as_text=True) == "42"
