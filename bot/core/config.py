"""Settings: read from the environment once, validated, then passed around as a value.

`load_settings()` is the only function that reads `os.environ`; everything else takes a
`Settings`, so tests build one directly and never mutate the environment.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dotenv import dotenv_values
from environs import Env, EnvError

from bot.core import rate_card
from bot.core.config_rules import (
    alert_rules_from_settings,
    parse_admin_users,
    rules_from_settings,
    weak_hash_problems,
)
from bot.core.languages import parse_language

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

#: The webhook secrets that can be rotated: each has `<NAME>_PREVIOUS`, accepted beside
#: it until `<NAME>_PREVIOUS_UNTIL` (README "Rotating a webhook secret").
ROTATABLE_SECRETS = (
    "META_APP_SECRET",
    "INTERAKT_WEBHOOK_SECRET",
    "SHOPIFY_WEBHOOK_SECRET",
    "WOOCOMMERCE_WEBHOOK_SECRET",
    "ORDER_WEBHOOK_SECRET",
)

DEFAULT_NOTIFICATIONS_FILE = str(Path(__file__).with_name("notifications.toml"))
DEFAULT_RATE_CARD_FILE = str(Path(__file__).with_name("rate_card.toml"))


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
    meta_api_version: str = "v25.0"  # supported to 2028-07-29 (§9.3)
    # Marketing templates through Meta's Marketing Messages API (POST /marketing_messages,
    # §9.3) instead of /messages; utility templates and replies always stay on /messages.
    meta_marketing_messages_api: bool = False

    interakt_api_key: str = field(default="", repr=False)
    interakt_webhook_secret: str = field(default="", repr=False)
    interakt_api_base_url: str = "https://api.interakt.ai"

    shopify_webhook_secret: str = field(default="", repr=False)
    woocommerce_webhook_secret: str = field(default="", repr=False)
    order_webhook_secret: str = field(default="", repr=False)
    # WooCommerce's REST API (v3), for the catch-up pull of orders its webhooks missed
    # (WooCommerce never redelivers; bot/intake/woo_catch_up.py): the site's address and
    # a REST API key with read access. Off until all three are set.
    woocommerce_base_url: str = ""
    woocommerce_consumer_key: str = field(default="", repr=False)
    woocommerce_consumer_secret: str = field(default="", repr=False)
    woocommerce_catch_up_minutes: int = 15  # how often; 0: never
    # The COD round trip (README "Cash on delivery"): the customer's Confirm/Cancel tap is
    # written back to the shop. Shopify: the GraphQL Admin API of a Dev Dashboard app
    # (client-credentials token, refreshed before its 24-hour expiry), tags and a note,
    # and the order cancelled when SHOPIFY_COD_CANCEL_ORDERS. WooCommerce: an order note
    # and a status change through the REST API (WOOCOMMERCE_* above, with Read/Write).
    shopify_shop_domain: str = ""
    shopify_client_id: str = ""
    shopify_client_secret: str = field(default="", repr=False)
    shopify_api_version: str = "2026-10"
    shopify_admin_api_base_url: str = ""  # default: https://<SHOPIFY_SHOP_DOMAIN>
    shopify_cod_confirmed_tag: str = "cod-confirmed"
    shopify_cod_cancelled_tag: str = "cod-cancelled"
    shopify_cod_cancel_orders: bool = False
    woocommerce_cod_confirmed_status: str = "processing"
    woocommerce_cod_cancelled_status: str = "cancelled"
    # No answer this long after the COD confirmation was sent (the reminder between):
    # the order is written back as unconfirmed (0: never).
    cod_unanswered_minutes: int = 1440
    shopify_cod_unanswered_tag: str = "cod-unconfirmed"
    shopify_cod_cancel_unanswered: bool = False
    woocommerce_cod_unanswered_status: str = ""  # empty: a note only
    # Rotating a webhook secret without losing deliveries: the previous one is accepted
    # too until the given time (ISO 8601, UTC when it names no zone).
    meta_app_secret_previous: str = field(default="", repr=False)
    meta_app_secret_previous_until: str = ""
    interakt_webhook_secret_previous: str = field(default="", repr=False)
    interakt_webhook_secret_previous_until: str = ""
    shopify_webhook_secret_previous: str = field(default="", repr=False)
    shopify_webhook_secret_previous_until: str = ""
    woocommerce_webhook_secret_previous: str = field(default="", repr=False)
    woocommerce_webhook_secret_previous_until: str = ""
    order_webhook_secret_previous: str = field(default="", repr=False)
    order_webhook_secret_previous_until: str = ""

    metrics_token: str = field(default="", repr=False)
    # Admin users from the environment: "name:admin|viewer:<password hash>,...".
    admin_users: str = field(default="", repr=False)
    login_max_failures: int = 5
    login_lockout_seconds: int = 900
    # Per-client-IP request limits (flask-limiter syntax), and how many proxies (the
    # PaaS router) stand in front of the app and set X-Forwarded-For.
    webhook_rate_limit: str = "1200/minute"
    admin_rate_limit: str = "120/minute"
    default_rate_limit: str = "300/minute"
    trusted_proxy_hops: int = 0
    shop_name: str = "our shop"
    shop_contact_email: str = ""  # shown on the legal pages for data requests
    public_base_url: str = ""  # e.g. https://shop.example.com: absolute links to /legal/...
    # Keys the hashes of erased numbers (bot/policy/privacy.py); required unless sandbox.
    suppression_salt: str = field(default="", repr=False)
    retention_days: int = 180  # message texts older than this are redacted; 0: never
    default_language: str = "en"
    default_timezone: str = "Asia/Kolkata"
    default_region: str = "IN"
    notifications_file: str = DEFAULT_NOTIFICATIONS_FILE
    # What WhatsApp charges per message, for the spend estimates (bot/core/rate_card.py).
    rate_card_file: str = DEFAULT_RATE_CARD_FILE

    # Quiet hours in the customer's own time zone, "HH:MM-HH:MM" (empty: none).
    quiet_hours_marketing: str = "21:00-09:00"
    quiet_hours_utility: str = ""
    # Frequency caps per customer (0: no cap): per local calendar day, per rolling 7 days.
    marketing_daily_cap: int = 1
    marketing_weekly_cap: int = 3
    utility_daily_cap: int = 0
    utility_weekly_cap: int = 0
    # Meta's pair rate limit: at least this long between two messages to one customer.
    min_gap_seconds: int = 6
    # Business-initiated messaging tier: unique customers per rolling 24 h outside a
    # service window (250, 2000, 10000, 100000 or "unlimited").
    messaging_tier: str = "unlimited"
    # The same template with the same parameters to the same customer within this many
    # seconds is suppressed as a duplicate (0: off).
    duplicate_window_seconds: int = 86400
    # A marketing message not handed to the provider within this many seconds of being
    # created is dropped (reason `expired`) rather than sent late (0: no limit).
    marketing_ttl_seconds: int = 0
    send_rate_per_second: int = 80
    provider_timeout_seconds: float = 10.0
    max_send_attempts: int = 6
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    send_lease_seconds: int = 120
    # The batch sender (bot/delivery/dispatch.py): messages claimed and sent at once by one job,
    # how long one `send_due` job keeps draining before handing over, and how long a
    # batch waits for send-rate slots before putting the rest back.
    send_batch_size: int = 250
    send_job_seconds: float = 20.0
    rate_wait_seconds: float = 5.0
    ambiguous_send_hold_seconds: int = 900
    sweep_interval_seconds: int = 30
    # How long a receipt drain (bot/intake/inbox.py) waits for more before it ends: a
    # campaign's receipts, one per POST, then cost one job, not one per few receipts.
    receipt_drain_linger_seconds: float = 1.0
    sandbox_receipt_delay_seconds: float = 1.0
    max_body_bytes: int = 1024 * 1024
    log_level: str = "INFO"
    log_format: str = "text"  # "json" in production: one JSON object per line (bot/web/logs.py)

    # Alerts (bot/observability/alerts.py): where they go, and the thresholds of each rule (0: off).
    alert_slack_webhook_url: str = field(default="", repr=False)
    smtp_url: str = field(default="", repr=False)  # smtp://user:pass@host:587 or smtps://
    alert_email_from: str = ""
    alert_email_to: tuple[str, ...] = ()
    alert_whatsapp_numbers: tuple[str, ...] = ()
    alert_whatsapp_template: str = ""  # an approved utility template with one body parameter
    alert_window_minutes: int = 15
    alert_failure_rate: float = 0.2
    alert_min_volume: int = 20
    alert_dead_letters: int = 1
    alert_queue_age_seconds: int = 300
    alert_no_send_minutes: int = 15
    alert_signature_failures: int = 20  # per 5 minutes, per webhook
    alert_provider_event_hours: int = 24
    alert_unhandled_updates: int = 20  # per hour, per WhatsApp provider
    alert_cooldown_minutes: int = 60

    # CRM webhooks (bot/integrations/crm.py): message states, consent changes and customer messages,
    # POSTed to each URL, signed with the secret (X-Dakiya-Signature: sha256=<hex>).
    crm_webhook_urls: tuple[str, ...] = ()
    crm_webhook_secret: str = field(default="", repr=False)
    crm_webhook_timeout_seconds: float = 10.0
    # Reminders (bot/intake/reminders.py): minutes after a COD order / abandoned checkout (0: off).
    cod_reminder_minutes: int = 60
    cod_reminder_template: str = ""
    cart_reminder_minutes: int = 60
    cart_reminder_template: str = ""
    # Asking a customer who wrote by username only to share their number, before their
    # orders are shown (bot/conversation/handling.py): an approved utility template with a
    # REQUEST_CONTACT_INFO button and no parameters, in these languages; empty: the
    # request-contact-info button as a reply inside the service window.
    contact_request_template: str = ""
    contact_request_languages: tuple[str, ...] = ("en",)

    def secret_for_source(self, source: str) -> tuple[str, ...]:
        """The secrets an order source's signature may be made with now."""
        return self.secrets_for(SOURCE_SECRETS[source])

    def secrets_for(self, name: str, now: datetime | None = None) -> tuple[str, ...]:
        """`name`'s secret, and its previous one while `<NAME>_PREVIOUS_UNTIL` is ahead."""
        current = getattr(self, name.lower())
        previous = getattr(self, f"{name.lower()}_previous", "")
        until = rotation_deadline(getattr(self, f"{name.lower()}_previous_until", ""))
        now = now or datetime.now(UTC)
        if previous and until is not None and now < until:
            return (current, previous)
        return (current,)

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)


