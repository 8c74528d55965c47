"""The WhatsApp providers: adding one is adding a module and a line here."""

from __future__ import annotations

from werkzeug.utils import import_string

from bot.delivery.providers.base import Fact, Provider

PROVIDER_CLASSES = {
    "meta": "bot.delivery.providers.meta.MetaProvider",
    "interakt": "bot.delivery.providers.interakt.InteraktProvider",
    "sandbox": "bot.delivery.providers.sandbox.SandboxProvider",
}


def provider_class(name: str) -> type[Provider]:
    return import_string(PROVIDER_CLASSES[name])


def fact_of(provider: str, code: str | None) -> Fact | None:
    """What `provider`'s error `code` means to Dakiya, for a stored receipt that names its
    provider (a provider Dakiya no longer knows has no facts)."""
    if code is None or provider not in PROVIDER_CLASSES:
        return None
    return provider_class(provider).fact_of(code)
