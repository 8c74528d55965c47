"""Sending claimed messages in batches: ask the policy for each, take rate slots a chunk
at a time, hand the chunks to the provider, record every outcome. The retry rules for every
provider live here, in terms of Dakiya's own error kinds and facts (the delay between
attempts: bot/delivery/backoff.py).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import zip_longest

import redis
from peewee import Case, IntegrityError, fn
from rq import Queue

from bot.core import phones, telemetry
from bot.core.audit import audit
from bot.core.config import Settings
from bot.core.errors import OUTAGE_ERRORS
from bot.core.events import MessagesStateChanged, MessageStateChanged, publish
from bot.core.models import (
    Category,
    Customer,
    Message,
    Reason,
    Route,
    State,
    db,
    write_transaction,
)
from bot.delivery import statuses
from bot.delivery.backoff import backoff_seconds
from bot.delivery.claims import claim_ids
from bot.delivery.providers.base import (
    ButtonParam,
    ErrorKind,
    Fact,
    OutboundMessage,
    Pace,
    Provider,
    ProviderError,
    SendResult,
    TemplateCall,
)
from bot.delivery.ratelimit import SendRateLimiter
from bot.policy import consent, policy
from bot.policy.counters import SendLedger, find_duplicates
from bot.policy.identities import keys_of

log = logging.getLogger(__name__)

#: One message, sent on its own (an admin's retry); the batch sender is jobs.send.send_due.
SEND_JOB = "jobs.send.send_message"

#: The kind of the reply confirming a STOP: the one message an opted-out customer gets.
OPT_OUT_CONFIRMATION = "opt_out_confirmation"
#: The kind of the message asking a username-only customer to share their number
#: (bot/conversation/handling.py): a request-contact-info button, or the shop's template.
CONTACT_REQUEST = "contact_request"
#: Rate slots are taken this many at a time, each chunk just before it goes out.
RATE_CHUNK = 50
#: How far ahead of its place in the pacing schedule a chunk is booked, at most: enough
#: to keep the schedule full across batch boundaries, little enough that the opt-out
#: check before each chunk is recent.
BOOK_AHEAD_SECONDS = 0.25


class Outcome(StrEnum):
    SENT = "sent"
    NOT_CLAIMED = "not_claimed"
    SUPPRESSED = "suppressed"
    DEFERRED = "deferred"
    RATE_LIMITED = "rate_limited"
    RETRY_SCHEDULED = "retry_scheduled"
    HELD = "held"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Retry:
    at: datetime
    reason: Reason = Reason.RETRYING


@dataclass(frozen=True, slots=True)
class Fail:
    reason: Reason


@dataclass(frozen=True, slots=True)
class Hold:
    """The provider may have accepted the message: wait for its receipt, do not resend."""

    until: datetime


def next_step_after_error(
    error: ProviderError,
    attempts: int,
    settings: Settings,
    now: datetime,
    jitter: float,
    *,
    phone_to_try: bool = False,
    marketing_api_to_try: bool = False,
) -> Retry | Fail | Hold:
    """What to do after a failed send: the one retry policy for every provider.
    `phone_to_try`: the message went to a BSUID and the customer's number is known.
    `marketing_api_to_try`: the Marketing Messages API is on and this template has not
    been through it yet."""
    if error.fact is Fact.BSUID_NOT_SUPPORTED:
        # This message cannot go to a BSUID (PROVIDERS.md §9.1): to the number, or never.
        return Retry(now) if phone_to_try else Fail(Reason.BSUID_NOT_SUPPORTED)
    if error.fact is Fact.MARKETING_DISABLED:
        # Meta treats the template as marketing and takes marketing only through the
        # Marketing Messages API (§9.3): once there, as marketing, or never.
        return Retry(now) if marketing_api_to_try else Fail(Reason.MARKETING_DISABLED)
    if error.fact is Fact.MARKETING_CAP:
        # The customer's marketing cap: not an opt-out, try again a day later at most
        # (PROVIDERS.md §1.11, §1.12), within the usual attempt budget.
        if attempts >= settings.max_send_attempts:
            return Fail(Reason.RETRIES_EXHAUSTED)
        return Retry(now + statuses.MARKETING_CAP_DELAY, Reason.PROVIDER_MARKETING_LIMIT)
    if error.kind is ErrorKind.PERMANENT:
        return Fail(statuses.failure_reason(error.fact, Reason.PROVIDER_REJECTED))
    if attempts >= settings.max_send_attempts:
        return Fail(Reason.RETRIES_EXHAUSTED)
    if error.kind is ErrorKind.AMBIGUOUS:
        return Hold(now + timedelta(seconds=settings.ambiguous_send_hold_seconds))
    delay = backoff_seconds(
        attempts, settings.retry_base_seconds, settings.retry_max_seconds, jitter
    )
    return Retry(now + timedelta(seconds=max(delay, error.retry_after or 0)))


def route_for(message: Message, settings: Settings) -> Route | None:
    """The send API a message takes when not the provider's usual one: the one it was
    moved to, else the Marketing Messages API for a marketing template when it is on."""
    if message.route:
        return Route(message.route)
    if (
        settings.meta_marketing_messages_api
        and message.template_name
        and message.category == Category.MARKETING
    ):
        return Route.MARKETING_MESSAGES
    return None


def build_outbound(message: Message, route: Route | None = None) -> OutboundMessage:
    """The provider-neutral message for a stored row, through `route` if one."""
    template = None
    if message.template_name:
        params = message.params or {}
        template = TemplateCall(
            name=message.template_name,
            language=message.language,
            header=tuple(params.get("header", ())),
            body=tuple(params.get("body", ())),
            buttons=tuple(
                ButtonParam(b["index"], b["sub_type"], b["value"])
                for b in params.get("buttons", ())
            ),
        )
    return OutboundMessage(
        message_id=message.id,
        to=message.phone,
        callback_data=message.callback_data,
        template=template,
        text=message.text,
        # A customer known only by their BSUID is written to by it (§9.1).
        recipient_user_id=None if message.phone else message.user_id,
        request_contact=message.kind == CONTACT_REQUEST and template is None,
        reply_buttons=reply_buttons(message) if template is None else (),
        marketing_api=route is not None,
        category=message.category or "",
    )


def reply_buttons(message: Message) -> tuple[tuple[str, str], ...]:
    """The quick-reply buttons a reply was stored with ([id, title] in its params)."""
    found = (message.params or {}).get("reply_buttons") or ()
    return tuple((str(button[0]), str(button[1])) for button in found[:3])


@dataclass(frozen=True, slots=True)
class PutBack:
    """Not now, and not counted as an attempt: the customer is busy or the rate is spent."""

    at: datetime
    reason: Reason


@dataclass(frozen=True, slots=True)
class InFlight:
    """A batch whose sends have started: what `Sender.finish` needs to record it."""

    batch: list[Message]
    decisions: dict[int, policy.Decision | PutBack]
    sending: list[Message]
    results: Callable[[], list[SendResult | ProviderError]]
    now: datetime


@dataclass
class Sender:
    """Sends claimed messages in batches; built once per worker and settings."""

    provider: Provider
    queues: dict[str, Queue]
    limiter: SendRateLimiter
    ledger: SendLedger
    settings: Settings
    rules: policy.Rules = field(default_factory=policy.Rules)
    erased_among: Callable[[list[str]], set[str]] = lambda phones: set()
    jitter: Callable[[], float] = random.random
    kick_at: Callable[[str, datetime], None] = lambda queue, at: None

    def send_one(self, message_id: int, now: datetime) -> Outcome:
        """Claim `message_id` and try to send it once (retries, admin, the naive path)."""
        claimed = claim_ids([message_id], now, self.settings.send_lease_seconds)
        if not claimed:
            return Outcome.NOT_CLAIMED
        return self.process(claimed, now)[0]

    def process(self, batch: list[Message], now: datetime) -> list[Outcome]:
        """Send messages this worker has claimed; one outcome per message, in order."""
        return self.finish(self.start(batch, now))

    def start(self, batch: list[Message], now: datetime) -> InFlight:
        """Decide every claimed message, take rate slots for those that go, and start
        sending them (concurrently, in the background for HTTP providers)."""
        attach_customers(batch)
        decisions = self.decide_all(batch, now)
        to_send = [m for m in batch if isinstance(decisions[m.id], policy.Send)]
        sending, stopped, results = self.send_in_chunks(to_send)
        for m in stopped:  # the customer wrote STOP since the decision: it wins
            decisions[m.id] = policy.Suppress(Reason.OPTED_OUT)
        gone = {m.id for m in sending} | {m.id for m in stopped}
        late = [m for m in to_send if m.id not in gone]
        if stopped or late:
            try:
                self.ledger.forget([*stopped, *late])
            except redis.RedisError as exc:  # part of the batch is in flight: go on
                log.warning("could not un-count %d unsent messages: %s", len(late), exc)
        if late:
            telemetry.count(self.ledger.conn, "rate_limiter_waits", amount=len(late))
            for m in late:
                decisions[m.id] = PutBack(now + timedelta(seconds=1), Reason.RATE_LIMITED)
        return InFlight(batch, decisions, sending, results, now)

    def send_in_chunks(
        self, messages: list[Message]
    ) -> tuple[list[Message], list[Message], Callable[[], list[SendResult | ProviderError]]]:
        """Take rate slots a chunk at a time, each just before that chunk goes out, and
        start sending it; stop at the first chunk the rate refuses within the wait.
        The messages started, those left out because their customer opted out since the
        batch was decided (checked again for each chunk: a STOP written while the batch
        goes out wins), and how to collect the results.

        Chunks keep what reaches the provider in any second close to the rate: a slot is
        granted only when the sends before it are on the wire. Once a chunk is in flight
        nothing may raise, or its sent messages would look unsent.
        """
        deadline = time.monotonic() + self.settings.rate_wait_seconds
        sending: list[Message] = []
        pending: list[Callable[[], list[SendResult | ProviderError]]] = []
        stopped: list[Message] = []
        for start in range(0, len(messages), RATE_CHUNK):
            chunk = messages[start : start + RATE_CHUNK]
            try:
                opted_out = opted_out_since(chunk)
            except OUTAGE_ERRORS:
                opted_out = set()  # decided a moment ago; the database is gone for now
            stopped += [m for m in chunk if m.id in opted_out]
            chunk = [m for m in chunk if m.id not in opted_out]
            if not chunk:
                continue
            try:
                granted = self.limiter.acquire(len(chunk), max(deadline - time.monotonic(), 0))
            except redis.RedisError:
                if not pending:
                    raise
                log.warning("rate limiter unreachable: %d messages put back", len(messages) - start)
                break
            if granted:
                sending += chunk[:granted]
                outbound = [build_outbound(m, route_for(m, self.settings)) for m in chunk[:granted]]
                pace = self.pace(granted)
                pending.append(self.provider.start_many(outbound, pace))
                if pace is not None and pace.start_in > BOOK_AHEAD_SECONDS:
                    # Booked far enough ahead: the next chunk's customers are checked
                    # (and it is booked) closer to its time, so a STOP still wins.
                    time.sleep(pace.start_in - BOOK_AHEAD_SECONDS)
            if granted < len(chunk):
                break
        return sending, stopped, lambda: [result for collect in pending for result in collect()]

    def pace(self, granted: int) -> Pace | None:
        """When the granted sends go out: their place in the schedule every worker
        shares, so that no second at the provider carries more than the rate (issue 19).
        Without Redis (it answered the grant a moment ago) they go at once."""
        try:
            return Pace(*self.limiter.schedule(granted))
        except redis.RedisError:
            return None

    def finish(self, flight: InFlight) -> list[Outcome]:
        """Wait for the provider's answers and record every outcome of the batch."""
        results = flight.results()
        changes: list[MessageStateChanged] = []  # suppressed and failed; sent: record_sent
        with write_transaction():
            outcomes = self.apply_decisions(flight.batch, flight.decisions, flight.now, changes)
            outcomes |= self.record_results(flight.sending, results, flight.now, changes)
            if changes:  # one event for the batch, in its transaction (the CRM's outbox)
                publish(MessagesStateChanged(tuple(changes)), flight.now)
        return [outcomes[m.id] for m in flight.batch]

    def decide_all(
        self, batch: list[Message], now: datetime
    ) -> dict[int, policy.Decision | PutBack]:
        """The policy's decision for every message. Customers are locked for the whole
        batch (one another worker is deciding for waits a second); a customer's several
        messages are decided in turn, each seeing the ones before it."""
        decisions: dict[int, policy.Decision | PutBack] = {}
        by_customer: dict[int, list[Message]] = {}
        for m in batch:
            if m.customer is None:  # no usable number: the policy suppresses it
                decisions[m.id] = policy.decide(policy.CustomerFacts(), message_facts(m), now)
            else:
                by_customer.setdefault(m.customer_id, []).append(m)
        locks = self.ledger.lock_customers(by_customer)
        try:
            busy = PutBack(now + timedelta(seconds=1), Reason.BUSY)
            mine = []
            for customer_id, messages in by_customer.items():
                if customer_id in locks.customer_ids:
                    mine.append(messages)
                else:
                    decisions |= dict.fromkeys((m.id for m in messages), busy)
            going: list[Message] = []
            batch_ids = [m.id for m in batch]
            for turn in zip_longest(*mine):
                messages = [m for m in turn if m is not None]
                decided = self.decide_locked(messages, now, batch_ids, going)
                going += [m for m in messages if isinstance(decided[m.id], policy.Send)]
                decisions |= decided
        finally:
            self.ledger.unlock_customers(locks)
        return decisions

    def decide_locked(
        self, messages: list[Message], now: datetime, batch_ids: list[int], going: list[Message]
    ) -> dict[int, policy.Decision]:
        """Gather facts and counters for messages of distinct customers we hold locked, ask
        the policy, take tier slots, and count the sends before they happen."""
        erased = self.erased_among([key for m in messages for key in keys_of(m.customer)])
        facts = {
            m.id: customer_facts(m.customer, self.settings.default_timezone, erased)
            for m in messages
        }
        counters = self.ledger.gather(
            [(m, facts[m.id].timezone) for m in messages], now, self.rules
        )
        duplicates = find_duplicates(messages, now, self.rules.duplicate_window, batch_ids, going)
        decisions: dict[int, policy.Decision] = {}
        for m in messages:
            about = message_facts(m, self.provider.sends_to_bsuid)
            known = dataclasses.replace(counters[m.id], duplicate_sent=m.id in duplicates)
            decision = policy.decide(facts[m.id], about, now, known, self.rules)
            if (
                isinstance(decision, policy.Send)
                and self.rules.tier_limit is not None
                and policy.is_business_initiated(facts[m.id], about, now)
                and not self.ledger.take_tier_slot(m.customer_id, now, self.rules.tier_limit)
            ):
                decision = policy.Defer(now + timedelta(minutes=1), Reason.TIER_LIMIT)
            decisions[m.id] = decision
        self.ledger.record([m for m in messages if isinstance(decisions[m.id], policy.Send)], now)
        return decisions

    def apply_decisions(
        self,
        batch: list[Message],
        decisions: dict[int, policy.Decision | PutBack],
        now: datetime,
        changes: list[MessageStateChanged],
    ) -> dict[int, Outcome]:
        """Store every decision but "send": suppressed, deferred or put back (without
        counting the attempt); one wake-up per queue and time for the ones put off.
        A suppression written is added to `changes`."""
        outcomes: dict[int, Outcome] = {}
        wake: set[tuple[str, datetime]] = set()
        for m in batch:
            decision = decisions[m.id]
            if isinstance(decision, policy.Suppress):
                if finish(m, State.SUPPRESSED, decision.reason, now):
                    changes.append(MessageStateChanged(m, State.SUPPRESSED, decision.reason))
                outcomes[m.id] = Outcome.SUPPRESSED
                continue
            if isinstance(decision, policy.Defer):
                at, state, outcome = decision.until, State.DEFERRED, Outcome.DEFERRED
            elif isinstance(decision, PutBack):
                at, state = decision.at, State.QUEUED
                limited = decision.reason is Reason.RATE_LIMITED
                outcome = Outcome.RATE_LIMITED if limited else Outcome.DEFERRED
            else:
                continue  # sent: recorded with the provider's answer
            update_while_sending(
                m,
                now,
                state=state,
                reason=decision.reason,
                next_attempt_at=at,
                lease_until=None,
                attempts=Message.attempts - 1,
            )
            outcomes[m.id] = outcome
            wake.add((m.queue, at))
        for queue, at in wake:
            self.kick_at(queue, at)
        return outcomes

    def record_results(
        self,
        messages: list[Message],
        results: list[SendResult | ProviderError],
        now: datetime,
        changes: list[MessageStateChanged],
    ) -> dict[int, Outcome]:
        """Store what the provider said about each message, sends in one go (and their
        event); a failure written is added to `changes`."""
        outcomes: dict[int, Outcome] = {}
        sent = [
            (m, r.provider_message_id)
            for m, r in zip(messages, results, strict=True)
            if isinstance(r, SendResult)
        ]
        record_sent(sent, self.provider.name, now)
        record_routes([m for m, _ in sent], self.settings)
        for m, provider_message_id in sent:
            outcomes[m.id] = Outcome.SENT
            log.info(
                "message %s sent to %s via %s as %s",
                m.id,
                phones.mask(m.phone),
                self.provider.name,
                provider_message_id,
            )
        self.count_sent([m for m, _ in sent], now)
        not_counted = []
        for m, result in zip(messages, results, strict=True):
            if isinstance(result, ProviderError):
                outcomes[m.id] = self.record_error(m, result, now, changes)
                if outcomes[m.id] is not Outcome.HELD:  # a held send may have gone out
                    not_counted.append(m)
        self.ledger.forget(not_counted)
        return outcomes

    def count_sent(self, messages: list[Message], now: datetime) -> None:
        if not messages:
            return
        conn = self.ledger.conn
        telemetry.count(
            conn,
            "send_attempts",
            {"provider": self.provider.name, "outcome": "sent"},
            amount=len(messages),
        )
        by_category: dict[str, list[float]] = {}
        for m in messages:
            by_category.setdefault(m.category, []).append((now - m.created_at).total_seconds())
        for category, seconds in by_category.items():
            telemetry.observe_many(
                conn,
                "send_latency_seconds",
                {"provider": self.provider.name, "category": category},
                seconds,
            )

    def record_error(
        self,
        message: Message,
        error: ProviderError,
        now: datetime,
        changes: list[MessageStateChanged],
    ) -> Outcome:
        fallback = phone_fallback(message)
        reroute = (
            self.settings.meta_marketing_messages_api
            and message.template_name is not None
            and route_for(message, self.settings) is None
        )
        step = next_step_after_error(
            error,
            message.attempts,
            self.settings,
            now,
            self.jitter(),
            phone_to_try=fallback is not None,
            marketing_api_to_try=reroute,
        )
        log.warning(
            "message %s: %s error %s %r (attempt %d) -> %s",
            message.id,
            error.kind,
            error.code,
            error.text,
            message.attempts,
            type(step).__name__,
        )
        telemetry.count(
            self.ledger.conn,
            "send_attempts",
            {"provider": self.provider.name, "outcome": type(step).__name__.lower()},
        )
        if isinstance(step, Retry):
            telemetry.count(
                self.ledger.conn,
                "send_retries",
                {"provider": self.provider.name, "code": error.code or ""},
            )
        errors = {
            "error_code": error.code,
            "error_text": error.text,
            "provider": self.provider.name,
        }
        if error.fact is Fact.BSUID_NOT_SUPPORTED and fallback:
            errors["phone"] = fallback  # the retry goes to the customer's number
        if error.fact is Fact.MARKETING_DISABLED and isinstance(step, Retry):
            # Meta's word on the category: decided again as marketing (consent, quiet
            # hours, caps), then sent through the Marketing Messages API.
            errors["route"] = Route.MARKETING_MESSAGES_AFTER_REFUSAL
            errors["category"] = Category.MARKETING
        if error.kind is ErrorKind.RATE_LIMITED and error.fact is not Fact.PAIR_RATE_LIMITED:
            self.limiter.slow_down()  # every worker backs off together; a pair rate does not
        if error.fact is Fact.WINDOW_CLOSED and message.customer_id:
            # The provider says the service window is closed: believe it over our clock.
            Customer.update(last_inbound_at=None).where(
                Customer.id == message.customer_id
            ).execute()
        if error.fact is Fact.MARKETING_STOPPED and message.customer_id:
            consent.record_opt_out(
                message.customer,
                consent.MARKETING,
                "provider_error",
                {"message_id": message.id, "code": error.code, "text": error.text},
                now,
            )
        if isinstance(step, Fail):
            if finish(message, State.FAILED, step.reason, now, failed_at=now, **errors):
                failed = MessageStateChanged(
                    message, State.FAILED, step.reason, error.code, error.text
                )
                changes.append(failed)
            return Outcome.FAILED
        if isinstance(step, Hold):
            update_while_sending(
                message, now, reason=Reason.AWAITING_RECEIPT, lease_until=step.until, **errors
            )
            return Outcome.HELD
        update_while_sending(
            message,
            now,
            state=State.QUEUED,
            reason=step.reason,
            next_attempt_at=step.at,
            lease_until=None,
            **errors,
        )
        self.kick_at(message.queue, step.at)
        return Outcome.RETRY_SCHEDULED


