"""The order sources: adding one is adding a module and a line here."""

from __future__ import annotations

from werkzeug.utils import import_string

from bot.sources.base import Source

SOURCE_CLASSES = {
    "generic": "bot.sources.generic.GenericSource",
    "shopify": "bot.sources.shopify.ShopifySource",
    "woocommerce": "bot.sources.woocommerce.WooCommerceSource",
}


def source_class(name: str) -> type[Source]:
    return import_string(SOURCE_CLASSES[name])
