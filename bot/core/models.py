"""Peewee models: the database is the source of truth for every event and message.

All timestamps are naive UTC. Enumerations are StrEnums stored as text so that SQLite and
Postgres read the same values and the admin API can show them verbatim.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import click
from peewee import (
    BlobField,
    BooleanField,
    CharField,
    DatabaseProxy,
    DateField,
    DateTimeField,
    DecimalField,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Model,
    SqliteDatabase,
    TextField,
)
from playhouse.migrations import Runner

db = DatabaseProxy()
MIGRATIONS_DIR = str(Path(__file__).resolve().parents[2] / "migrations")


def write_transaction():
    """A transaction that will write: on SQLite it takes the write lock up front.

    SQLite's default deferred transaction starts as a reader; upgrading to a writer
    while another connection has written fails at once with "database is locked"
    (the busy timeout does not apply), so concurrent webhooks would see errors.
    """
    if isinstance(db.obj, SqliteDatabase):
        return db.atomic(lock_type="IMMEDIATE")
    return db.atomic()


def fit(field: CharField, value: str | None) -> str | None:
    """`value` cut to what `field`'s VARCHAR(n) holds: for text people type and only
    read (a WhatsApp profile name), which must never make a delivery unstorable."""
    return value[: field.max_length] if value else value


#: Our message id travels to the provider and back in receipts as "dakiya:<id>".
CALLBACK_PREFIX = "dakiya:"


def utcnow() -> datetime:
    """Naive UTC now: the one clock every row uses."""
    return datetime.now(UTC).replace(tzinfo=None)


class EventKind(StrEnum):
    """What happened to an order, as far as the customer should hear about it."""

    PLACED = "placed"
    CONFIRMED = "confirmed"
    COD_CONFIRMATION = "cod_confirmation"
    SHIPPED = "shipped"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


class Category(StrEnum):
    UTILITY = "utility"
    MARKETING = "marketing"
    SERVICE = "service"  # free-form reply inside the customer-service window


class Route(StrEnum):
    """A message sent through another of the provider's APIs than its usual one (Meta's
    Marketing Messages API, PROVIDERS.md §9.3): chosen by the setting, or after Meta
    refused the message on /messages as marketing (131063)."""

    MARKETING_MESSAGES = "marketing_messages"
    MARKETING_MESSAGES_AFTER_REFUSAL = "marketing_messages_after_refusal"


class State(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    DEFERRED = "deferred"
    SUPPRESSED = "suppressed"
    FAILED = "failed"


#: States a message never leaves on its own (an admin retry may move FAILED back to QUEUED).
FINAL_STATES = frozenset({State.SUPPRESSED, State.FAILED, State.READ})
#: States the sender may pick a message up from.
SENDABLE_STATES = (State.QUEUED, State.DEFERRED)


class Reason(StrEnum):
    """Why a message was suppressed, deferred or failed: a small closed set, never free text."""

    INVALID_PHONE = "invalid_phone"
    OPTED_OUT = "opted_out"
    NO_MARKETING_CONSENT = "no_marketing_consent"
    MISSING_PARAMETER = "missing_parameter"
    PROVIDER_REJECTED = "provider_rejected"
    RETRIES_EXHAUSTED = "retries_exhausted"
    RATE_LIMITED = "rate_limited"
    RETRYING = "retrying"
    AWAITING_RECEIPT = "awaiting_receipt"
    DELIVERY_FAILED = "delivery_failed"
    WINDOW_CLOSED = "window_closed"
    ERASED = "erased"
    DUPLICATE = "duplicate"
    QUIET_HOURS = "quiet_hours"
    PAIR_RATE = "pair_rate"
    CAP_DAILY = "cap_daily"
    CAP_WEEKLY = "cap_weekly"
    TIER_LIMIT = "tier_limit"
    BUSY = "busy"  # another worker is deciding for the same customer: try again shortly
    PROVIDER_MARKETING_LIMIT = "provider_marketing_limit"  # Meta 131049
    CANCELLED = "cancelled"  # by an admin
    CAMPAIGN_PAUSED = "campaign_paused"  # held until the campaign is resumed
    # What a provider's refusal means, when it is more than "rejected" (Meta's 2026 codes,
    # PROVIDERS.md §9.1, §9.3; bot.delivery.providers.meta says which code is which):
    BSUID_NOT_SUPPORTED = "bsuid_not_supported"  # this message cannot go to a BSUID
    NO_PHONE = "no_phone"  # a username user, and the provider sends to numbers only
    MARKETING_DISABLED = "marketing_disabled"  # marketing is off on the Cloud API
    COUNTRY_BLOCKED = "country_blocked"  # the account may not message this country
    ACCOUNT_LIMITED = "account_limited"  # a messaging limit for policy violations
    NUMBER_NOT_READY = "number_not_ready"  # the business number's registration or name
    RECIPIENT_CHANGED = "recipient_changed"  # the customer's identity key changed
    EXPIRED = "expired"  # a marketing message older than MARKETING_TTL_SECONDS: never late


class JSONField(TextField):
    """JSON stored as text, identical on SQLite and Postgres."""

    def db_value(self, value):
        return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)

    def python_value(self, value):
        return None if value is None else json.loads(value)


class BaseModel(Model):
    class Meta:
        database = db
        legacy_table_names = False


class Customer(BaseModel):
    """A person we may message, known by their E.164 number, by the business-scoped user
    id (BSUID) WhatsApp gives a username user (PROVIDERS.md §9.1), or by both."""

    phone = CharField(max_length=20, unique=True, null=True)
    user_id = CharField(max_length=160, unique=True, null=True)  # BSUID, "CC.<alnum>"
    parent_user_id = CharField(max_length=160, null=True)  # "CC.ENT.<alnum>"
    username = CharField(max_length=64, null=True)  # their WhatsApp @username, if shared
    wa_id = CharField(max_length=32, null=True)
    name = CharField(max_length=200, null=True)
    language = CharField(max_length=16, null=True)
    #: Who set `language`: "customer" (the language-switch command) or "admin" is an
    #: explicit choice; "shop" (the storefront locale of an order) or None only a hint.
    language_source = CharField(max_length=16, null=True)
    #: The language of the customer's latest message that had letters (language_id).
    written_language = CharField(max_length=16, null=True)
    timezone = CharField(max_length=64, null=True)
    tags = JSONField(default=list)
    # Current consent state, always written together with a ConsentEvent row.
    opted_out = BooleanField(default=False)
    marketing_opt_in = BooleanField(default=False)
    # The 24-hour customer-service window runs from the last message they sent us.
    last_inbound_at = DateTimeField(null=True)
    # Set while a person should answer ("agent"): no automatic replies until released.
    needs_agent_since = DateTimeField(null=True, index=True)
    # When we last answered something we did not understand (at most once a window).
    last_fallback_reply_at = DateTimeField(null=True)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)


class ConsentEvent(BaseModel):
    """Append-only consent ledger: who said yes or no to what, when, and how we know."""

    customer = ForeignKeyField(Customer, backref="consent_events", on_delete="CASCADE")
    category = CharField(max_length=16)  # "all" | "marketing"
    action = CharField(max_length=16)  # "opt_in" | "opt_out"
    source = CharField(max_length=32)  # "shopify", "keyword", "admin", "meta_preferences", ...
    evidence = JSONField(null=True)
    created_at = DateTimeField(default=utcnow, index=True)


class Order(BaseModel):
    source = CharField(max_length=32)
    external_id = CharField(max_length=64)
    number = CharField(max_length=64, null=True)
    customer = ForeignKeyField(Customer, backref="orders", null=True, on_delete="SET NULL")
    currency = CharField(max_length=3, null=True)
    total = DecimalField(max_digits=14, decimal_places=2, null=True)
    status = CharField(max_length=32, null=True)  # the shop's own word (paid, processing...)
    stage = CharField(max_length=32, null=True)  # the latest EventKind the customer was told of
    tracking_url = TextField(null=True)
    tracking_number = CharField(max_length=128, null=True)
    carrier = CharField(max_length=128, null=True)
    status_url = TextField(null=True)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    #: The customer's answer to the cash-on-delivery confirmation: "confirmed" or
    #: "cancelled" (their tap), or "unanswered"; set once (bot/conversation/cod.py).
    cod_answer = CharField(max_length=16, null=True)
    cod_answered_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("source", "external_id"), True),)


class ShopWriteBack(BaseModel):
    """One change Dakiya owes a shop about an order (tag, note, status, cancel), made by
    the write-back job with the shared retry classifier (bot/integrations/write_back.py)."""

    order = ForeignKeyField(Order, backref="write_backs", on_delete="CASCADE")
    action = CharField(max_length=16)  # confirmed | cancelled | unanswered
    state = CharField(max_length=16, default="pending", index=True)  # pending|done|failed
    attempts = IntegerField(default=0)
    next_attempt_at = DateTimeField(default=utcnow, index=True)
    last_error = TextField(null=True)
    created_at = DateTimeField(default=utcnow)
    done_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("order", "action"), True),)  # once per order and answer


class OrderEvent(BaseModel):
    """One accepted webhook delivery from a shop. `dedupe_key` makes redelivery a no-op."""

    source = CharField(max_length=32)
    dedupe_key = CharField(max_length=255, unique=True)
    external_event_id = CharField(max_length=128, null=True)
    #: A second key for one event delivered more than once under different delivery ids
    #: (Shopify: one per subscription, all with the same X-Shopify-Event-Id).
    event_key = CharField(max_length=255, null=True, unique=True)
    topic = CharField(max_length=64)
    kind = CharField(max_length=32, null=True)  # EventKind, or null when nothing is sent
    order = ForeignKeyField(Order, backref="events", null=True, on_delete="SET NULL")
    payload = JSONField()
    received_at = DateTimeField(default=utcnow)


class Campaign(BaseModel):
    """A template sent to a segment of customers, in batches, through the outbox
    (bot/campaigns/campaigns.py). Its messages carry `campaign` and dedupe key
    "campaign:<id>:<customer id>", so one customer gets it at most once."""

    name = CharField(max_length=200)
    template = CharField(max_length=128)
    languages = JSONField(default=list)  # approved template languages
    category = CharField(max_length=16, default=Category.MARKETING)
    params = JSONField(default=list)  # body parameter names, in order
    fallbacks = JSONField(default=dict)  # parameter name -> value when a customer lacks one
    segment = JSONField(default=dict)  # bot.campaigns.segments definition
    schedule = JSONField(null=True)  # {"at": iso utc} | {"local_time": "HH:MM", "date": ...}
    state = CharField(max_length=16, default="draft", index=True)
    created_by = CharField(max_length=200)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    launched_at = DateTimeField(null=True)
    finished_at = DateTimeField(null=True)


class Message(BaseModel):
    """One WhatsApp message we mean to send, and everything that happened to it."""

    order_event = ForeignKeyField(OrderEvent, backref="messages", null=True, on_delete="SET NULL")
    order = ForeignKeyField(Order, backref="messages", null=True, on_delete="SET NULL")
    customer = ForeignKeyField(Customer, backref="messages", null=True, on_delete="SET NULL")
    campaign = ForeignKeyField(Campaign, backref="messages", null=True, on_delete="SET NULL")
    # E.164, or the raw input when it was unusable; None when sent to a BSUID only.
    phone = CharField(max_length=64, null=True)
    user_id = CharField(max_length=160, null=True)  # the recipient's BSUID, if known
    dedupe_key = CharField(max_length=255, unique=True)
    kind = CharField(max_length=32)
    category = CharField(max_length=16, default=Category.UTILITY)
    queue = CharField(max_length=32, default="orders")
    template_name = CharField(max_length=128, null=True)
    language = CharField(max_length=16, null=True)
    params = JSONField(null=True)  # {"header": [...], "body": [...], "buttons": [...]}
    text = TextField(null=True)  # free-form body (service replies only)
    state = CharField(max_length=16, default=State.QUEUED, index=True)
    reason = CharField(max_length=32, null=True)
    attempts = IntegerField(default=0)
    next_attempt_at = DateTimeField(null=True)
    lease_until = DateTimeField(null=True)
    provider = CharField(max_length=16, null=True)
    provider_message_id = CharField(max_length=128, null=True, unique=True)
    error_code = CharField(max_length=32, null=True)
    error_text = TextField(null=True)
    created_at = DateTimeField(default=utcnow, index=True)  # analytics roll up by day
    updated_at = DateTimeField(default=utcnow)
    sent_at = DateTimeField(null=True)
    delivered_at = DateTimeField(null=True)
    read_at = DateTimeField(null=True)
    failed_at = DateTimeField(null=True)
    # The A/B variant sent (bot/campaigns/experiments.py).
    variant = CharField(max_length=64, null=True)
    # Which of the provider's send APIs took it, when not the default one: Meta's Marketing
    # Messages API (`Route`), by the setting or after Meta refused it on /messages.
    route = CharField(max_length=32, null=True)

    class Meta:
        indexes = (
            (("state", "next_attempt_at"), False),
            (("state", "lease_until"), False),
            (("queue", "state", "id"), False),  # the batch sender's claim (bot/delivery/claims.py)
        )

    @property
    def callback_data(self) -> str:
        """Our own id as it travels through the provider and back on status webhooks."""
        return f"{CALLBACK_PREFIX}{self.id}"


class StatusEvent(BaseModel):
    """Every delivery receipt we were told about, applied or not."""

    message = ForeignKeyField(Message, backref="status_events", null=True, on_delete="SET NULL")
    provider = CharField(max_length=16)
    provider_message_id = CharField(max_length=128, index=True)
    status = CharField(max_length=16)
    callback_data = CharField(max_length=512, null=True, index=True)  # claims check it
    dedupe_key = CharField(max_length=255, unique=True)
    error_code = CharField(max_length=32, null=True)
    error_text = TextField(null=True)
    occurred_at = DateTimeField()
    payload = JSONField(null=True)
    received_at = DateTimeField(default=utcnow)
    applied = BooleanField(default=False)


class InboundMessage(BaseModel):
    """A message a customer sent us."""

    provider = CharField(max_length=16)
    provider_message_id = CharField(max_length=128, unique=True)
    phone = CharField(max_length=20, index=True, null=True)  # None: a username user
    user_id = CharField(max_length=160, null=True, index=True)  # their BSUID, if sent
    customer = ForeignKeyField(Customer, backref="inbound", null=True, on_delete="SET NULL")
    type = CharField(max_length=32)
    text = TextField(null=True)
    button_payload = CharField(max_length=512, null=True)
    payload = JSONField(null=True)
    occurred_at = DateTimeField()
    received_at = DateTimeField(default=utcnow)
    handled = BooleanField(default=False)
    intent = CharField(max_length=16, null=True)
    language = CharField(max_length=16, null=True)


class Suppression(BaseModel):
    """A number that must never be messaged again, kept only as a salted hash so that it
    survives the erasure of everything else we held about its owner (bot/policy/privacy.py)."""

    phone_hash = CharField(max_length=64, unique=True)
    reason = CharField(max_length=32)  # "erased"
    created_at = DateTimeField(default=utcnow)


class AuditLog(BaseModel):
    """Who did what to whose data: data exports and erasures, never the data itself."""

    actor = CharField(max_length=200)
    action = CharField(max_length=32, index=True)  # "export" | "erase"
    subject = CharField(max_length=255, null=True)  # non-identifying: a suppression hash
    details = JSONField(null=True)
    created_at = DateTimeField(default=utcnow, index=True)


class AdminUser(BaseModel):
    """Someone who may use the admin API (`flask --app wsgi users ...`)."""

    username = CharField(max_length=64, unique=True)
    password_hash = CharField(max_length=255)
    role = CharField(max_length=16)  # "admin" | "viewer"
    disabled = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)


class RuntimeSetting(BaseModel):
    """A policy setting an admin changed at run time; it overrides the environment's
    value until removed."""

    key = CharField(max_length=64, unique=True)
    value = JSONField()
    updated_by = CharField(max_length=64)
    updated_at = DateTimeField(default=utcnow)


class TemplateOverride(BaseModel):
    """An admin's mapping for one order event (bot/core/runtime.py): it replaces the map
    file's entry for that event until deleted; every other event follows the file."""

    event_kind = CharField(max_length=32, unique=True)
    mapping = JSONField()  # one `[events.<kind>]` entry of the map, as the API takes it
    updated_by = CharField(max_length=64)
    updated_at = DateTimeField(default=utcnow)