def opted_out_since(messages: list[Message]) -> set[int]:
    """The messages (ids) whose customer has opted out by now: one query for a chunk.
    The opt-out confirmation itself still goes."""
    customers = {
        m.customer_id for m in messages if m.customer_id and m.kind != OPT_OUT_CONFIRMATION
    }
    if not customers:
        return set()
    stopped = {
        c.id
        for c in Customer.select(Customer.id).where(
            Customer.id.in_(customers) & (Customer.opted_out == True)  # noqa: E712
        )
    }
    return {m.id for m in messages if m.customer_id in stopped and m.kind != OPT_OUT_CONFIRMATION}


def attach_customers(messages: list[Message]) -> None:
    """Load the customers of a batch in one query (instead of one per message)."""
    ids = {m.customer_id for m in messages if m.customer_id is not None}
    customers = {c.id: c for c in Customer.select().where(Customer.id.in_(ids))} if ids else {}
    for m in messages:
        if m.customer_id is not None:
            m.customer = customers[m.customer_id]


def phone_fallback(message: Message) -> str | None:
    """The customer's number, when this message was addressed to their BSUID only."""
    if message.phone or message.customer_id is None:
        return None
    return message.customer.phone


def customer_facts(
    customer: Customer, default_timezone: str, erased: set[str]
) -> policy.CustomerFacts:
    return policy.CustomerFacts(
        opted_out=customer.opted_out,
        marketing_opt_in=customer.marketing_opt_in,
        last_inbound_at=customer.last_inbound_at,
        timezone=customer.timezone or default_timezone,
        erased=bool(erased.intersection(keys_of(customer))),
    )


