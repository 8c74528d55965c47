"""The one interface every WhatsApp provider implements, and the values that cross it.

A provider turns an `OutboundMessage` into an HTTP call and a webhook body into typed
updates. It never writes rows, never reads Flask globals and never swallows errors: it
raises `ProviderError` and the sender decides what to do (see `bot.delivery.sending`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

import requests


class ErrorKind(StrEnum):
    """How the sender should react to a failed send."""

    RETRY = "retry"  # transient: back off and try again
    RATE_LIMITED = "rate_limited"  # try again after `retry_after`, slow down
    PERMANENT = "permanent"  # never retry this message
    AMBIGUOUS = "ambiguous"  # the request may have gone through: reconcile, do not resend


class Fact(StrEnum):
    """What a provider's error code tells Dakiya beyond "failed", in Dakiya's words.

    Each provider translates its own codes (`Provider.fact_of`), so the sender and the
    receipts act on these without knowing any provider's numbers.
    """

    WINDOW_CLOSED = "window_closed"  # free-form text outside the 24-hour service window
    PAIR_RATE_LIMITED = "pair_rate_limited"  # too many messages to this one customer
    MARKETING_CAP = "marketing_cap"  # the customer's marketing cap: a delay, not an opt-out
    MARKETING_STOPPED = "marketing_stopped"  # the customer stopped marketing messages
    BSUID_NOT_SUPPORTED = "bsuid_not_supported"  # this message needs a phone number
    MARKETING_DISABLED = "marketing_disabled"  # the account's marketing is off on this API
    COUNTRY_BLOCKED = "country_blocked"  # the account may not message the recipient's country
    ACCOUNT_LIMITED = "account_limited"  # the account is held to a limit for violations
    NUMBER_NOT_READY = "number_not_ready"  # the sending number is not registered or named
    RECIPIENT_CHANGED = "recipient_changed"  # the recipient's identity key no longer matches


class ProviderError(Exception):
    """A send failed. `code` and `text` are the provider's own, stored on the message;
    `fact` is what the code means to Dakiya, if anything."""

    def __init__(
        self,
        text: str,
        *,
        kind: ErrorKind,
        code: str | None = None,
        retry_after: float | None = None,
        fact: Fact | None = None,
    ) -> None:
        super().__init__(text)
        self.text = text
        self.kind = kind
        self.code = code
        self.retry_after = retry_after
        self.fact = fact

    @property
    def retryable(self) -> bool:
        return self.kind is not ErrorKind.PERMANENT


class DeliveryStatus(StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ButtonParam:
    """A dynamic value for one template button (`url` suffix or `quick_reply` payload)."""

    index: int
    sub_type: str  # "url" | "quick_reply"
    value: str


@dataclass(frozen=True, slots=True)
class TemplateCall:
    """An approved template with its parameters already rendered to text."""

    name: str
    language: str
    header: tuple[str, ...] = ()
    body: tuple[str, ...] = ()
    buttons: tuple[ButtonParam, ...] = ()


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """What to send, to whom. Exactly one of `template` and `text` is set, and at least
    one of `to` and `recipient_user_id`: the number when it is known (Meta's advice),
    else the BSUID of a customer who wrote by username (PROVIDERS.md §9.1)."""

    message_id: int
    to: str | None  # E.164, with the leading +
    callback_data: str
    template: TemplateCall | None = None
    text: str | None = None
    recipient_user_id: str | None = None
    #: `text` with a button asking the customer to share their number (Meta's
    #: `request_contact_info` interactive message, §9.1).
    request_contact: bool = False
    #: `text` with quick-reply buttons, (id, title) each, at most 3 (Meta's interactive
    #: `button` message); a provider without them sends the text alone, which says what
    #: to type instead.
    reply_buttons: tuple[tuple[str, str], ...] = ()
    #: Through Meta's Marketing Messages API instead of /messages (§9.3); a provider
    #: without one sends as usual.
    marketing_api: bool = False
    #: The message's category (utility, marketing, service): the sandbox prices its
    #: receipts by it, as Meta prices a template by its own.
    category: str = ""


@dataclass(frozen=True, slots=True)
class SendResult:
    provider_message_id: str


@dataclass(frozen=True, slots=True)
class Pricing:
    """What a receipt says its message is billed as (Meta's `pricing`, PROVIDERS.md §9.2):
    since 2025-07-01 per delivered template message, by category and recipient country."""

    billable: bool
    category: str  # "utility", "marketing", "marketing_lite", "authentication", "service", ...
    type: str | None = None  # "regular", "free_customer_service", "free_entry_point"
    model: str | None = None  # "PMP" (per message; "CBP" before 2025-07-01)


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A delivery receipt for a message we sent."""

    provider: str
    provider_message_id: str
    status: DeliveryStatus
    occurred_at: datetime  # naive UTC
    recipient: str | None = None
    callback_data: str | None = None
    error_code: str | None = None
    error_text: str | None = None
    raw: dict = field(default_factory=dict, compare=False)
    recipient_user_id: str | None = None  # the recipient's BSUID (§9.1), when Meta gives it
    recipient_parent_user_id: str | None = None
    pricing: Pricing | None = None


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message a customer sent to the shop's number, from their number, their BSUID
    (a username user, §9.1) or both."""

    provider: str
    provider_message_id: str
    from_phone: str | None  # E.164, with the leading +; None for a username user
    type: str  # "text", "button", "interactive", "image", ...
    occurred_at: datetime  # naive UTC
    text: str | None = None
    button_payload: str | None = None
    profile_name: str | None = None
    raw: dict = field(default_factory=dict, compare=False)
    from_user_id: str | None = None  # the sender's BSUID (§9.1), when Meta gives it
    parent_user_id: str | None = None
    username: str | None = None
    #: The sender's own number, shared by tapping a request-contact-info button (a
    #: `contacts` message of origin `contact_request`, §9.1); never a contact card the
    #: customer forwarded, which could be anyone's.
    shared_phone: str | None = None


@dataclass(frozen=True, slots=True)
class PreferenceUpdate:
    """The customer stopped or resumed marketing messages in WhatsApp itself
    (Meta's `user_preferences` webhook, PROVIDERS.md §1.10)."""

    provider: str
    phone: str | None  # E.164, with the leading +; None for a username user
    category: str  # "marketing"
    opted_in: bool  # False: "stop", True: "resume"
    occurred_at: datetime  # naive UTC
    detail: str | None = None
    user_id: str | None = None  # their BSUID (§9.1), when Meta gives it


@dataclass(frozen=True, slots=True)
class IdentityChange:
    """WhatsApp says a customer's identity changed (the `user_changed_user_id` and
    `user_changed_number` system messages, §9.1): who they were, who they are now."""

    provider: str
    provider_message_id: str
    occurred_at: datetime  # naive UTC
    old_phone: str | None = None
    old_user_id: str | None = None
    phone: str | None = None  # the new number, after a number change
    user_id: str | None = None  # the new BSUID
    parent_user_id: str | None = None
    raw: dict = field(default_factory=dict, compare=False)


class News(StrEnum):
    """What an account update says about its subject."""

    PROBLEM = "problem"  # something is wrong: admins hear of it until it clears
    CLEARED = "cleared"  # the subject is fine again
    NEUTRAL = "neutral"  # neither (a throughput upgrade, a partner added, ...)


class Severity(StrEnum):
    """How loudly admins hear of a problem (also the alerts' own two levels)."""

    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class AccountNews:
    """News about the business account itself (the number's quality or messaging limit,
    a template's status, a policy violation or ban), judged by the provider that knows
    its own vocabulary. `bot.observability.alerts` keeps the latest per subject."""

    provider: str
    kind: News
    #: Stable while the news is about the same thing: "account", "quality:<number>",
    #: "template:<name>:<language>".
    subject: str
    severity: Severity
    text: str | None  # the problem in words, for admins; None unless kind is PROBLEM
    occurred_at: datetime  # naive UTC
    raw: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class TemplateCategoryNotice:
    """The provider's word on an approved template's category (Meta's
    `template_category_update`, PROVIDERS.md §9.3): *impending* when `announced` is set
    (the category it will move to, at `effective_at`; `category` is still the current
    one), otherwise *completed*: `category` is the one in force from now on."""

    provider: str
    template: str
    language: str  # the template's language code as the provider writes it ("" if absent)
    category: str  # lower case: "marketing", "utility", "authentication"
    previous: str | None
    announced: str | None
    effective_at: datetime | None  # naive UTC
    template_id: str | None
    occurred_at: datetime  # naive UTC
    raw: dict = field(default_factory=dict, compare=False)

    @property
    def completed(self) -> bool:
        return self.announced is None


class Unhandled(StrEnum):
    """Why a part of a signed webhook was kept raw instead of acted on: a small closed set
    (it labels a metric), the details in words next to it."""

    NOT_WHATSAPP = "not_whatsapp"  # JSON, but not the provider's webhook object
    MALFORMED = "malformed"  # a part Dakiya needs is missing or of another type
    UNKNOWN_FIELD = "unknown_field"  # a change field Dakiya does not act on
    UNKNOWN_TYPE = "unknown_type"  # a webhook or system message type Dakiya does not act on
    UNKNOWN_VALUE = "unknown_value"  # e.g. a marketing preference other than stop/resume
    PROVIDER_ERROR = "provider_error"  # the provider reports it could not deliver this item


@dataclass(frozen=True, slots=True)
class UnhandledItem:
    """A part of a correctly signed webhook Dakiya could not read or does not act on,
    kept as it came so that nothing the provider sent is lost (`bot.delivery.unhandled`)."""

    provider: str
    kind: str  # "message", "status", "user_preference", "change:<field>", "payload", ...
    reason: Unhandled
    detail: str  # what was wrong, naming the place (never a value that identifies anyone)
    raw: Any  # the item as the provider sent it
    where: str = ""  # its place in the body, e.g. "entry[0].changes[1].value.messages[0]"
    phone: str | None = None  # E.164 when the item names a customer's number (erasure)


WebhookUpdate = (
    StatusUpdate
    | InboundMessage
    | PreferenceUpdate
    | IdentityChange
    | AccountNews
    | TemplateCategoryNotice
    | UnhandledItem
)


@dataclass(frozen=True, slots=True)
class Pace:
    """When a batch's sends go out: from `start_in` seconds from now, evenly over
    `spread` seconds (the shared schedule, bot/delivery/ratelimit.py)."""

    start_in: float
    spread: float

    def offset(self, n: int, of: int) -> float:
        """Seconds from now at which send `n` of `of` goes out."""
        return self.start_in + (self.spread * n / of if of else 0.0)


class Provider:
    """Base class: one verb, `send`, plus the webhook half of the integration."""

    name: ClassVar[str]
    #: Whether a customer known only by their BSUID can be written to (Meta's `recipient`,
    #: PROVIDERS.md §9.1); a provider that sends to numbers only says False.
    sends_to_bsuid: ClassVar[bool] = True

    def __init__(self, settings, session: requests.Session | None = None) -> None:
        self.settings = settings
        self.session = session or requests.Session()
        self.timeout = settings.provider_timeout_seconds

    @staticmethod
    def fact_of(code: str | None) -> Fact | None:
        """What one of this provider's error codes (on a send's answer or a receipt)
        means to Dakiya; None when it means just "failed"."""
        return None

    def send(self, message: OutboundMessage) -> SendResult:
        """Hand one message to the provider; raise `ProviderError` if it was not accepted."""
        raise NotImplementedError

    def start_many(
        self, messages: list[OutboundMessage], pace: Pace | None = None
    ) -> Callable[[], list[SendResult | ProviderError]]:
        """Start handing over a batch; call the result to wait for each message's result
        or error, in order. One by one, at once, here; HTTP providers send concurrently
        in the background, so the caller can prepare the next batch meanwhile. With
        `pace`, each send goes out at its time (`Pace.offset`)."""
        results: list[SendResult | ProviderError] = []
        started = time.monotonic()
        for n, message in enumerate(messages):
            if pace is not None:
                time.sleep(max(0.0, started + pace.offset(n, len(messages)) - time.monotonic()))
            try:
                results.append(self.send(message))
            except ProviderError as error:
                results.append(error)
        return lambda: results

    def verify_webhook(self, body: bytes, headers) -> bool:
        """True when the webhook body carries this provider's valid signature."""
        raise NotImplementedError

    def receipts_only(self, payload: Any) -> bool:
        """Whether a verified body carries delivery receipts and nothing else, so that it
        may wait behind customer messages (bot/intake/inbox.py). When unsure: False."""
        return False

    def parse_webhook(self, payload: Any) -> list[WebhookUpdate]:
        """Every update in one verified webhook body, in order. Never raises for what the
        body contains: a part it cannot read becomes an `UnhandledItem`, the rest is read."""
        raise NotImplementedError