class TemplateCategory(BaseModel):
    """The category Meta says one approved template (name and language) is in, from its
    completed `template_category_update` (PROVIDERS.md §9.3): a template Meta made
    marketing sends as marketing, whatever the template map says (bot/core/runtime.py)."""

    template = CharField(max_length=128)
    language = CharField(max_length=16)  # Meta's code ("en_US"); "" when it named none
    category = CharField(max_length=40)  # Meta's, lower case: marketing, utility, ...
    previous_category = CharField(max_length=40, null=True)
    template_id = CharField(max_length=64, null=True)
    changed_at = DateTimeField()  # the notice's time: an older notice never wins
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("template", "language"), True),)


class DailyStat(BaseModel):
    """One day's outcome for one (template, variant, language, source, category): the
    rollup `bot.observability.analytics` rewrites from the messages created that day
    (UTC), so reports never scan messages."""

    day = DateField()
    template = CharField(max_length=128, default="")  # "" for free-form replies
    variant = CharField(max_length=64, default="")  # "" until A/B tests exist
    language = CharField(max_length=16, default="")
    source = CharField(max_length=32, default="")  # order source; "" for replies, campaigns
    category = CharField(max_length=16)
    messages = IntegerField(default=0)
    sent = IntegerField(default=0)  # reached sent or later
    delivered = IntegerField(default=0)  # delivered or read
    read = IntegerField(default=0)
    failed = IntegerField(default=0)
    suppressed = IntegerField(default=0)
    deferred = IntegerField(default=0)
    failed_by_code = JSONField(default=dict)
    suppressed_by_reason = JSONField(default=dict)
    replied_24h = IntegerField(default=0)
    opted_out_7d = IntegerField(default=0)
    delivery_seconds_median = FloatField(null=True)
    read_seconds_median = FloatField(null=True)
    computed_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("day", "template", "variant", "language", "source", "category"), True),)


