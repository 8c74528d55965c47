"""The WhatsApp providers: adding one is adding a module and a line here."""

from __future__ import annotations

from werkzeug.utils import import_string

from bot.providers.base import Provider

PROVIDER_CLASSES = {
    "meta": "bot.providers.meta.MetaProvider",
    "interakt": "bot.providers.interakt.InteraktProvider",
    "sandbox": "bot.providers.sandbox.SandboxProvider",
}


def provider_class(name: str) -> type[Provider]:
    return import_string(PROVIDER_CLASSES[name])