def message_facts(message: Message, sends_to_bsuid: bool = True) -> policy.MessageFacts:
    return policy.MessageFacts(
        category=message.category,
        has_valid_phone=message.customer_id is not None and bool(message.phone or message.user_id),
        bsuid_only=not message.phone and bool(message.user_id) and not sends_to_bsuid,
        free_form=message.template_name is None,
        opt_out_confirmation=message.kind == OPT_OUT_CONFIRMATION,
        created_at=message.created_at,
    )


def update_while_sending(message: Message, now: datetime, **fields) -> bool:
    """Write `fields` only if the message is still ours (state `sending`).

    A delivery receipt can overtake the send call's own answer; this guard keeps a
    late write from dragging a `delivered` message back.
    """
    updated = (
        Message.update(updated_at=now, **fields)
        .where((Message.id == message.id) & (Message.state == State.SENDING))
        .execute()
    )
    return updated == 1


def finish(message: Message, state: State, reason: Reason, now: datetime, **fields) -> bool:
    return update_while_sending(
        message, now, state=state, reason=reason, lease_until=None, **fields
    )


def record_sent(sent: list[tuple[Message, str]], provider: str, now: datetime) -> None:
    """Record the provider's ids, move `sending` to `sent` (one `MessagesStateChanged`
    for those it moved, before any early receipt's), and apply early receipts: two
    UPDATEs for the whole batch."""
    if not sent:
        return
    ids = [m.id for m, _ in sent]
    try:
        with db.atomic():
            Message.update(
                provider=provider,
                provider_message_id=Case(Message.id, [(m.id, pid) for m, pid in sent]),
                sent_at=fn.COALESCE(Message.sent_at, now),
                updated_at=now,
            ).where(Message.id.in_(ids)).execute()
    except IntegrityError:
        # A provider id seen before (a provider bug): store the others, keep the send.
        for m, pid in sent:
            record_provider_id(m, provider, pid, now)
    moved = (
        Message.update(
            state=State.SENT,
            reason=None,
            lease_until=None,
            next_attempt_at=None,
            error_code=None,
            error_text=None,
            updated_at=now,
        )
        .where(Message.id.in_(ids) & (Message.state == State.SENDING))
        .returning(Message.id)
        .tuples()
        .execute()
    )
    moved_ids = {row[0] for row in moved}
    changes = tuple(MessageStateChanged(m, State.SENT) for m, _ in sent if m.id in moved_ids)
    if changes:
        publish(MessagesStateChanged(changes), now)
    statuses.apply_pending_for(provider, [pid for _, pid in sent], now)