class MessagePricing(BaseModel):
    """What one sent message is billed as, from the first receipt that says so (Meta's
    `pricing`, PROVIDERS.md §9.2): one row per provider message id, written once, kept
    when the message itself is erased (it names no one)."""

    provider = CharField(max_length=16)
    provider_message_id = CharField(max_length=128, unique=True)
    billable = BooleanField()
    category = CharField(max_length=40)  # Meta's pricing category (marketing_lite, ...)
    type = CharField(max_length=40, null=True)  # regular, free_customer_service, ...
    pricing_model = CharField(max_length=16, null=True)  # PMP
    country = CharField(max_length=2, null=True)  # the recipient's, for the rate card
    priced_at = DateTimeField(index=True)  # the receipt's time: the day its spend counts on
    received_at = DateTimeField(default=utcnow)


class DailySpend(BaseModel):
    """One day's priced messages for one (template, pricing category, country): the
    rollup `bot.observability.spend` rewrites from `MessagePricing`. Spend itself is
    estimated when read, from the rate card in force."""

    day = DateField()
    template = CharField(max_length=128, default="")  # "" for free-form replies
    category = CharField(max_length=40)
    country = CharField(max_length=2, default="")  # "" when the receipt did not say
    billable = IntegerField(default=0)  # billable and delivered (Meta bills on delivery)
    free = IntegerField(default=0)  # priced as free (service, free entry point, ...)
    computed_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("day", "template", "category", "country"), True),)