def rotation_deadline(text: str) -> datetime | None:
    """`<NAME>_PREVIOUS_UNTIL` as an aware time (UTC when it names no zone); None if blank
    or unreadable (validate() names the unreadable one)."""
    if not text.strip():
        return None
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def rotation_problems(settings: Settings) -> list[str]:
    problems = []
    for name in ROTATABLE_SECRETS:
        previous = getattr(settings, f"{name.lower()}_previous")
        until = getattr(settings, f"{name.lower()}_previous_until")
        if previous and not until.strip():
            problems.append(f"{name}_PREVIOUS needs {name}_PREVIOUS_UNTIL (when to stop it)")
        elif until.strip() and rotation_deadline(until) is None:
            problems.append(f"{name}_PREVIOUS_UNTIL is not an ISO 8601 time: {until!r}")
    return problems


def missing_secrets(settings: Settings) -> list[str]:
    """Names of the variables the chosen provider and enabled sources need but lack."""
    needed = list(PROVIDER_SECRETS[settings.whatsapp_provider])
    needed += [SOURCE_SECRETS[s] for s in settings.order_sources if s in SOURCE_SECRETS]
    if settings.whatsapp_provider != "sandbox":
        needed.append("SUPPRESSION_SALT")  # erased numbers must not be hashed unkeyed
    return [name for name in needed if not getattr(settings, name.lower())]


