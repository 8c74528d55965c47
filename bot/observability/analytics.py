"""Analytics: daily rollups of what happened to messages, and the reports read from them.

`rollup_day` rewrites one UTC day's `DailyStat` rows from the messages created that day;
`summary` adds rollup rows together and never reads a message, so a report costs the same
at a thousand messages as at ten million.

Definitions (per message created that day, by its state now):

- sent: reached `sent` or later (has `sent_at`, or is sent/delivered/read); a message
  that failed after it was sent counts as sent and as failed
- delivered: delivered or read; read: read
- failed / suppressed / deferred: its current state, by error code / reason code
- replied_24h: sent, and its customer wrote to us within 24 hours after `sent_at`
- opted_out_7d: sent, and its customer opted out (of anything) within 7 days after
- delivery / read seconds: from `sent_at` to `delivered_at` / `read_at` (never below 0:
  receipts carry the provider's clock, `sent_at` ours)
"""

from __future__ import annotations

import statistics
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta

from peewee import JOIN, Case, chunked, fn

from bot.core.models import (
    ConsentEvent,
    DailyStat,
    InboundMessage,
    Message,
    OrderEvent,
    State,
    write_transaction,
)
from bot.observability import spend

GROUP_BY = ("day", "template", "language", "source", "category")
REPLY_WINDOW = timedelta(hours=24)
OPT_OUT_WINDOW = timedelta(days=7)
#: Opt-outs up to 7 days after a send change that day's numbers: today and 7 days back.
RECENT_DAYS = 8
NO_CODE = "unknown"  # a failure without a provider error code, a suppression without reason

SENT_STATES = (State.SENT, State.DELIVERED, State.READ)
DELIVERED_STATES = (State.DELIVERED, State.READ)

#: (template, variant, language, source, category): one DailyStat row per day.
Group = tuple[str, str, str, str, str]

TEMPLATE = fn.COALESCE(Message.template_name, "")
LANGUAGE = fn.COALESCE(Message.language, "")
SOURCE = fn.COALESCE(OrderEvent.source, "")
WAS_SENT = Message.sent_at.is_null(False) | Message.state.in_(SENT_STATES)
WAS_DELIVERED = Message.delivered_at.is_null(False) | Message.state.in_(DELIVERED_STATES)
WAS_READ = Message.read_at.is_null(False) | (Message.state == State.READ)

COUNTS = ("messages", "sent", "delivered", "read", "failed", "suppressed", "deferred")


def count_if(condition):
    return fn.SUM(Case(None, ((condition, 1),), 0))


# --- rollup --------------------------------------------------------------------------


def rollup_recent(now: datetime, days: int = RECENT_DAYS) -> int:
    """Recompute today's rollups (outcomes, and spend: `bot.observability.spend`) and the
    `days - 1` days before it; the rows written."""
    today = now.date()
    days_back = [today - timedelta(days=back) for back in range(days)]
    return sum(rollup_day(day, now) + spend.rollup_day(day, now) for day in days_back)


def rollup_day(day: date, now: datetime) -> int:
    """Replace `day`'s DailyStat rows with ones computed from the messages created that
    day (UTC), in one transaction, so running it again changes nothing; the rows written.
    """
    start = datetime.combine(day, time.min)
    created_that_day = (Message.created_at >= start) & (Message.created_at < start + timedelta(1))
    stats = count_groups(created_that_day)
    add_breakdowns(stats, created_that_day)
    add_timings(stats, created_that_day)
    rows = [
        {
            "day": day,
            "template": group[0],
            "variant": group[1],
            "language": group[2],
            "source": group[3],
            "category": group[4],
            "computed_at": now,
            **values,
        }
        for group, values in sorted(stats.items())
    ]
    with write_transaction():
        DailyStat.delete().where(DailyStat.day == day).execute()
        for batch in chunked(rows, 100):
            DailyStat.insert_many(batch).execute()
    return len(rows)


def messages_with_source(*columns):
    return Message.select(*columns).join(
        OrderEvent, on=(Message.order_event == OrderEvent.id), join_type=JOIN.LEFT_OUTER
    )