class Experiment(BaseModel):
    """An A/B test of an order update's (or a campaign's) template: 2-4 weighted variants,
    each customer always in the same one (bot/campaigns/experiments.py), judged by one goal."""

    name = CharField(max_length=200, unique=True)
    event_kind = CharField(max_length=32, null=True)  # an EventKind, or null for a campaign
    campaign_id = IntegerField(null=True)  # the campaign it splits (the campaigns helper)
    # [{"name": "A", "weight": 50, "template": "order_shipped", "languages": [...],
    #   "body": [...]}, ...]; languages and body default to the notification map's.
    variants = JSONField()
    goal = CharField(max_length=16)  # "read" | "reply" | "conversion"
    conversion_days = IntegerField(default=7)
    state = CharField(max_length=16, default="draft", index=True)
    winner = CharField(max_length=64, null=True)
    auto_rollout = BooleanField(default=False)
    min_sample = IntegerField(default=100)
    started_at = DateTimeField(null=True)
    stopped_at = DateTimeField(null=True)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)


class ConversionEvent(BaseModel):
    """Something the shop counts as a success (an order), posted by it: the goal of
    experiments judged by conversion."""

    customer = ForeignKeyField(Customer, backref="conversions", on_delete="CASCADE")
    order_ref = CharField(max_length=64)
    occurred_at = DateTimeField(index=True)
    source = CharField(max_length=32)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("customer", "order_ref"), True),)


