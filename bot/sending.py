"""Sending one message: claim it, ask the policy, take a rate slot, call the provider,
record the outcome. The retry and backoff rules for every provider live here.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from peewee import fn
from rq import Queue

from bot import consent, phones, policy, statuses, telemetry
from bot.config import Settings
from bot.counters import SendLedger
from bot.models import Customer, Message, Reason, State
from bot.outbox import SEND_JOB
from bot.providers.base import (
    ButtonParam,
    ErrorKind,
    OutboundMessage,
    Provider,
    ProviderError,
    TemplateCall,
)
from bot.ratelimit import SendRateLimiter

log = logging.getLogger(__name__)

#: The kind of the reply confirming a STOP: the one message an opted-out customer gets.
OPT_OUT_CONFIRMATION = "opt_out_confirmation"
#: Meta's "re-engagement" errors: free-form text outside the 24-hour window (§1.11).
WINDOW_CLOSED_CODES = frozenset({"131047", "470"})
#: Pair rate (Meta 131056): slow down for this recipient only, not for everyone.
PER_RECIPIENT_LIMITS = frozenset({"131056"})


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


def backoff_seconds(attempt: int, base: float, cap: float, jitter: float) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random (`jitter` in [0, 1))."""
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    return ceiling / 2 + jitter * ceiling / 2


def next_step_after_error(
    error: ProviderError,
    attempts: int,
    settings: Settings,
    now: datetime,
    jitter: float,
) -> Retry | Fail | Hold:
    """What to do after a failed send: the one retry policy for every provider."""
    if error.code == statuses.MARKETING_CAP:
        # Meta's per-user marketing cap: not an opt-out, try again a day later at most
        # (PROVIDERS.md §1.11, §1.12), within the usual attempt budget.
        if attempts >= settings.max_send_attempts:
            return Fail(Reason.RETRIES_EXHAUSTED)
        return Retry(now + statuses.MARKETING_CAP_DELAY, Reason.PROVIDER_MARKETING_LIMIT)
    if error.kind is ErrorKind.PERMANENT:
        return Fail(Reason.PROVIDER_REJECTED)
    if attempts >= settings.max_send_attempts:
        return Fail(Reason.RETRIES_EXHAUSTED)
    if error.kind is ErrorKind.AMBIGUOUS:
        return Hold(now + timedelta(seconds=settings.ambiguous_send_hold_seconds))
    delay = backoff_seconds(
        attempts, settings.retry_base_seconds, settings.retry_max_seconds, jitter
    )
    return Retry(now + timedelta(seconds=max(delay, error.retry_after or 0)))


def claim_message(message_id: int, now: datetime, lease_seconds: int) -> bool:
    """Atomically take `message_id` for sending; True for exactly one caller.

    A message can be taken when it is queued or deferred and due, or when a previous
    worker's lease on it ran out (the worker died mid-send, or an ambiguous send got no
    receipt in time). The conditional UPDATE is the lock: no two workers both win.
    """
    due = Message.next_attempt_at.is_null() | (Message.next_attempt_at <= now)
    claimable = (Message.state.in_([State.QUEUED, State.DEFERRED]) & due) | (
        (Message.state == State.SENDING) & (Message.lease_until < now)
    )
    updated = (
        Message.update(
            state=State.SENDING,
            lease_until=now + timedelta(seconds=lease_seconds),
            attempts=Message.attempts + 1,
            updated_at=now,
        )
        .where((Message.id == message_id) & claimable)
        .execute()
    )
    return updated == 1


def build_outbound(message: Message) -> OutboundMessage:
    """The provider-neutral message for a stored row."""
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
    )


