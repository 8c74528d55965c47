"""Cash-on-delivery outcomes (issue 16 item 3), for the dashboard and /metrics: per UTC
day the COD confirmation went out, how many were confirmed, cancelled, left unanswered
or are still waiting, and the median minutes from the confirmation to the tap."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from statistics import median

from bot.core.models import EventKind, Message, Order

OUTCOMES = ("confirmed", "cancelled", "unanswered", "waiting")


def cod_outcomes(start: date, end: date) -> list[dict]:
    """One row per day from `start` to `end` (inclusive), oldest first."""
    since = datetime.combine(start, time.min)
    until = datetime.combine(end + timedelta(days=1), time.min)
    rows = (
        Message.select(Message.sent_at, Order.cod_answer, Order.cod_answered_at)
        .join(Order, on=(Message.order == Order.id))
        .where(
            (Message.kind == EventKind.COD_CONFIRMATION)
            & (Message.sent_at >= since)
            & (Message.sent_at < until)
        )
        .tuples()
    )
    counts: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    waits: dict[date, list[float]] = defaultdict(list)
    for sent_at, answer, answered_at in rows:
        day = sent_at.date()
        counts[day][answer if answer in OUTCOMES else "waiting"] += 1
        if answer in ("confirmed", "cancelled") and answered_at is not None:
            waits[day].append((answered_at - sent_at).total_seconds() / 60)
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    return [
        {
            "day": day.isoformat(),
            "asked": sum(counts[day].values()),
            **counts[day],
            "median_minutes": round(median(waits[day]), 1) if waits[day] else None,
        }
        for day in days
    ]


def totals(rows: list[dict]) -> dict:
    """The rows added together; the median over the days' medians, weighted by answers."""
    found = {key: sum(row[key] for row in rows) for key in ("asked", *OUTCOMES)}
    medians = [
        row["median_minutes"]
        for row in rows
        if row["median_minutes"] is not None
        for _ in range(row["confirmed"] + row["cancelled"])
    ]
    return {**found, "median_minutes": round(median(medians), 1) if medians else None}
