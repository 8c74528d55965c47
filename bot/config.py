"""Settings: read from the environment once, validated, then passed around as a value.

`load_settings()` is the only function that reads `os.environ`; everything else takes a
`Settings`, so tests build one directly and never mutate the environment.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values
from environs import Env, EnvError

PROVIDERS = ("sandbox", "meta", "interakt")
SOURCES = ("generic", "shopify", "woocommerce")

#: The secrets each provider and order source cannot work without.
PROVIDER_SECRETS = {
    "sandbox": (),
    "meta": ("META_ACCESS_TOKEN", "META_PHONE_NUMBER_ID", "META_APP_SECRET", "META_VERIFY_TOKEN"),
    "interakt": ("INTERAKT_API_KEY", "INTERAKT_WEBHOOK_SECRET"),
}
SOURCE_SECRETS = {
    "generic": "ORDER_WEBHOOK_SECRET",
    "shopify": "SHOPIFY_WEBHOOK_SECRET",
    "woocommerce": "WOOCOMMERCE_WEBHOOK_SECRET",
}

DEFAULT_NOTIFICATIONS_FILE = str(Path(__file__).with_name("notifications.toml"))


class ConfigError(Exception):
    """A setting is missing or malformed; the message names every variable at fault."""


@dataclass(frozen=True)
class Settings:
    """Every knob Dakiya has. Field names are the environment variable names, lower-cased."""

    database_url: str = "sqlite:///instance/dakiya.db"
    redis_url: str = ""  # empty: the run command starts an embedded Redis
    whatsapp_provider: str = "sandbox"
    order_sources: tuple[str, ...] = SOURCES

    meta_access_token: str = field(default="", repr=False)
    meta_phone_number_id: str = ""
    meta_app_secret: str = field(default="", repr=False)
    meta_verify_token: str = field(default="", repr=False)
    meta_api_base_url: str = "https://graph.facebook.com"
    meta_api_version: str = "v23.0"

    interakt_api_key: str = field(default="", repr=False)
    interakt_webhook_secret: str = field(default="", repr=False)
    interakt_api_base_url: str = "https://api.interakt.ai"

    shopify_webhook_secret: str = field(default="", repr=False)
    woocommerce_webhook_secret: str = field(default="", repr=False)
    order_webhook_secret: str = field(default="", repr=False)

    admin_username: str = "admin"
    admin_password_hash: str = field(default="", repr=False)
    shop_name: str = "our shop"
    default_language: str = "en"
    default_timezone: str = "Asia/Kolkata"
    default_region: str = "IN"
    notifications_file: str = DEFAULT_NOTIFICATIONS_FILE

    send_rate_per_second: int = 80
    provider_timeout_seconds: float = 10.0
    max_send_attempts: int = 6
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    send_lease_seconds: int = 120
    ambiguous_send_hold_seconds: int = 900
    sweep_interval_seconds: int = 30
    sandbox_receipt_delay_seconds: float = 1.0
    max_body_bytes: int = 1024 * 1024
    log_level: str = "INFO"

    def secret_for_source(self, source: str) -> str:
        return getattr(self, SOURCE_SECRETS[source].lower())

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)


def missing_secrets(settings: Settings) -> list[str]:
    """Names of the variables the chosen provider and enabled sources need but lack."""
    needed = list(PROVIDER_SECRETS[settings.whatsapp_provider])
    needed += [SOURCE_SECRETS[s] for s in settings.order_sources if s in SOURCE_SECRETS]
    return [name for name in needed if not getattr(settings, name.lower())]


def validate(settings: Settings) -> Settings:
    """Refuse settings the process cannot run with, naming every variable at fault."""
    problems = []
    if settings.whatsapp_provider not in PROVIDERS:
        problems.append(f"WHATSAPP_PROVIDER must be one of {', '.join(PROVIDERS)}")
    else:
        problems += [f"{name} is required" for name in missing_secrets(settings)]
    unknown = set(settings.order_sources) - set(SOURCES)
    if unknown:
        problems.append(f"ORDER_SOURCES has unknown sources: {', '.join(sorted(unknown))}")
    if settings.send_rate_per_second < 1:
        problems.append("SEND_RATE_PER_SECOND must be at least 1")
    if not Path(settings.notifications_file).is_file():
        problems.append(f"NOTIFICATIONS_FILE does not exist: {settings.notifications_file}")
    if problems:
        raise ConfigError("invalid configuration: " + "; ".join(problems))
    return settings


def load_settings(env_file: str | None = ".env") -> Settings:
    """Read every setting from the environment (and `.env`, if present) and validate it."""
    env = Env(eager=False)
    raw = dict(os.environ)
    if env_file and Path(env_file).is_file():
        env.read_env(env_file, recurse=False)
        raw = {**dotenv_values(env_file), **raw}  # the process environment wins
    defaults = Settings()
    values = {}
    for f in dataclasses.fields(Settings):
        name = f.name.upper()
        default = getattr(defaults, f.name)
        if not (raw.get(name) or "").strip():
            continue  # unset or blank (as .env.example leaves it): the default
        if isinstance(default, bool):
            values[f.name] = env.bool(name, default)
        elif isinstance(default, int):
            values[f.name] = env.int(name, default)
        elif isinstance(default, float):
            values[f.name] = env.float(name, default)
        elif isinstance(default, tuple):
            values[f.name] = tuple(env.list(name, list(default)))
        else:
            values[f.name] = env.str(name, default)
    try:
        env.seal()
    except EnvError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from exc
    return validate(dataclasses.replace(defaults, **values))
