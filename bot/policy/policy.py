"""The send-time policy: may this message go out now? Pure: no I/O, no clock.

`decide(customer, message, now, counters, rules)` -> Send | Defer(until, reason) |
Suppress(reason). The job gathers the facts and counters, `decide` decides, the job acts
and records the reason. Checked when a message is claimed for sending, not only when it
was created, so an opt-out that arrives while a message waits still stops it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core.config_rules import Caps, QuietHours, Rules
from bot.core.models import Category, Reason

#: Free-form (non-template) messages only within 24 h of the customer's last message
#: (PROVIDERS.md §1.12); outside it Meta answers 131047.
SERVICE_WINDOW = timedelta(hours=24)
#: The messaging tier counts unique customers over a moving 24 hours (§1.12).
TIER_WINDOW = timedelta(hours=24)
WEEK = timedelta(days=7)


#: The deferrals each run-time setting decides: (reason, category; None: every category).
#: When the setting changes, the messages it deferred are decided afresh (bot/delivery/
#: release.py). The duplicate window only suppresses and the send rate only puts a message
#: back for a second, so neither has deferrals to release.
DEFERRED_BY: dict[str, tuple[Reason, Category | None]] = {
    "quiet_hours_marketing": (Reason.QUIET_HOURS, Category.MARKETING),
    "quiet_hours_utility": (Reason.QUIET_HOURS, Category.UTILITY),
    "marketing_daily_cap": (Reason.CAP_DAILY, Category.MARKETING),
    "marketing_weekly_cap": (Reason.CAP_WEEKLY, Category.MARKETING),
    "utility_daily_cap": (Reason.CAP_DAILY, Category.UTILITY),
    "utility_weekly_cap": (Reason.CAP_WEEKLY, Category.UTILITY),
    "min_gap_seconds": (Reason.PAIR_RATE, None),
    "messaging_tier": (Reason.TIER_LIMIT, None),
}


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    opted_out: bool = False
    marketing_opt_in: bool = False
    last_inbound_at: datetime | None = None
    timezone: str = "UTC"
    erased: bool = False  # asked to be forgotten: a suppression hash, never message again


@dataclass(frozen=True, slots=True)
class MessageFacts:
    category: Category
    has_valid_phone: bool = True  # a number, or a BSUID (a username user, §9.1)
    bsuid_only: bool = False  # only a BSUID, and the provider can send to numbers only
    free_form: bool = False
    # The one message an opted-out customer still gets: the confirmation of their STOP.
    opt_out_confirmation: bool = False
    created_at: datetime | None = None  # naive UTC; a marketing message may expire


@dataclass(frozen=True, slots=True)
class Counters:
    """What was already sent to this customer (from Redis, with the database as truth)."""

    sent_today: int = 0  # this category, since local midnight
    sent_this_week: int = 0  # this category, last 7 days
    oldest_this_week: datetime | None = None
    last_sent_at: datetime | None = None  # any category
    duplicate_sent: bool = False  # same template and parameters within the window
    tier_used: int = 0  # unique customers reached outside a window, last 24 h
    tier_has_customer: bool = False  # this customer is already one of them
    tier_frees_at: datetime | None = None  # when the oldest of them leaves the window


@dataclass(frozen=True, slots=True)
class Send:
    pass


@dataclass(frozen=True, slots=True)
class Defer:
    until: datetime
    reason: Reason


@dataclass(frozen=True, slots=True)
class Suppress:
    reason: Reason


Decision = Send | Defer | Suppress


def expired(message: MessageFacts, now: datetime, ttl: timedelta | None) -> bool:
    """A promotion held back (quiet hours, caps, retries) past the shop's time-to-live:
    "20% off today" must not arrive tomorrow."""
    return ttl is not None and message.created_at is not None and now - message.created_at >= ttl


def in_service_window(last_inbound_at: datetime | None, now: datetime) -> bool:
    return last_inbound_at is not None and now - last_inbound_at < SERVICE_WINDOW


def is_business_initiated(customer: CustomerFacts, message: MessageFacts, now: datetime) -> bool:
    """A template sent while no service window is open: it counts against the tier."""
    return not message.free_form and not in_service_window(customer.last_inbound_at, now)


def decide(
    customer: CustomerFacts,
    message: MessageFacts,
    now: datetime,
    counters: Counters | None = None,
    rules: Rules | None = None,
) -> Decision:
    """Send, defer or suppress `message` to `customer` at `now` (naive UTC).

    Suppressions come first (they are final), then deferrals (the message waits):
    opt-out wins over everything but its own confirmation; free-form text needs an open
    service window; marketing needs an explicit opt-in and expires after the shop's
    time-to-live, if it set one; quiet hours, the minimum gap,
    the caps and the messaging tier only ever delay a message.
    """
    counters = counters or Counters()
    rules = rules or Rules()
    if not message.has_valid_phone:
        return Suppress(Reason.INVALID_PHONE)
    if message.bsuid_only:
        return Suppress(Reason.NO_PHONE)
    if customer.erased:
        return Suppress(Reason.ERASED)
    if customer.opted_out and not message.opt_out_confirmation:
        return Suppress(Reason.OPTED_OUT)
    if message.free_form and not in_service_window(customer.last_inbound_at, now):
        return Suppress(Reason.WINDOW_CLOSED)
    if message.category == Category.MARKETING and not customer.marketing_opt_in:
        return Suppress(Reason.NO_MARKETING_CONSENT)
    if message.category == Category.MARKETING and expired(message, now, rules.marketing_ttl):
        return Suppress(Reason.EXPIRED)
    if counters.duplicate_sent and not message.free_form:
        return Suppress(Reason.DUPLICATE)
    if message.free_form:
        return Send()  # an answer to the customer: no quiet hours, caps or tier

    zone = zone_for(customer.timezone)
    quiet = rules.quiet_hours.get(message.category)
    if quiet is not None:
        local = now.replace(tzinfo=UTC).astimezone(zone)
        if quiet.is_quiet(local.time()):
            return Defer(quiet_hours_end(now, quiet, zone), Reason.QUIET_HOURS)
    if counters.last_sent_at and now - counters.last_sent_at < rules.min_gap:
        return Defer(counters.last_sent_at + rules.min_gap, Reason.PAIR_RATE)
    caps = rules.caps.get(message.category, Caps())
    if caps.daily and counters.sent_today >= caps.daily:
        return Defer(next_local_midnight(now, zone), Reason.CAP_DAILY)
    if caps.weekly and counters.sent_this_week >= caps.weekly:
        oldest = counters.oldest_this_week or now
        return Defer(max(oldest + WEEK, now + timedelta(seconds=1)), Reason.CAP_WEEKLY)
    if (
        rules.tier_limit is not None
        and is_business_initiated(customer, message, now)
        and not counters.tier_has_customer
        and counters.tier_used >= rules.tier_limit
    ):
        frees = counters.tier_frees_at or now
        return Defer(max(frees + TIER_WINDOW, now + timedelta(seconds=1)), Reason.TIER_LIMIT)
    return Send()


def zone_for(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def quiet_hours_end(now: datetime, quiet: QuietHours, zone: ZoneInfo) -> datetime:
    """The first moment after `now` (naive UTC) when the quiet period is over, in UTC.

    Found by stepping local days, so half-hour zones (+05:30, +05:45) and DST changes
    come out right; a local time that a DST jump skips lands just after the jump.
    """
    local_now = now.replace(tzinfo=UTC).astimezone(zone)
    for days in range(0, 3):
        day = local_now.date() + timedelta(days=days)
        candidate = local_to_utc(datetime.combine(day, quiet.end), zone)
        if candidate > now:
            local = candidate.replace(tzinfo=UTC).astimezone(zone)
            if not quiet.is_quiet(local.time()):
                return candidate
    return now + timedelta(hours=24)  # unreachable for a well-formed quiet period


def next_local_midnight(now: datetime, zone: ZoneInfo) -> datetime:
    local_now = now.replace(tzinfo=UTC).astimezone(zone)
    return local_to_utc(datetime.combine(local_now.date() + timedelta(days=1), time(0)), zone)


def local_midnight(now: datetime, zone_name: str | None) -> datetime:
    """The start of the customer's local calendar day, as naive UTC (for daily caps)."""
    zone = zone_for(zone_name)
    local_now = now.replace(tzinfo=UTC).astimezone(zone)
    return local_to_utc(datetime.combine(local_now.date(), time(0)), zone)


def local_to_utc(local_naive: datetime, zone: ZoneInfo) -> datetime:
    """Local wall time -> naive UTC; a wall time skipped by DST maps past the gap."""
    aware = local_naive.replace(tzinfo=zone)
    round_trip = aware.astimezone(UTC).astimezone(zone)
    if round_trip.replace(tzinfo=None) != local_naive:  # inside a DST gap
        aware = local_naive.replace(tzinfo=zone, fold=1)
    return aware.astimezone(UTC).replace(tzinfo=None)