VARIANT = fn.COALESCE(Message.variant, "")
GROUP_COLUMNS = (TEMPLATE, VARIANT, LANGUAGE, SOURCE, Message.category)


def group_of(template: str, variant: str, language: str, source: str, category: str) -> Group:
    return (template, variant, language, source, category)


def count_groups(where) -> dict[Group, dict]:
    """The state counts of each group, added up by the database."""
    query = (
        messages_with_source(
            *GROUP_COLUMNS,
            fn.COUNT(Message.id),
            count_if(WAS_SENT),
            count_if(WAS_DELIVERED),
            count_if(WAS_READ),
            count_if(Message.state == State.FAILED),
            count_if(Message.state == State.SUPPRESSED),
            count_if(Message.state == State.DEFERRED),
        )
        .where(where)
        .group_by(*GROUP_COLUMNS)
    )
    stats = {}
    for template, variant, language, source, category, *counts in query.tuples():
        stats[group_of(template, variant, language, source, category)] = {
            **dict(zip(COUNTS, (int(n or 0) for n in counts), strict=True)),
            "failed_by_code": {},
            "suppressed_by_reason": {},
            "replied_24h": 0,
            "opted_out_7d": 0,
            "delivery_seconds_median": None,
            "read_seconds_median": None,
        }
    return stats


def add_breakdowns(stats: dict[Group, dict], where) -> None:
    """Failures by error code and suppressions by reason code, counted by the database."""
    query = (
        messages_with_source(
            *GROUP_COLUMNS, Message.state, Message.error_code, Message.reason, fn.COUNT(Message.id)
        )
        .where(where & Message.state.in_((State.FAILED, State.SUPPRESSED)))
        .group_by(*GROUP_COLUMNS, Message.state, Message.error_code, Message.reason)
    )
    for *group, state, code, reason, n in query.tuples():
        values = stats[group_of(*group)]
        if state == State.FAILED:
            tally(values["failed_by_code"], code or NO_CODE, n)
        else:
            tally(values["suppressed_by_reason"], reason or NO_CODE, n)


def tally(counts: dict[str, int], key: str, n: int) -> None:
    counts[key] = counts.get(key, 0) + int(n)


def add_timings(stats: dict[Group, dict], where) -> None:
    """Medians, replies and opt-outs, from the day's sent messages (one day is bounded)."""
    sent = list(
        messages_with_source(
            *GROUP_COLUMNS,
            Message.customer,
            Message.sent_at,
            Message.delivered_at,
            Message.read_at,
        )
        .where(where & Message.sent_at.is_null(False))
        .tuples()
    )
    if not sent:
        return
    first, last = min(row[6] for row in sent), max(row[6] for row in sent)
    customers = (
        Message.select(Message.customer)
        .where(where & Message.sent_at.is_null(False) & Message.customer.is_null(False))
        .distinct()
    )
    replies = moments_by_customer(
        InboundMessage.select(InboundMessage.customer, InboundMessage.occurred_at).where(
            InboundMessage.customer.in_(customers)
            & (InboundMessage.occurred_at >= first)
            & (InboundMessage.occurred_at <= last + REPLY_WINDOW)
        )
    )
    opt_outs = moments_by_customer(
        ConsentEvent.select(ConsentEvent.customer, ConsentEvent.created_at).where(
            ConsentEvent.customer.in_(customers)
            & (ConsentEvent.action == "opt_out")
            & (ConsentEvent.created_at >= first)
            & (ConsentEvent.created_at <= last + OPT_OUT_WINDOW)
        )
    )
    delivery: dict[Group, list[float]] = defaultdict(list)
    reading: dict[Group, list[float]] = defaultdict(list)
    for *columns, customer, sent_at, delivered_at, read_at in sent:
        group = group_of(*columns)
        values = stats[group]
        if delivered_at is not None:
            delivery[group].append(seconds_between(sent_at, delivered_at))
        if read_at is not None:
            reading[group].append(seconds_between(sent_at, read_at))
        values["replied_24h"] += within(replies.get(customer), sent_at, REPLY_WINDOW)
        values["opted_out_7d"] += within(opt_outs.get(customer), sent_at, OPT_OUT_WINDOW)
    for group, samples in delivery.items():
        stats[group]["delivery_seconds_median"] = statistics.median(samples)
    for group, samples in reading.items():
        stats[group]["read_seconds_median"] = statistics.median(samples)


