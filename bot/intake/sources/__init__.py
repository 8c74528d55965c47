"""The order sources: adding one is adding a module and a line here."""

from __future__ import annotations

from werkzeug.utils import import_string

from bot.intake.sources.base import Source

SOURCE_CLASSES = {
    "generic": "bot.intake.sources.generic.GenericSource",
    "shopify": "bot.intake.sources.shopify.ShopifySource",
    "woocommerce": "bot.intake.sources.woocommerce.WooCommerceSource",
}


def source_class(name: str) -> type[Source]:
    return import_string(SOURCE_CLASSES[name])