def validate(settings: Settings) -> Settings:
    """Refuse settings the process cannot run with, naming every variable at fault."""
    problems = []
    if settings.whatsapp_provider not in PROVIDERS:
        problems.append(f"WHATSAPP_PROVIDER must be one of {', '.join(PROVIDERS)}")
    else:
        problems += [f"{name} is required" for name in missing_secrets(settings)]
    problems += rotation_problems(settings)
    if settings.woocommerce_base_url and not settings.woocommerce_base_url.startswith(
        ("https://", "http://")
    ):
        problems.append("WOOCOMMERCE_BASE_URL must start with https:// (or http://)")
    if settings.cod_unanswered_minutes < 0:
        problems.append("COD_UNANSWERED_MINUTES must be 0 (never) or more")
    if settings.woocommerce_catch_up_minutes < 0:
        problems.append("WOOCOMMERCE_CATCH_UP_MINUTES must be 0 (off) or more")
    unknown = set(settings.order_sources) - set(SOURCES)
    if unknown:
        problems.append(f"ORDER_SOURCES has unknown sources: {', '.join(sorted(unknown))}")
    if settings.meta_marketing_messages_api and settings.whatsapp_provider != "meta":
        problems.append("META_MARKETING_MESSAGES_API needs WHATSAPP_PROVIDER=meta")
    if settings.log_format not in ("text", "json"):
        problems.append("LOG_FORMAT must be text or json")
    if settings.send_rate_per_second < 1:
        problems.append("SEND_RATE_PER_SECOND must be at least 1")
    if settings.send_batch_size < 1:
        problems.append("SEND_BATCH_SIZE must be at least 1")
    if settings.retention_days < 0:
        problems.append("RETENTION_DAYS must be 0 (keep forever) or more")
    if settings.public_base_url and not settings.public_base_url.startswith(
        ("https://", "http://")
    ):
        problems.append("PUBLIC_BASE_URL must start with https:// (or http://)")
    if not Path(settings.notifications_file).is_file():
        problems.append(f"NOTIFICATIONS_FILE does not exist: {settings.notifications_file}")
    for language in settings.contact_request_languages:
        try:
            parse_language(language)
        except ValueError:
            problems.append(f"CONTACT_REQUEST_LANGUAGES: not a known language: {language!r}")
    checks = (
        lambda s: rate_card.from_file(s.rate_card_file),
        rules_from_settings,
        lambda s: parse_admin_users(s.admin_users),
        alert_rules_from_settings,
    )
    for check in checks:
        try:
            check(settings)
        except ValueError as exc:
            problems.append(str(exc))
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
            items = (item.strip() for item in env.list(name, list(default)))
            values[f.name] = tuple(item for item in items if item)
        else:
            values[f.name] = env.str(name, default)
    try:
        env.seal()
    except EnvError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from exc
    settings = validate(dataclasses.replace(defaults, **values))
    return refuse_weak_password_hashes(settings)


def refuse_weak_password_hashes(settings: Settings) -> Settings:
    """At start-up: every ADMIN_USERS hash must be slow to crack; ConfigError names each
    user whose hash is not (plain text, PBKDF2 with too few rounds, ...).

    Only here, not in `validate`: the hashes cannot change at run time, and tests build
    their settings with cheap hashes on purpose.
    """
    problems = weak_hash_problems(settings.admin_users)
    if problems:
        raise ConfigError("invalid configuration: " + "; ".join(problems))
    return settings
