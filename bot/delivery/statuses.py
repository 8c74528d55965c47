"""Delivery receipts: store every one, then move the message's state forward only.

Meta does not promise order (a `read` can come before, or instead of, `delivered`), and
a receipt can overtake the send call's own answer. So each receipt is stored first,
matched by provider id or by our id in the callback data, and applied monotonically.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from peewee import Case, fn

from bot.core.events import MessageStateChanged, publish
from bot.core.models import Message, State, StatusEvent, write_transaction
from bot.core.models import Reason as R
from bot.core.statements import BatchStatement, columns, insert_ignoring
from bot.delivery.providers import fact_of
from bot.delivery.providers.base import DeliveryStatus, Fact, StatusUpdate
from bot.policy import consent

log = logging.getLogger(__name__)

#: A customer's marketing cap (on a receipt or a send's answer) is a delay, not an
#: opt-out: the message is tried again this much later (PROVIDERS.md §1.11).
MARKETING_CAP_DELAY = timedelta(hours=24)

RANK = {State.SENT: 1, State.DELIVERED: 2, State.READ: 3}
TARGET = {
    DeliveryStatus.SENT: State.SENT,
    DeliveryStatus.DELIVERED: State.DELIVERED,
    DeliveryStatus.READ: State.READ,
}
TIMESTAMP = {State.SENT: "sent_at", State.DELIVERED: "delivered_at", State.READ: "read_at"}


#: The failure reason a provider's fact gives a message (the admin API shows it), where it
#: says more than "rejected" (a send's answer) or "delivery failed" (a receipt).
FAILURE_REASONS: dict[Fact, R] = {
    Fact.BSUID_NOT_SUPPORTED: R.BSUID_NOT_SUPPORTED,
    Fact.MARKETING_DISABLED: R.MARKETING_DISABLED,
    Fact.COUNTRY_BLOCKED: R.COUNTRY_BLOCKED,
    Fact.ACCOUNT_LIMITED: R.ACCOUNT_LIMITED,
    Fact.NUMBER_NOT_READY: R.NUMBER_NOT_READY,
    Fact.RECIPIENT_CHANGED: R.RECIPIENT_CHANGED,
}


def failure_reason(fact: Fact | None, otherwise: R) -> R:
    """Why a message failed, in Dakiya's words, given what the provider's code means."""
    return FAILURE_REASONS.get(fact, otherwise) if fact is not None else otherwise


def next_state(current: State, status: DeliveryStatus) -> State | None:
    """The message's new state after `status`, or None when the receipt changes nothing.

    Success receipts only ever move forward (sent < delivered < read), and they win over
    our own `failed` verdict: the provider knows it was delivered. A `failed` receipt
    only lands on a message not yet delivered.
    """
    if current == State.SUPPRESSED:
        return None
    if status == DeliveryStatus.FAILED:
        return State.FAILED if current in (State.SENDING, State.SENT, State.QUEUED) else None
    target = TARGET.get(status)
    if target is None:
        return None
    return target if RANK.get(current, 0) < RANK[target] else None


def message_id_from_callback(callback_data: str | None) -> int | None:
    """Our message id from the callback data we attached at send time ("dakiya:<id>")."""
    if not callback_data or not callback_data.startswith("dakiya:"):
        return None
    tail = callback_data.removeprefix("dakiya:")
    return int(tail) if tail.isdigit() else None


def dedupe_key(update: StatusUpdate) -> str:
    return f"{update.provider}:{update.provider_message_id}:{update.status}"


def record_updates(updates: list[StatusUpdate], now: datetime) -> list[int]:
    """Store receipts (a redelivered one is ignored); return the ids of the new rows.

    One INSERT ... ON CONFLICT DO NOTHING for the whole webhook: the unique dedupe key
    settles redeliveries, also two racing each other.
    """
    rows: dict[str, dict] = {}
    for update in updates:
        rows.setdefault(
            dedupe_key(update),
            {
                "message": None,  # linked when applied (every column: a fixed statement)
                "provider": update.provider,
                "provider_message_id": update.provider_message_id,
                "status": update.status,
                "callback_data": update.callback_data,
                "dedupe_key": dedupe_key(update),
                "error_code": update.error_code,
                "error_text": update.error_text,
                "occurred_at": update.occurred_at,
                "payload": update.raw,
                "received_at": now,
                "applied": False,
            },
        )
    if not rows:
        return []
    # One statement, atomic on its own; its SQL built once per row count (issue 19).
    cursor = RECEIPTS_INSERT.execute(list(rows.values()))
    return sorted(row[0] for row in cursor.fetchall())


RECEIPTS_INSERT = BatchStatement(
    StatusEvent, columns(StatusEvent), insert_ignoring(StatusEvent.dedupe_key, StatusEvent.id)
)


def find_message(event: StatusEvent) -> Message | None:
    message = Message.get_or_none(Message.provider_message_id == event.provider_message_id)
    if message is not None:
        return message
    own_id = message_id_from_callback(event.callback_data)
    return Message.get_or_none(Message.id == own_id) if own_id else None


def apply_status_event(event_id: int, now: datetime) -> State | None:
    """Apply one stored receipt to its message; return the new state, if it changed."""
    with write_transaction():
        event = StatusEvent.get_or_none(StatusEvent.id == event_id)
        if event is None or event.applied:
            return None
        message = find_message(event)
        if message is None:
            # The send's own answer has not been recorded yet; `record_sent` applies it.
            return None
        new_state = _transition(message, event, now)
        StatusEvent.update(applied=True, message=message).where(
            StatusEvent.id == event.id
        ).execute()
        if new_state:
            publish(_change(message, new_state, event), now)
    if new_state:
        log.info("message %s is now %s (%s receipt)", message.id, new_state, event.provider)
    return new_state


#: The reason `_transition` records for a receipt that fails or defers a message.
RECEIPT_REASON = {State.FAILED: R.DELIVERY_FAILED, State.DEFERRED: R.PROVIDER_MARKETING_LIMIT}


def _change(message: Message, new_state: State, event: StatusEvent) -> MessageStateChanged:
    """The event for a receipt's move: a failure (or a marketing-cap deferral) carries
    the reason recorded and the receipt's error code and text."""
    reason = RECEIPT_REASON.get(new_state)
    if reason is None:
        return MessageStateChanged(message, new_state)
    return MessageStateChanged(message, new_state, reason, event.error_code, event.error_text)


