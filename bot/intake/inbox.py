"""The webhook inbox (issue 19): a verified delivery is kept raw by one INSERT and
answered at once; workers take the entries in, a batch at a time, in the transaction
that deletes them.

A webhook request does the least that makes its delivery durable: verify the signature,
check that the body is JSON, `keep` it (one INSERT, autocommitted) and kick a drain.
Parsing and everything a delivery leads to happen in `take_batch`, on a worker, for up
to BATCH_SIZE entries at once: their receipts are stored with one INSERT and the entries
deleted in the same transaction, so an entry is taken in exactly once or not at all. A
killed worker or an outage leaves the entries for the next drain; the sweeper kicks a
drain for entries its grace period finds waiting (a lost kick, Redis flushed).

Two lanes, so that a STOP never waits behind a campaign's receipts: customer messages
(and anything that is not only receipts) are drained on the orders queue, which workers
serve first, and a receipt drain hands over between batches whenever a job waits on it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

import redis
from peewee import SqliteDatabase, fn

from bot.core import spool, triggers
from bot.core.errors import is_outage
from bot.core.models import InboxEntry, db, utcnow, write_transaction
from bot.core.statements import Statement, columns
from bot.intake import dead_letters
from bot.intake.intake import (
    SPOOLED,
    IntakeServices,
    Stored,
    follow_up,
    parse_whatsapp,
    store_whatsapp_updates,
)

log = logging.getLogger(__name__)


class Lane(StrEnum):
    INBOUND = "inbound"  # customer messages, and whatever is not only receipts
    RECEIPTS = "receipts"  # delivery receipts and nothing else


#: The queue each lane's drain runs on: workers serve "orders" before "statuses".
QUEUE_OF = {Lane.INBOUND: "orders", Lane.RECEIPTS: "statuses"}
DRAIN_JOB = {Lane.INBOUND: "jobs.inbox.take_inbound", Lane.RECEIPTS: "jobs.inbox.take_receipts"}
KICK_KEY = "dakiya:inbox:kick:{}"
#: Entries taken in per transaction: one INSERT for all their receipts.
BATCH_SIZE = 200

APPEND = Statement(InboxEntry, columns(InboxEntry), lambda values: InboxEntry.insert(**values))


def keep(
    svc: IntakeServices,
    kind: str,
    lane: Lane,
    body: bytes,
    now: datetime,
    *,
    spooled: bool = False,
    headers: dict[str, str] | None = None,
) -> object | None:
    """Make a verified delivery durable and kick its lane's drain; `SPOOLED` when the
    database could not take it and the spool did (`spooled`: a sender that never
    redelivers). Without a spool an outage propagates: the sender gets 503."""
    values = {"kind": kind, "lane": lane, "body": body, "received_at": now}
    values["headers"] = json.dumps(headers or {})
    try:
        APPEND.execute(values)
    except Exception as exc:
        if not spooled or spool.put(svc.redis, kind, body, headers or {}) is None:
            raise
        if not is_outage(exc):
            log.exception("a %s delivery could not be kept; spooled for the dead letters", kind)
        return SPOOLED
    lingering = lingers(svc, lane)
    seen = _seen_pending.get(lane)
    if lingering and seen is not None and time.monotonic() - seen < KICK_SKIP_SECONDS:
        return None  # a drain was pending moments ago: it takes this entry too
    checked_at = time.monotonic()
    try:
        kick(svc, lane)
    except redis.RedisError as exc:  # the entry is durable: the sweeper kicks a drain
        log.warning("could not kick the %s drain (%s); the sweeper will", lane, exc)
        return None
    if lingering:
        _seen_pending[lane] = checked_at
    return None


def lingers(svc: IntakeServices, lane: Lane) -> bool:
    """Whether the lane's drain lingers, holding its trigger (`drain`): receipts, unless
    RECEIPT_DRAIN_LINGER_SECONDS is 0."""
    return lane is Lane.RECEIPTS and svc.settings.receipt_drain_linger_seconds > 0


#: For this long after this process saw a lingering lane's drain pending (or kicked
#: it), its entries kick no drain: one receipt per POST would otherwise cost a Redis
#: round trip each. Safe because a lingering drain, having cleared its trigger, waits
#: this long before its last look: an entry kept within the window is still taken.
KICK_SKIP_SECONDS = 0.25
_seen_pending: dict[Lane, float] = {}


def kick(svc: IntakeServices, lane: Lane, *, force: bool = False) -> bool:
    """Make sure a drain of `lane` is pending (one round trip when it is)."""
    queue = svc.queues[QUEUE_OF[lane]]
    return triggers.ensure_pending(queue, KICK_KEY.format(lane), DRAIN_JOB[lane], force=force)


class Taken(NamedTuple):
    entries: int  # entries taken in (stored, or moved to the dead letters)
    receipt_ids: list[int]  # new receipts, to apply
    inbound_ids: list[int]  # new customer messages, to answer


NOTHING = Taken(0, [], [])


def claim(lane: Lane, limit: int) -> list[InboxEntry]:
    """The lane's oldest entries, locked until the transaction ends; on PostgreSQL those
    another drain holds are skipped (SQLite's write lock already serialises drains)."""
    query = InboxEntry.select().where(InboxEntry.lane == lane).order_by(InboxEntry.id).limit(limit)
    if not isinstance(db.obj, SqliteDatabase):
        query = query.for_update("FOR UPDATE SKIP LOCKED")
    return list(query)


def parse(svc: IntakeServices, entry: InboxEntry) -> list:
    family, _, name = entry.kind.partition(":")
    if family != "whatsapp":
        raise ValueError(f"unknown inbox entry kind {entry.kind!r}")
    return parse_whatsapp(svc, name, bytes(entry.body))


def take_batch(svc: IntakeServices, lane: Lane, now: datetime, limit: int | None = None) -> Taken:
    """Take in up to `limit` of the lane's oldest entries in one transaction. If that
    fails for any reason but an outage (re-raised: the entries wait), they are taken in
    one at a time and the one that fails on its own goes to the dead letters."""
    limit = limit or BATCH_SIZE
    claimed: list[InboxEntry] = []
    try:
        stored = take_in(svc, lane, now, limit, claimed)
    except Exception as exc:
        if is_outage(exc):
            raise
        log.exception("a batch of the %s inbox failed; taking it in one by one", lane)
        return take_one_by_one(svc, lane, now, limit)
    return NOTHING if stored is None else done(svc, len(claimed), stored, now)


def take_one_by_one(svc: IntakeServices, lane: Lane, now: datetime, limit: int) -> Taken:
    taken = NOTHING
    for _ in range(limit):
        claimed: list[InboxEntry] = []
        try:
            stored = take_in(svc, lane, now, 1, claimed)
        except Exception as exc:
            if is_outage(exc) or not claimed:
                raise
            dead_letter(claimed[0], exc, now)
            taken = taken._replace(entries=taken.entries + 1)
            continue
        if stored is None:
            break
        one = done(svc, 1, stored, now)
        taken = Taken(
            taken.entries + 1,
            taken.receipt_ids + one.receipt_ids,
            taken.inbound_ids + one.inbound_ids,
        )
    return taken


def take_in(
    svc: IntakeServices, lane: Lane, now: datetime, limit: int, claimed: list[InboxEntry]
) -> Stored | None:
    """One transaction: claim up to `limit` entries (kept in `claimed`, for the caller to
    dead-letter if this fails), store everything they carry, delete them. None when the
    lane is empty."""
    with write_transaction():
        claimed[:] = claim(lane, limit)
        if not claimed:
            return None
        updates = [update for entry in claimed for update in parse(svc, entry)]
        stored = store_whatsapp_updates(svc, updates, now)
        delete(claimed)
    return stored


def done(svc: IntakeServices, entries: int, stored: Stored, now: datetime) -> Taken:
    follow_up(svc, stored, now)
    return Taken(entries, stored.receipt_ids, stored.inbound_ids)


def delete(entries: list[InboxEntry]) -> None:
    InboxEntry.delete().where(InboxEntry.id.in_([e.id for e in entries])).execute()


def dead_letter(entry: InboxEntry, exc: BaseException, now: datetime) -> None:
    """Move an entry that cannot be taken in out of the way, byte for byte, with its
    error (retried or discarded from `/admin/api/spool/dead-letters`)."""
    log.error(
        "inbox entry %s (%s) moved to the dead letters: %s",
        entry.id,
        entry.kind,
        dead_letters.describe(exc),
    )
    moved = spool.Entry(
        id=f"inbox-{entry.id}",
        kind=entry.kind,
        body=bytes(entry.body),
        headers=json.loads(entry.headers or "{}"),
    )
    with write_transaction():
        dead_letters.record(moved, exc, now, kept_at=entry.received_at)
        delete([entry])


class Drained(NamedTuple):
    entries: int
    receipts_applied: int
    answered: int


def drain(
    svc: IntakeServices,
    lane: Lane,
    budget_seconds: float,
    *,
    apply: Callable[[list[int]], int],
    answer: Callable[[list[int]], int],
    linger_seconds: float = 0.0,
    step_aside: Callable[[], bool] | None = None,
) -> Drained:
    """Take the lane in, a batch at a time, until it is empty or the budget is spent
    (then a fresh job carries on); `apply` the new receipts and `answer` the new
    customer messages after each batch. When `step_aside()` says work of a higher
    priority waits, hand over to a fresh job between batches, so the worker serves it.

    Without `linger_seconds` the trigger is cleared first, so an entry kept from now on
    kicks a new drain and one kept before is taken by this one. With it (receipts, which
    a campaign sends in a stream, one per POST) the drain holds the trigger, so those
    webhooks kick no job of their own; it lets a batch gather after a short one and ends
    only when the lane has been empty for `linger_seconds`: it clears the trigger and
    looks once more, so an entry kept just before is taken, one kept after kicks anew.
    """
    key = KICK_KEY.format(lane)
    if not linger_seconds:
        triggers.clear(svc.redis, key)
    stop_at = time.monotonic() + budget_seconds
    idle_since: float | None = None
    entries = applied = answered = 0
    while True:
        started = time.monotonic()
        taken = take_batch(svc, lane, utcnow())
        if taken.entries:
            idle_since = None
            let_writers_in(time.monotonic() - started)
            entries += taken.entries
            if taken.receipt_ids:
                applied += apply(taken.receipt_ids)
            if taken.inbound_ids:
                answered += answer(taken.inbound_ids)
        elif not linger_seconds:
            break
        else:
            idle_since = idle_since or started
            if started - idle_since >= linger_seconds:
                triggers.clear(svc.redis, key)
                time.sleep(KICK_SKIP_SECONDS)  # entries kept without a kick (`keep`)
                linger_seconds = 0.0  # one more look, then end once it is empty
                continue
        if (step_aside is not None and step_aside()) or time.monotonic() >= stop_at:
            hand_on(svc, lane)
            break
        if linger_seconds and taken.entries < BATCH_SIZE:
            time.sleep(GATHER_SECONDS)
    return Drained(entries, applied, answered)


#: How long a lingering drain lets entries gather after a batch that was not full.
GATHER_SECONDS = 0.05


def hand_on(svc: IntakeServices, lane: Lane) -> None:
    """A fresh drain carries on where this one stops; the trigger is renewed, so that
    webhooks meanwhile still kick no job of their own."""
    triggers.renew(svc.redis, KICK_KEY.format(lane))
    kick(svc, lane, force=True)


#: On SQLite, the share of a batch's time a drain then pauses for (see below).
SQLITE_PAUSE_SHARE = 0.25


def let_writers_in(batch_seconds: float) -> None:
    """On SQLite, pause after a batch so that webhooks waiting for the one write lock get
    it: its busy handler polls at growing intervals, and back-to-back transactions would
    starve it (a STOP's INSERT waited out a whole receipt backlog). PostgreSQL: no-op."""
    if isinstance(db.obj, SqliteDatabase):
        time.sleep(min(batch_seconds * SQLITE_PAUSE_SHARE, 0.05))


class Waiting(NamedTuple):
    entries: int
    oldest: datetime | None  # when the lane's oldest entry was kept


def waiting() -> dict[Lane, Waiting]:
    """Every lane's entries not taken in yet, in one query (the sweeper's and /metrics'
    view); a lane with none is there too."""
    first = fn.MIN(InboxEntry.received_at).python_value(InboxEntry.received_at.python_value)
    query = InboxEntry.select(InboxEntry.lane, fn.COUNT(InboxEntry.id), first).group_by(
        InboxEntry.lane
    )
    found = {lane: Waiting(n, first) for lane, n, first in query.tuples()}
    return {lane: found.get(lane, Waiting(0, None)) for lane in Lane}