def moments_by_customer(query) -> dict[int, list[datetime]]:
    moments: dict[int, list[datetime]] = defaultdict(list)
    for customer, moment in query.tuples():
        moments[customer].append(moment)
    for times in moments.values():
        times.sort()
    return moments


def within(moments: list[datetime] | None, since: datetime, window: timedelta) -> bool:
    """Whether any of the sorted `moments` falls in [since, since + window]."""
    if not moments:
        return False
    at = bisect_left(moments, since)
    return at < len(moments) and moments[at] <= since + window


def seconds_between(earlier: datetime, later: datetime) -> float:
    return max(0.0, (later - earlier).total_seconds())


# --- reports -------------------------------------------------------------------------


def summary(start: date, end: date, group_by: str) -> dict:
    """Rollup rows from `start` to `end` (inclusive) added up per `group_by` key, and in
    total. Reads DailyStat only.

    Rates: delivered / sent and read / delivered (4 places; None without a denominator).

    Medians: a rollup row holds the exact median of its own day and group. Where a report
    row adds several rollup rows together, its median is the median of their medians,
    each counted once per message it stands for (delivered, or read, messages): exact
    for one rollup row, an approximation otherwise. Exact medians over any range would
    mean keeping every sample, which a rollup exists to avoid.
    """
    if group_by not in GROUP_BY:
        raise ValueError(f"group_by must be one of {', '.join(GROUP_BY)}")
    stats = list(
        DailyStat.select()
        .where(DailyStat.day.between(start, end))
        .order_by(DailyStat.day, DailyStat.id)
    )
    groups: dict[str, list[DailyStat]] = defaultdict(list)
    for row in stats:
        groups[report_key(row, group_by)].append(row)
    return {
        "rows": [{"key": key, **combine(groups[key])} for key in sorted(groups)],
        "totals": combine(stats),
    }


def report_key(row: DailyStat, group_by: str) -> str:
    if group_by == "day":
        return row.day.isoformat()
    if group_by == "template" and row.variant:
        return f"{row.template}/{row.variant}"
    return getattr(row, group_by)


def combine(rows: list[DailyStat]) -> dict:
    totals = {name: sum(getattr(row, name) for row in rows) for name in COUNTS}
    return {
        "messages": totals["messages"],
        "sent": totals["sent"],
        "delivered": totals["delivered"],
        "read": totals["read"],
        "failed": totals["failed"],
        "suppressed": totals["suppressed"],
        "delivery_rate": rate(totals["delivered"], totals["sent"]),
        "read_rate": rate(totals["read"], totals["delivered"]),
        "replied_24h": sum(row.replied_24h for row in rows),
        "opted_out_7d": sum(row.opted_out_7d for row in rows),
        "failed_by_code": merged(row.failed_by_code for row in rows),
        "suppressed_by_reason": merged(row.suppressed_by_reason for row in rows),
        "delivery_seconds_median": weighted_median(
            (row.delivery_seconds_median, row.delivered) for row in rows
        ),
        "read_seconds_median": weighted_median((row.read_seconds_median, row.read) for row in rows),
    }


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def merged(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for each in counts:
        for key, n in each.items():
            tally(total, key, n)
    return dict(sorted(total.items()))


def weighted_median(values: Iterable[tuple[float | None, int]]) -> float | None:
    """statistics.median of the list in which each value appears `weight` times, without
    building that list."""
    pairs = sorted((value, weight) for value, weight in values if value is not None and weight)
    total = sum(weight for _, weight in pairs)
    if not total:
        return None
    middle = ((total - 1) // 2, total // 2)  # the middle position, or the two of them
    found, seen = [], 0
    for value, weight in pairs:
        found += [value for position in middle if seen <= position < seen + weight]
        seen += weight
    return sum(found) / len(found)