def _transition(message: Message, event: StatusEvent, now: datetime) -> State | None:
    current = State(message.state)
    target = next_state(current, DeliveryStatus(event.status))
    fields: dict = {"updated_at": now}
    if message.provider_message_id is None:
        # Reconciled through our callback data: the send's answer was lost or is late.
        fields.update(provider_message_id=event.provider_message_id, provider=event.provider)
    fact = fact_of(event.provider, event.error_code) if target == State.FAILED else None
    if fact is Fact.MARKETING_CAP and message.category == "marketing":
        # The customer's marketing cap: try again in a day; it is not an opt-out.
        target = State.DEFERRED
        fields.update(
            state=target,
            reason=R.PROVIDER_MARKETING_LIMIT,
            next_attempt_at=event.occurred_at + MARKETING_CAP_DELAY,
            error_code=event.error_code,
            error_text=event.error_text,
            lease_until=None,
        )
    elif target == State.FAILED:
        if fact is Fact.MARKETING_STOPPED and message.customer_id:
            consent.record_opt_out(
                message.customer,
                consent.MARKETING,
                "provider_error",
                {"message_id": message.id, "code": event.error_code},
                now,
            )
        fields.update(
            state=target,
            reason=failure_reason(fact, R.DELIVERY_FAILED),
            failed_at=event.occurred_at,
            error_code=event.error_code,
            error_text=event.error_text,
            lease_until=None,
        )
    elif target is not None:
        fields.update(state=target, reason=None, lease_until=None)
        # A later state implies the earlier ones happened (Meta may skip `delivered`).
        for state, column in TIMESTAMP.items():
            if RANK[state] <= RANK[target]:
                fields[column] = fn.COALESCE(getattr(Message, column), event.occurred_at)
    # Guarded on the state we read, so a concurrent receipt cannot be overwritten.
    updated = (
        Message.update(**fields)
        .where((Message.id == message.id) & (Message.state == current))
        .execute()
    )
    if updated == 0:
        return _transition(Message.get_by_id(message.id), event, now)
    return target


def apply_pending_for(provider: str, provider_message_ids: list[str], now: datetime) -> None:
    """Apply receipts that arrived before we knew which messages they belong to (one
    query for a batch of sends)."""
    pending = StatusEvent.select(StatusEvent.id).where(
        (StatusEvent.provider == provider)
        & StatusEvent.provider_message_id.in_(provider_message_ids)
        & (StatusEvent.applied == False)  # noqa: E712 (peewee expression)
    )
    if ids := [event.id for event in pending]:
        apply_status_events(ids, now)


# --- many receipts at once ----------------------------------------------------------

#: Receipts applied per transaction: a few statements for the batch, not per receipt.
BATCH_SIZE = 500


def apply_status_events(event_ids: list[int], now: datetime) -> int:
    """Apply stored receipts, a batch at a time; how many messages changed state.

    The same rules as `apply_status_event`, one receipt after another in the order they
    happened, but with one query to read a batch's messages and a few to write them.
    Receipts that need more than a forward move (a failure, a message known only by its
    callback data) and messages changed concurrently take the one-at-a-time path.
    """
    changed = 0
    for start in range(0, len(event_ids), BATCH_SIZE):
        changed += _apply_batch(event_ids[start : start + BATCH_SIZE], now)
    return changed


