"""Every webhook secret is compared in constant time (hmac.compare_digest), so a
forger learns nothing from how long a wrong signature took to refuse."""

from __future__ import annotations

import hmac

import pytest

from bot.delivery.providers import provider_class
from bot.intake.sources import source_class
from bot.intake.sources.base import SignatureError

BODY = b'{"event_id": "e1"}'
FORGED = {
    "generic": {"X-Signature-256": "sha256=" + "0" * 64},
    "shopify": {"X-Shopify-Hmac-Sha256": "A" * 44},
    "woocommerce": {"X-WC-Webhook-Signature": "A" * 44},
}
FORGED_PROVIDER = {
    "meta": {"X-Hub-Signature-256": "sha256=" + "0" * 64},
    "interakt": {"Interakt-Signature": "sha256=" + "0" * 64},
}


@pytest.fixture
def comparisons(monkeypatch):
    """Every hmac.compare_digest call, recorded (and still made)."""
    made = []
    real = hmac.compare_digest

    def recording(a, b):
        made.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    return made


@pytest.mark.parametrize("name", sorted(FORGED))
def test_order_sources_compare_signatures_in_constant_time(comparisons, name):
    with pytest.raises(SignatureError):
        source_class(name)("the-secret").verify(BODY, FORGED[name])
    assert len(comparisons) == 1


@pytest.mark.parametrize("name", sorted(FORGED_PROVIDER))
def test_whatsapp_providers_compare_signatures_in_constant_time(comparisons, settings, name):
    assert not provider_class(name)(settings).verify_webhook(BODY, FORGED_PROVIDER[name])
    assert len(comparisons) == 1


def test_meta_handshake_compares_the_verify_token_in_constant_time(comparisons, client):
    query = "hub.mode=subscribe&hub.challenge=1&hub.verify_token=guess"
    assert client.get(f"/webhooks/whatsapp/meta?{query}").status_code == 403
    assert len(comparisons) == 1
