"""The WhatsApp providers: adding one is adding a module and a line here."""

from __future__ import annotations

from importlib import import_module

from bot.providers.base import Provider

PROVIDER_CLASSES = {
    "meta": "bot.providers.meta.MetaProvider",
    "interakt": "bot.providers.interakt.InteraktProvider",
    "sandbox": "bot.providers.sandbox.SandboxProvider",
}


def provider_class(name: str) -> type[Provider]:
    module, _, cls = PROVIDER_CLASSES[name].rpartition(".")
    return getattr(import_module(module), cls)