def record_routes(sent: list[Message], settings: Settings) -> None:
    """Note on the row which sent messages the setting routed to another API."""
    routed = [m.id for m in sent if not m.route and route_for(m, settings)]
    if routed:
        Message.update(route=Route.MARKETING_MESSAGES).where(Message.id.in_(routed)).execute()


def record_provider_id(message: Message, provider: str, provider_message_id: str, now) -> None:
    fields = {"provider": provider, "sent_at": fn.COALESCE(Message.sent_at, now), "updated_at": now}
    try:
        with db.atomic():
            Message.update(provider_message_id=provider_message_id, **fields).where(
                Message.id == message.id
            ).execute()
    except IntegrityError:
        log.error(
            "message %s: provider id %s already belongs to another message; sent, unmatched",
            message.id,
            provider_message_id,
        )
        Message.update(**fields).where(Message.id == message.id).execute()


#: A message not sent yet, which an admin may still cancel.
CANCELLABLE = (State.QUEUED, State.DEFERRED)


def cancel_message(message_id: int, actor: str, now: datetime) -> bool:
    """An admin's cancel: a message not sent yet becomes suppressed/cancelled, audited as
    `actor`; False (nothing written) when it is being sent or already settled."""
    with write_transaction():
        cancelled = (
            Message.update(state=State.SUPPRESSED, reason=Reason.CANCELLED, updated_at=now)
            .where((Message.id == message_id) & Message.state.in_(CANCELLABLE))
            .execute()
        )
        if cancelled:
            audit(actor, "cancel_message", str(message_id), {"after": "suppressed/cancelled"}, now)
            message = Message.get_by_id(message_id)
            publish(MessageStateChanged(message, State.SUPPRESSED, Reason.CANCELLED), now)
    return cancelled == 1


def retry_failed_message(message_id: int, queues: dict[str, Queue], now: datetime) -> bool:
    """An admin's retry of a dead-lettered message: back to `queued` with fresh attempts."""
    updated = (
        Message.update(
            state=State.QUEUED,
            reason=None,
            attempts=0,
            next_attempt_at=None,
            lease_until=None,
            updated_at=now,
        )
        .where((Message.id == message_id) & (Message.state == State.FAILED))
        .execute()
    )
    if updated:
        message = Message.get_by_id(message_id)
        queues[message.queue].enqueue(SEND_JOB, message_id, result_ttl=0)
    return updated == 1
