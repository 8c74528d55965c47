"""Example requests for the hand-described webhooks of `/openapi.json` (bot/web/openapi.py):
one genuine-shaped delivery each, trimmed to the fields Dakiya reads (PROVIDERS.md §3-§6).

They are what an integrator compares a delivery against, and what the contract test
(tests/test_openapi.py) sends, signed, to check each webhook's success answer.
"""

from __future__ import annotations

from typing import Any

#: A generic order event (bot/intake/sources/schemas.py GenericEventSchema).
GENERIC_ORDER_EVENT: dict[str, Any] = {
    "event_id": "evt_01JD7F6XCV3N5R2B8Q4KZ9T1WM",
    "event": "shipped",
    "occurred_at": "2026-11-25T11:40:02+05:30",
    "order": {
        "id": "SO-2026-004750",
        "number": "4750",
        "total": "1299.00",
        "currency": "INR",
        "status_url": "https://shop.example.in/orders/SO-2026-004750",
        "tracking": {
            "url": "https://www.delhivery.com/track/package/1490211882791",
            "number": "1490211882791",
            "carrier": "Delhivery",
        },
    },
    "customer": {"phone": "+919812345678", "name": "Asha", "language": "hi", "country": "IN"},
}

#: Shopify's Order resource as an orders/create delivery carries it (§3.3).
SHOPIFY_ORDER: dict[str, Any] = {
    "id": 5968216981752,
    "name": "#1042",
    "phone": None,
    "currency": "INR",
    "total_price": "1299.00",
    "financial_status": "paid",
    "order_status_url": "https://shop.example.in/62304157944/orders/7c1e0c35/authenticate",
    "customer_locale": "en-IN",
    "buyer_accepts_marketing": False,
    "payment_gateway_names": ["razorpay"],
    "customer": {
        "first_name": "Asha",
        "phone": "+919812345678",
        "sms_marketing_consent": None,
    },
    "shipping_address": {
        "first_name": "Asha",
        "name": "Asha Rao",
        "phone": "+919812345678",
        "country_code": "IN",
    },
    "billing_address": None,
    "fulfillments": [],
}

#: WooCommerce's REST v3 order as an order.created delivery carries it (§4).
WOOCOMMERCE_ORDER: dict[str, Any] = {
    "id": 727,
    "number": "727",
    "status": "processing",
    "currency": "INR",
    "total": "1299.00",
    "payment_method": "razorpay",
    "billing": {"first_name": "Asha", "phone": "+91 98123 45678", "country": "IN"},
    "shipping": {"first_name": "Asha", "phone": "", "country": "IN"},
    "meta_data": [],
}

#: A customer's text message, as Meta's Cloud API posts it (§5).
META_MESSAGE: dict[str, Any] = {
    "object": "whatsapp_business_account",
    "entry": [
        {
            "id": "102290129340398",
            "changes": [
                {
                    "field": "messages",
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {
                            "display_phone_number": "919000000001",
                            "phone_number_id": "106540352242922",
                        },
                        "contacts": [{"profile": {"name": "Asha"}, "wa_id": "919812345678"}],
                        "messages": [
                            {
                                "from": "919812345678",
                                "id": "wamid.HBgMOTE5ODEyMzQ1Njc4FQIAEhgUM0E0QTY1OTlBRUUwMzgx",
                                "timestamp": "1764000000",
                                "type": "text",
                                "text": {"body": "mera order kab aayega?"},
                            }
                        ],
                    },
                }
            ],
        }
    ],
}

#: A customer's text message, as Interakt posts it (§6).
INTERAKT_MESSAGE: dict[str, Any] = {
    "version": "1.0",
    "timestamp": "2026-11-25T06:10:57.496889",
    "type": "message_received",
    "data": {
        "customer": {
            "id": "52918eb3-bd00-4331-a51d-c4dcffee48d6",
            "channel_phone_number": "919812345678",
            "traits": {"name": "Asha"},
        },
        "message": {
            "id": "60076f05-da52-4dd1-b813-36223c1eded7",
            "chat_message_type": "CustomerMessage",
            "message_status": "Sent",
            "received_at_utc": "2026-11-25T06:10:57.359000",
            "is_template_message": False,
            "message_content_type": "Text",
            "media_url": None,
            "message": "Thank you",
            "meta_data": {},
        },
    },
}
