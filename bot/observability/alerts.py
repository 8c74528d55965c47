"""Alerts: rules over the state of sending, and a small state machine per condition so
admins hear of a problem once, are reminded after a cool-down, and hear when it clears.

`evaluate()` (facts -> conditions) and `plan()` (conditions and open alerts -> notices)
are pure; `gather_facts()` and `check_once()` do the I/O around them. The channels that
carry a notice to people live in `bot.observability.alert_channels`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import redis
from peewee import fn
from rq import Queue

from bot.core.config_rules import AlertRules
from bot.core.models import (
    Alert,
    Message,
    Reason,
    Route,
    ShopWriteBack,
    SpoolDeadLetter,
    State,
    write_transaction,
)
from bot.delivery import unhandled
from bot.delivery.providers.base import AccountNews, News, Severity
from bot.delivery.providers.meta_versions import version_news, version_table

log = logging.getLogger(__name__)

WARNING, CRITICAL = Severity.WARNING, Severity.CRITICAL

FIRING, RESOLVED = "firing", "resolved"  # Alert.state

#: Refusals that say the business account or number cannot send, not that one message was
#: wrong: each raises a critical alert while such failures keep coming (Meta's 2026 codes).
ACCOUNT_REFUSALS: dict[str, str] = {
    Reason.MARKETING_DISABLED: "marketing templates are disabled on the Cloud API for this "
    "account (Meta 131063): send them through the Marketing Messages API",
    Reason.COUNTRY_BLOCKED: "the account may not message users in that country (Meta 130497)",
    Reason.ACCOUNT_LIMITED: "the account's messaging is limited for template-classification "
    "violations (Meta 131064)",
    Reason.NUMBER_NOT_READY: "the business number is not ready to send: its registration or "
    "display name (Meta 131037, 131045, 133010, 133016)",
}

#: Signature failures are counted per webhook in buckets of this many seconds.
SIGNATURE_BUCKET_SECONDS = 300
SIGNATURE_KEY = "dakiya:alerts:signature_failures:{bucket}"
#: The latest verdict on each provider subject ("account", "template:<name>:<lang>", ...).
PROVIDER_EVENTS_KEY = "dakiya:alerts:provider_events"
LOCK_KEY = "dakiya:alerts:lock"
#: Messages created longer ago than this are not looked at (keeps the queries on the
#: created_at index; a message finishing days after it was created is not news).
LOOKBACK = timedelta(days=2)


# --- Facts and rules (pure) -----------------------------------------------------------


@dataclass(frozen=True)
class ProviderEvent:
    """A problem the provider told us about, still standing (`record_account_news`)."""

    subject: str
    severity: str
    text: str
    received_at: datetime


@dataclass(frozen=True)
class AlertFacts:
    """Everything the rules look at, gathered at one moment."""

    finished: int = 0  # messages sent, delivered, read or failed within the window
    failed: int = 0
    dead_letters: int = 0  # failed with retries_exhausted within the window
    queue_ages: dict[str, float] = field(default_factory=dict)  # oldest job, seconds
    oldest_due_at: datetime | None = None  # the longest-waiting message due for sending
    last_sent_at: datetime | None = None
    signature_failures: dict[str, int] = field(default_factory=dict)  # webhook -> count
    provider_events: tuple[ProviderEvent, ...] = ()
    spool_dead_letters: int = 0  # spooled deliveries set aside, waiting for an admin
    # provider -> reason -> unhandled updates received within the last hour
    unhandled_updates: dict[str, dict[str, int]] = field(default_factory=dict)
    # reason -> messages the provider refused for it within the window, for the reasons
    # that say the account or number cannot send (ACCOUNT_REFUSALS)
    account_refusals: dict[str, int] = field(default_factory=dict)
    # messages Meta refused on /messages as marketing (131063) and Dakiya resent through
    # the Marketing Messages API, touched within the window
    marketing_reroutes: int = 0
    # COD answers the shop has not been told of: write-backs that failed for good, and
    # those still pending after 3 or more attempts (bot/integrations/write_back.py)
    write_backs_failed: int = 0
    write_backs_stuck: int = 0


@dataclass(frozen=True)
class Condition:
    """Something wrong right now. `key` is stable while the same thing stays wrong."""

    key: str
    severity: str
    text: str


def evaluate(facts: AlertFacts, rules: AlertRules, now: datetime) -> list[Condition]:
    """Every condition that holds for `facts`."""
    found = []
    window = _duration(rules.window)
    if rules.failure_rate > 0 and facts.finished and facts.finished >= rules.min_volume:
        rate = facts.failed / facts.finished
        if rate >= rules.failure_rate:
            found.append(
                Condition(
                    "failure_rate",
                    WARNING,
                    f"{rate:.0%} of messages failed in the last {window} "
                    f"({facts.failed} of {facts.finished}; threshold {rules.failure_rate:.0%})",
                )
            )
    if rules.dead_letters > 0 and facts.dead_letters >= rules.dead_letters:
        found.append(
            Condition(
                "dead_letters",
                WARNING,
                f"{facts.dead_letters} message(s) gave up after every retry in the last "
                f"{window} (state failed, reason retries_exhausted)",
            )
        )
    if rules.queue_age_seconds > 0:
        limit = _duration(timedelta(seconds=rules.queue_age_seconds))
        for queue, age in sorted(facts.queue_ages.items()):
            if age >= rules.queue_age_seconds:
                found.append(
                    Condition(
                        f"queue_age:{queue}",
                        WARNING,
                        f"the oldest job in the {queue} queue has waited "
                        f"{_duration(timedelta(seconds=age))} (threshold {limit})",
                    )
                )
        waited = _waited(facts.oldest_due_at, now)
        if waited is not None and waited >= timedelta(seconds=rules.queue_age_seconds):
            found.append(
                Condition(
                    "queue_age:messages",
                    WARNING,
                    f"the oldest queued message has been due for {_duration(waited)} "
                    f"(threshold {limit})",
                )
            )
    waited = _waited(facts.oldest_due_at, now)
    silent = _waited(facts.last_sent_at, now)
    if (
        rules.no_send > timedelta(0)
        and waited is not None
        and waited >= rules.no_send
        and (silent is None or silent >= rules.no_send)
    ):
        last = f"the last one {_duration(silent)} ago" if silent is not None else "none lately"
        found.append(
            Condition(
                "no_send",
                CRITICAL,
                f"no message sent for {_duration(rules.no_send)} or more ({last}) while "
                f"messages wait, the oldest for {_duration(waited)}: are the workers and "
                "the provider up?",
            )
        )
    if rules.signature_failures > 0:
        for source, count in sorted(facts.signature_failures.items()):
            if count >= rules.signature_failures:
                found.append(
                    Condition(
                        f"signature_failures:{source}",
                        WARNING,
                        f"{count} requests to the {source} webhook had a bad signature within "
                        f"5 min (threshold {rules.signature_failures}): a wrong secret, "
                        "or someone probing",
                    )
                )
    if facts.spool_dead_letters:
        # One key however many arrive: a burst is one alert, then the usual reminders.
        found.append(
            Condition(
                "spool_dead_letters",
                CRITICAL,
                f"{facts.spool_dead_letters} delivery(ies) could not be stored and wait in "
                "the dead letters: retry or discard them (GET /admin/api/spool/dead-letters)",
            )
        )
    if rules.unhandled_updates > 0:
        for provider, reasons in sorted(facts.unhandled_updates.items()):
            total = sum(reasons.values())
            if total >= rules.unhandled_updates:
                most = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items(), key=_larger))
                found.append(
                    Condition(
                        f"unhandled_updates:{provider}",
                        WARNING,
                        f"{total} parts of {provider} webhooks in the last hour were kept "
                        f"unhandled ({most}; threshold {rules.unhandled_updates}): see "
                        "/admin/api/unhandled-updates",
                    )
                )
    for reason, count in sorted(facts.account_refusals.items()):
        found.append(
            Condition(
                f"refused:{reason}",
                CRITICAL,
                f"{count} message(s) refused by the provider in the last {window}: "
                f"{ACCOUNT_REFUSALS[reason]} (reason {reason})",
            )
        )
    if facts.marketing_reroutes:
        found.append(
            Condition(
                "rerouted:marketing_disabled",
                WARNING,
                f"{facts.marketing_reroutes} message(s) in the last {window} were refused on "
                "/messages because Meta treats their template as marketing (Meta 131063) and "
                "were resent through the Marketing Messages API as marketing: set the "
                "template's category to marketing in the notification map",
            )
        )
    if facts.write_backs_failed or facts.write_backs_stuck:
        found.append(
            Condition(
                "write_backs",
                WARNING,
                f"{facts.write_backs_failed} COD answer(s) could not be written back to the "
                f"shop and {facts.write_backs_stuck} keep failing: see write_backs in "
                "GET /admin/api/orders/<id>, and tag those orders by hand",
            )
        )
    if rules.meta_api_version:
        news = version_news(rules.meta_api_version, now.date(), version_table())
        if news is not None:
            found.append(Condition("meta_api_version", news.severity, news.text))
    for event in facts.provider_events:
        if now - event.received_at < rules.provider_event_ttl:
            found.append(Condition(f"provider:{event.subject}", event.severity, event.text))
    return found


def _larger(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]


def _waited(since: datetime | None, now: datetime) -> timedelta | None:
    return None if since is None else max(now - since, timedelta(0))


def _duration(span: timedelta) -> str:
    """3 min, 2 h 5 min, 45 s: short enough for a WhatsApp parameter."""
    seconds = int(span.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    hours, minutes = divmod(seconds // 60, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


# --- State per condition (pure) ---------------------------------------------------------


@dataclass(frozen=True)
class OpenAlert:
    """A condition admins were told about and have not yet heard has cleared."""

    key: str
    severity: str
    text: str
    fired_at: datetime
    notified_at: datetime


@dataclass(frozen=True)
class Notice:
    """One message to the admins about one condition: it fired, it still holds after the
    cool-down, or it cleared (`kind` "test" for `flask --app wsgi test-alert`)."""

    key: str
    kind: str  # "firing" | "reminder" | "resolved" | "test"
    severity: str
    text: str
    at: datetime

    @property
    def title(self) -> str:
        label = {"firing": "ALERT", "reminder": "STILL FIRING", "resolved": "RESOLVED"}
        return f"[Dakiya] {label.get(self.kind, self.kind.upper())}: {self.key}"

    def as_text(self) -> str:
        """One line (WhatsApp template parameters may not hold line breaks)."""
        return " ".join(f"{self.title} - {self.text}".split())

    @property
    def dedupe_id(self) -> str:
        """Stable per transition: a retried delivery of this notice is recognised."""
        return f"{self.key}:{self.kind}:{self.at:%Y%m%dT%H%M%S}"


def plan(
    conditions: Iterable[Condition],
    open_alerts: dict[str, OpenAlert],
    now: datetime,
    cooldown: timedelta,
) -> list[Notice]:
    """What to tell admins now: each new condition once, a reminder when one still holds
    a cool-down after the last notice, and one "resolved" when an open one is gone."""
    notices = []
    current = {c.key: c for c in conditions}
    for condition in current.values():
        alert = open_alerts.get(condition.key)
        if alert is None:
            notices.append(Notice(condition.key, "firing", condition.severity, condition.text, now))
        elif now - alert.notified_at >= cooldown:
            since = _duration(now - alert.fired_at)
            text = f"{condition.text} (firing for {since})"
            notices.append(Notice(condition.key, "reminder", condition.severity, text, now))
    for key, alert in sorted(open_alerts.items()):
        if key not in current:
            text = f"cleared after {_duration(now - alert.fired_at)}; it was: {alert.text}"
            notices.append(Notice(key, "resolved", alert.severity, text, now))
    return notices


# --- Provider account events ------------------------------------------------------------


def record_account_news(conn: redis.Redis, news: Iterable[AccountNews], now: datetime) -> int:
    """Keep the latest problem or all-clear per subject for the next check; an older
    (redelivered) one never overwrites a newer one. Returns how many were stored."""
    stored = 0
    for item in news:
        if item.kind is News.NEUTRAL:
            continue
        previous = conn.hget(PROVIDER_EVENTS_KEY, item.subject)
        occurred = item.occurred_at.isoformat()
        if previous and json.loads(previous)["occurred_at"] > occurred:
            continue
        entry = {
            "severity": item.severity,
            "text": item.text if item.kind is News.PROBLEM else None,
            "occurred_at": occurred,
            "received_at": now.isoformat(),
        }
        conn.hset(PROVIDER_EVENTS_KEY, item.subject, json.dumps(entry))
        stored += 1
        if entry["text"]:
            log.warning("provider account event: %s", entry["text"])
    return stored


def provider_events(conn: redis.Redis, now: datetime, ttl: timedelta) -> tuple[ProviderEvent, ...]:
    """The standing problems; verdicts older than `ttl` are forgotten."""
    events = []
    for subject, raw in conn.hgetall(PROVIDER_EVENTS_KEY).items():
        entry = json.loads(raw)
        received = datetime.fromisoformat(entry["received_at"])
        if now - received >= ttl:
            conn.hdel(PROVIDER_EVENTS_KEY, subject)
        elif entry["text"]:
            events.append(
                ProviderEvent(subject.decode(), entry["severity"], entry["text"], received)
            )
    return tuple(sorted(events, key=lambda e: e.subject))


# --- Signature failures -------------------------------------------------------------------


def record_signature_failure(conn: redis.Redis, source: str) -> None:
    """Count one request refused for its signature (a 401) for `source`, e.g.
    "whatsapp:meta". Never raises: a Redis outage must not change the 401."""
    key = SIGNATURE_KEY.format(bucket=int(time.time() // SIGNATURE_BUCKET_SECONDS))
    try:
        pipe = conn.pipeline()
        pipe.hincrby(key, source, 1)
        pipe.expire(key, SIGNATURE_BUCKET_SECONDS * 3)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("could not count a signature failure for %s: %s", source, exc)


def signature_failures(conn: redis.Redis) -> dict[str, int]:
    """Per webhook, the larger count of the current and the previous 5-minute bucket (a
    burst at a bucket's edge is still seen whole by a check a minute later)."""
    bucket = int(time.time() // SIGNATURE_BUCKET_SECONDS)
    counts: dict[str, int] = {}
    for b in (bucket - 1, bucket):
        for source, count in conn.hgetall(SIGNATURE_KEY.format(bucket=b)).items():
            name = source.decode()
            counts[name] = max(counts.get(name, 0), int(count))
    return counts


# --- Gathering and checking -----------------------------------------------------------


def gather_facts(
    conn: redis.Redis, queues: dict[str, Queue], now: datetime, rules: AlertRules
) -> AlertFacts:
    """The facts for `evaluate`, read from the database and Redis."""
    recent = Message.created_at >= now - LOOKBACK
    since = now - rules.window
    sent = Message.state.in_([State.SENT, State.DELIVERED, State.READ]) & (Message.sent_at >= since)
    failed = (Message.state == State.FAILED) & (Message.failed_at >= since)
    return AlertFacts(
        finished=Message.select().where(recent & (sent | failed)).count(),
        failed=Message.select().where(recent & failed).count(),
        dead_letters=Message.select()
        .where(recent & failed & (Message.reason == Reason.RETRIES_EXHAUSTED))
        .count(),
        queue_ages=queue_ages(queues, now),
        oldest_due_at=oldest_due_at(now),
        last_sent_at=_first(
            Message.select(Message.sent_at)
            .where(recent & Message.sent_at.is_null(False))
            .order_by(Message.sent_at.desc()),
            "sent_at",
        ),
        signature_failures=signature_failures(conn),
        provider_events=provider_events(conn, now, rules.provider_event_ttl),
        spool_dead_letters=SpoolDeadLetter.select().count(),
        unhandled_updates=unhandled.recent_counts(now),
        account_refusals=account_refusals(since, now - LOOKBACK),
        write_backs_failed=ShopWriteBack.select()
        .where((ShopWriteBack.state == "failed") & (ShopWriteBack.created_at >= now - LOOKBACK))
        .count(),
        write_backs_stuck=ShopWriteBack.select()
        .where((ShopWriteBack.state == "pending") & (ShopWriteBack.attempts >= 3))
        .count(),
        marketing_reroutes=Message.select()
        .where(
            recent
            & (Message.route == Route.MARKETING_MESSAGES_AFTER_REFUSAL)
            & (Message.updated_at >= since)
        )
        .count(),
    )


def account_refusals(since: datetime, created_after: datetime) -> dict[str, int]:
    """Per ACCOUNT_REFUSALS reason, the messages that failed for it since `since` (among
    those created after `created_after`, so the created_at index bounds the scan)."""
    rows = (
        Message.select(Message.reason, fn.COUNT(Message.id).alias("n"))
        .where(
            (Message.created_at >= created_after)
            & (Message.state == State.FAILED)
            & (Message.failed_at >= since)
            & Message.reason.in_(list(ACCOUNT_REFUSALS))
        )
        .group_by(Message.reason)
        .tuples()
    )
    return {reason: n for reason, n in rows}


def queue_ages(queues: dict[str, Queue], now: datetime) -> dict[str, float]:
    """Seconds the first job of each RQ queue has waited since it was enqueued."""
    ages = {}
    for name, queue in queues.items():
        ids = queue.get_job_ids(0, 1)
        job = queue.fetch_job(ids[0]) if ids else None
        if job is not None and job.enqueued_at is not None:
            enqueued = job.enqueued_at
            if enqueued.tzinfo is not None:
                enqueued = enqueued.astimezone(UTC).replace(tzinfo=None)
            ages[name] = max((now - enqueued).total_seconds(), 0.0)
    return ages


def oldest_due_at(now: datetime) -> datetime | None:
    """Since when the longest-waiting sendable message has been due (as the sweeper
    reads it: `next_attempt_at`, else the row's last change)."""
    waiting = Message.state.in_([State.QUEUED, State.DEFERRED])
    scheduled = _first(
        Message.select(Message.next_attempt_at)
        .where(waiting & (Message.next_attempt_at <= now))
        .order_by(Message.next_attempt_at),
        "next_attempt_at",
    )
    unscheduled = _first(
        Message.select(Message.updated_at)
        .where(waiting & Message.next_attempt_at.is_null())
        .order_by(Message.updated_at),
        "updated_at",
    )
    found = [t for t in (scheduled, unscheduled) if t is not None]
    return min(found) if found else None


def _first(query, name: str):
    row = query.limit(1).first()
    return getattr(row, name) if row is not None else None


def open_alerts() -> dict[str, OpenAlert]:
    rows = Alert.select().where(Alert.state == FIRING).order_by(Alert.id)
    return {
        row.key: OpenAlert(row.key, row.severity, row.text, row.fired_at, row.notified_at)
        for row in rows
    }


def record_notices(notices: Iterable[Notice], now: datetime) -> None:
    """Write each notice's transition to the alert history."""
    for notice in notices:
        firing = (Alert.key == notice.key) & (Alert.state == FIRING)
        if notice.kind == "firing":
            Alert.create(
                key=notice.key,
                state=FIRING,
                severity=notice.severity,
                text=notice.text,
                fired_at=now,
                notified_at=now,
            )
        elif notice.kind == "reminder":
            Alert.update(notified_at=now, text=notice.text).where(firing).execute()
        elif notice.kind == "resolved":
            Alert.update(state=RESOLVED, resolved_at=now).where(firing).execute()


def check_once(
    conn: redis.Redis, queues: dict[str, Queue], rules: AlertRules, now: datetime
) -> list[Notice]:
    """Evaluate every rule, move each condition's state on, and return what admins must
    be told (the caller sends it once the transaction has committed)."""
    facts = gather_facts(conn, queues, now, rules)
    conditions = evaluate(facts, rules, now)
    with write_transaction():
        notices = plan(conditions, open_alerts(), now, rules.cooldown)
        record_notices(notices, now)
    return notices