class Alert(BaseModel):
    """One alert condition from the moment it fired until it cleared (bot/observability/alerts.py).

    A row in state "firing" is the condition's current state; resolved rows are history.
    `notified_at` is when admins were last told (the firing notice or a reminder)."""

    key = CharField(max_length=128)  # "failure_rate", "queue_age:orders", ...
    state = CharField(max_length=16)  # "firing" | "resolved"
    severity = CharField(max_length=16)  # "warning" | "critical"
    text = TextField()
    fired_at = DateTimeField()
    notified_at = DateTimeField()
    resolved_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("state", "key"), False),)


class OutboundEvent(BaseModel):
    """Something a shop's CRM hears about (bot/integrations/crm.py), written in the same transaction
    as the change itself; each configured URL gets WebhookDelivery rows for it."""

    type = CharField(max_length=32)  # "message.status" | "consent.changed" | "message.received"
    payload = JSONField()
    created_at = DateTimeField(default=utcnow, index=True)


class WebhookDelivery(BaseModel):
    """One attempt to POST an OutboundEvent to one URL: a retry is a new row, so every
    attempt stays on record with its answer."""

    event = ForeignKeyField(OutboundEvent, backref="deliveries", on_delete="CASCADE")
    url = TextField()
    attempt = IntegerField(default=1)
    state = CharField(max_length=16, default="pending")  # pending|sending|delivered|retried|failed
    status_code = IntegerField(null=True)
    error = TextField(null=True)
    next_attempt_at = DateTimeField()
    attempted_at = DateTimeField(null=True)
    delivered_at = DateTimeField(null=True)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("state", "next_attempt_at"), False),)


