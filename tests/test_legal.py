"""The public legal pages: the shop's privacy notice and terms for WhatsApp messages."""

from __future__ import annotations

import pytest

from bot.core.legal import legal_url


@pytest.fixture
def shop(make_app, settings):
    app = make_app(
        settings.replace(
            shop_name="Asha & Sons",
            shop_contact_email="privacy@asha.example",
            retention_days=90,
        )
    )
    return app.test_client()


@pytest.mark.parametrize("page", ["privacy", "terms"])
def test_legal_pages_are_public_and_name_the_shop(shop, page):
    response = shop.get(f"/legal/{page}")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "Asha &amp; Sons" in html  # escaped
    assert "privacy@asha.example" in html
    assert "STOP" in html
    assert "<script" not in html and "http" not in html.replace("http-equiv", "")


def test_privacy_notice_says_what_is_kept_for_how_long_and_who_processes_it(shop):
    html = shop.get("/legal/privacy").get_data(as_text=True)
    for words in ("order", "phone number", "90 days", "Meta", "erase", "marketing"):
        assert words in html


def test_without_a_contact_email_the_notice_points_to_the_shop(make_app, settings):
    html = make_app(settings).test_client().get("/legal/privacy").get_data(as_text=True)
    assert "contact our shop" in html and "mailto:" not in html


def test_legal_url_is_absolute_only_with_a_public_base_url(settings):
    assert legal_url(settings, "privacy") is None
    configured = settings.replace(public_base_url="https://shop.example.com/")
    assert legal_url(configured, "privacy") == "https://shop.example.com/legal/privacy"
    assert legal_url(configured, "terms") == "https://shop.example.com/legal/terms"
    with pytest.raises(ValueError):
        legal_url(configured, "cookies")
