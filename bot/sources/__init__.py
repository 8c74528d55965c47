"""The order sources: adding one is adding a module and a line here."""

from __future__ import annotations

from importlib import import_module

from bot.sources.base import Source

SOURCE_CLASSES = {
    "generic": "bot.sources.generic.GenericSource",
    "shopify": "bot.sources.shopify.ShopifySource",
    "woocommerce": "bot.sources.woocommerce.WooCommerceSource",
}


def source_class(name: str) -> type[Source]:
    module, _, cls = SOURCE_CLASSES[name].rpartition(".")
    return getattr(import_module(module), cls)