def _apply_batch(event_ids: list[int], now: datetime) -> int:
    with write_transaction():
        events = list(
            StatusEvent.select()
            .where(StatusEvent.id.in_(event_ids) & (StatusEvent.applied == False))  # noqa: E712
            .order_by(StatusEvent.occurred_at, StatusEvent.id)
        )
        matched = _match_messages(events)
        simple = [(m, evs) for m, evs in matched if is_forward_only(m, evs)]
        moves = {m.id: fold_receipts(m, evs) for m, evs in simple}
        written = _write_moves([m for m, _ in simple], moves, now)
        settled = [(m, evs) for m, evs in simple if m.id in written or moves[m.id][0] is None]
        _mark_applied({e.id: m.id for m, evs in settled for e in evs})
        for message, _ in settled:
            if (target := moves[message.id][0]) is not None:
                publish(MessageStateChanged(message, target), now)
    changed = sum(1 for m, _ in settled if moves[m.id][0] is not None)
    # Everything else, as before: one receipt, one transaction.
    done = {m.id for m, _ in settled}
    rest = [e.id for m, evs in matched if m.id not in done for e in evs]
    changed += sum(1 for event_id in rest if apply_status_event(event_id, now))
    return changed


def _match_messages(events: list[StatusEvent]) -> list[tuple[Message, list[StatusEvent]]]:
    """Each receipt's message (by provider id, else our id in the callback data), read
    in one query; receipts whose message is not known yet are left out."""
    if not events:
        return []
    provider_ids = {e.provider_message_id for e in events}
    own_ids = {i for e in events if (i := message_id_from_callback(e.callback_data))}
    found = list(
        Message.select().where(
            Message.provider_message_id.in_(provider_ids) | Message.id.in_(own_ids)
        )
    )
    by_provider_id = {m.provider_message_id: m for m in found if m.provider_message_id}
    by_id = {m.id: m for m in found}
    matched: dict[int, tuple[Message, list[StatusEvent]]] = {}
    for event in events:
        message = by_provider_id.get(event.provider_message_id) or by_id.get(
            message_id_from_callback(event.callback_data)
        )
        if message is not None:
            matched.setdefault(message.id, (message, []))[1].append(event)
    return list(matched.values())


def is_forward_only(message: Message, events: list[StatusEvent]) -> bool:
    """True when applying `events` can only move `message` along sent < delivered < read:
    no failure receipt, and the message already knows its provider id."""
    return message.provider_message_id is not None and all(
        e.status != DeliveryStatus.FAILED for e in events
    )


def fold_receipts(
    message: Message, events: list[StatusEvent]
) -> tuple[State | None, dict[str, datetime]]:
    """The state `events` (in order) leave `message` in, None if unchanged, and the
    timestamps to fill in: the first receipt to imply a step sets its time."""
    state, final = State(message.state), None
    stamps: dict[str, datetime] = {}
    for event in events:
        target = next_state(state, DeliveryStatus(event.status))
        if target is None:
            continue
        state = final = target
        for step, column in TIMESTAMP.items():
            if RANK[step] <= RANK[target] and getattr(message, column) is None:
                stamps.setdefault(column, event.occurred_at)
    return final, stamps


def _write_moves(
    messages: list[Message],
    moves: dict[int, tuple[State | None, dict[str, datetime]]],
    now: datetime,
) -> set[int]:
    """One guarded UPDATE per (from, to) pair of states; the ids actually written (a
    message whose state changed meanwhile is not, and is retried one at a time)."""
    groups: dict[tuple[str, State], list[Message]] = {}
    for message in messages:
        target = moves[message.id][0]
        if target is not None:
            groups.setdefault((message.state, target), []).append(message)
    written: set[int] = set()
    for (current, target), group in groups.items():
        fields: dict = {"state": target, "reason": None, "lease_until": None, "updated_at": now}
        for column in TIMESTAMP.values():
            whens = [(m.id, moves[m.id][1][column]) for m in group if column in moves[m.id][1]]
            if whens:
                field = getattr(Message, column)
                fields[column] = fn.COALESCE(field, Case(Message.id, whens, None))
        ids = [m.id for m in group]
        query = (
            Message.update(**fields)
            .where(Message.id.in_(ids) & (Message.state == current))
            .returning(Message.id)
        )
        written.update(row.id for row in query.execute())
    return written


def _mark_applied(message_of: dict[int, int]) -> None:
    """Mark receipts applied, each with its message: one UPDATE."""
    if message_of:
        StatusEvent.update(
            applied=True, message=Case(StatusEvent.id, list(message_of.items()))
        ).where(StatusEvent.id.in_(list(message_of))).execute()