class SpoolDeadLetter(BaseModel):
    """A spooled delivery (bot/core/spool.py) that failed for a reason other than an outage
    (a value no column holds, a bug): moved out of the spool so the others go on, kept
    byte for byte with its error until an admin retries or discards it
    (`/admin/api/spool/dead-letters`). In the database, so it is as durable as an order."""

    spool_id = CharField(max_length=32, unique=True)  # the stream entry id: moved once
    kind = CharField(max_length=64)  # "order:<source>" or "whatsapp:<provider>"
    body = BlobField()  # exactly as the sender sent it
    headers = JSONField()
    error = TextField()
    attempts = IntegerField(default=1)
    spooled_at = DateTimeField()
    failed_at = DateTimeField(index=True)


class InboxEntry(BaseModel):
    """A verified webhook delivery kept raw by its request's one INSERT, until a worker
    takes it in (bot/intake/inbox.py) and deletes it in the same transaction."""

    kind = CharField(max_length=64)  # "whatsapp:<provider>" or "order:<source>"
    lane = CharField(max_length=16)  # which drain takes it: bot.intake.inbox.Lane
    body = BlobField()  # exactly as the sender sent it
    headers = TextField(default="{}")  # JSON: the few headers its parsing reads
    received_at = DateTimeField()

    class Meta:
        indexes = ((("lane", "id"), False),)


class UnhandledUpdate(BaseModel):
    """A part of a signed WhatsApp webhook Dakiya could not read or does not act on, kept
    as it came with the reason (bot/delivery/unhandled.py), so that nothing a provider sent is lost
    and an admin can see what Dakiya did not understand. `payload` holds personal data:
    retention blanks it, an erasure deletes the row (bot/policy/privacy.py)."""

    provider = CharField(max_length=16)
    kind = CharField(max_length=64)  # "message", "status", "change:<field>", "payload", ...
    reason = CharField(max_length=32, index=True)  # a bot.delivery.providers.base.Unhandled value
    detail = TextField()
    location = CharField(max_length=255, default="")  # its place in the body
    phone = CharField(max_length=20, null=True, index=True)  # the customer it names, if any
    payload = JSONField(null=True)
    dedupe_key = CharField(max_length=64, unique=True)  # a redelivery is stored once
    received_at = DateTimeField(default=utcnow, index=True)


ALL_MODELS = [
    Customer,
    ConsentEvent,
    Order,
    ShopWriteBack,
    OrderEvent,
    Campaign,
    Message,
    StatusEvent,
    InboundMessage,
    Suppression,
    AuditLog,
    AdminUser,
    RuntimeSetting,
    TemplateOverride,
    TemplateCategory,
    Alert,
    DailyStat,
    MessagePricing,
    DailySpend,
    Experiment,
    ConversionEvent,
    OutboundEvent,
    WebhookDelivery,
    SpoolDeadLetter,
    UnhandledUpdate,
    InboxEntry,
]


def migrate_database() -> list[str]:
    """Apply every pending migration; the names applied."""
    with db.connection_context():
        return Runner(db.obj, MIGRATIONS_DIR).up()


@click.command("migrate")
def migrate_command() -> None:
    """Apply pending schema migrations (the Procfile's release phase)."""
    applied = migrate_database()
    click.echo(f"applied: {', '.join(applied)}" if applied else "schema is up to date")