@dataclass
class Sender:
    """Everything `send_one` needs besides the message id; built once per job."""

    provider: Provider
    queues: dict[str, Queue]
    limiter: SendRateLimiter
    ledger: SendLedger
    settings: Settings
    rules: policy.Rules = field(default_factory=policy.Rules)
    is_erased: Callable[[str], bool] = lambda phone: False
    jitter: Callable[[], float] = random.random

    def send_one(self, message_id: int, now: datetime) -> Outcome:
        """Try to send `message_id` once, and record what happened."""
        if not claim_message(message_id, now, self.settings.send_lease_seconds):
            return Outcome.NOT_CLAIMED
        message = Message.get_by_id(message_id)
        customer = message.customer
        if customer is None:  # no usable number: the policy suppresses it
            decision = policy.decide(policy.CustomerFacts(), message_facts(message), now)
        else:
            with self.ledger.customer_lock(customer.id) as locked:
                if not locked:
                    self.reschedule(
                        message, now + timedelta(seconds=1), State.QUEUED, Reason.BUSY, now
                    )
                    return Outcome.DEFERRED
                decision = self.decide(message, customer, now)
                if isinstance(decision, policy.Send):
                    self.ledger.record(message, customer, now)
        if isinstance(decision, policy.Suppress):
            finish(message, State.SUPPRESSED, decision.reason, now)
            return Outcome.SUPPRESSED
        if isinstance(decision, policy.Defer):
            self.reschedule(message, decision.until, State.DEFERRED, decision.reason, now)
            return Outcome.DEFERRED
        if not self.limiter.try_acquire():
            telemetry.count(self.ledger.conn, "rate_limiter_waits")
            self.ledger.forget(message, customer)
            self.reschedule(
                message, now + timedelta(seconds=1), State.QUEUED, Reason.RATE_LIMITED, now
            )
            return Outcome.RATE_LIMITED
        try:
            result = self.provider.send(build_outbound(message))
        except ProviderError as error:
            outcome = self.record_error(message, error, now)
            if outcome is not Outcome.HELD:  # a held send may have gone out: keep it counted
                self.ledger.forget(message, customer)
            return outcome
        record_sent(message, self.provider.name, result.provider_message_id, now)
        labels = {"provider": self.provider.name, "category": message.category}
        telemetry.observe(
            self.ledger.conn,
            "send_latency_seconds",
            labels,
            (now - message.created_at).total_seconds(),
        )
        telemetry.count(
            self.ledger.conn, "send_attempts", {"provider": self.provider.name, "outcome": "sent"}
        )
        log.info(
            "message %s sent to %s via %s as %s",
            message.id,
            phones.mask(message.phone),
            self.provider.name,
            result.provider_message_id,
        )
        return Outcome.SENT

    def decide(self, message: Message, customer: Customer, now: datetime) -> policy.Decision:
        """Gather the facts and counters, ask the policy, and take a tier slot if needed."""
        facts = customer_facts(message, self.settings.default_timezone, self.is_erased)
        about = message_facts(message)
        counters = self.ledger.gather(message, customer, facts.timezone, now, self.rules)
        decision = policy.decide(facts, about, now, counters, self.rules)
        if (
            isinstance(decision, policy.Send)
            and self.rules.tier_limit is not None
            and policy.is_business_initiated(facts, about, now)
            and not self.ledger.take_tier_slot(customer, now, self.rules.tier_limit)
        ):
            return policy.Defer(now + timedelta(minutes=1), Reason.TIER_LIMIT)
        return decision

    def record_error(self, message: Message, error: ProviderError, now: datetime) -> Outcome:
        step = next_step_after_error(error, message.attempts, self.settings, now, self.jitter())
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
        if error.kind is ErrorKind.RATE_LIMITED and error.code not in PER_RECIPIENT_LIMITS:
            self.limiter.slow_down()  # every worker backs off together
        if error.code in WINDOW_CLOSED_CODES and message.customer_id:
            # Meta says the service window is closed: believe it over our own clock.
            Customer.update(last_inbound_at=None).where(
                Customer.id == message.customer_id
            ).execute()
        if error.code == statuses.MARKETING_STOPPED and message.customer_id:
            consent.record_opt_out(
                message.customer,
                consent.MARKETING,
                "provider_error",
                {"message_id": message.id, "code": error.code, "text": error.text},
                now,
            )
        if isinstance(step, Fail):
            finish(message, State.FAILED, step.reason, now, failed_at=now, **errors)
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
        self.queues[message.queue].enqueue_at(step.at, SEND_JOB, message.id, result_ttl=0)
        return Outcome.RETRY_SCHEDULED

    def reschedule(
        self, message: Message, at: datetime, state: State, reason: Reason, now: datetime
    ) -> None:
        """Put the message back for later; this try does not count as an attempt."""
        update_while_sending(
            message,
            now,
            state=state,
            reason=reason,
            next_attempt_at=at,
            lease_until=None,
            attempts=Message.attempts - 1,
        )
        self.queues[message.queue].enqueue_at(at, SEND_JOB, message.id, result_ttl=0)


def customer_facts(
    message: Message, default_timezone: str, is_erased: Callable[[str], bool]
) -> policy.CustomerFacts:
    customer = message.customer
    return policy.CustomerFacts(
        opted_out=customer.opted_out,
        marketing_opt_in=customer.marketing_opt_in,
        last_inbound_at=customer.last_inbound_at,
        timezone=customer.timezone or default_timezone,
        erased=is_erased(customer.phone),
    )


def message_facts(message: Message) -> policy.MessageFacts:
    return policy.MessageFacts(
        category=message.category,
        has_valid_phone=message.customer_id is not None,
        free_form=message.template_name is None,
        opt_out_confirmation=message.kind == OPT_OUT_CONFIRMATION,
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


def record_sent(message: Message, provider: str, provider_message_id: str, now: datetime) -> None:
    """Record the provider's id, move `sending` to `sent`, and apply early receipts."""
    Message.update(
        provider=provider,
        provider_message_id=provider_message_id,
        sent_at=fn.COALESCE(Message.sent_at, now),
        updated_at=now,
    ).where(Message.id == message.id).execute()
    update_while_sending(
        message,
        now,
        state=State.SENT,
        reason=None,
        lease_until=None,
        next_attempt_at=None,
        error_code=None,
        error_text=None,
    )
    statuses.apply_pending_for(provider, provider_message_id, now)


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
