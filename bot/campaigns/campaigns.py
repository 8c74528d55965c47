"""Campaigns: one template sent to a segment, in batches of message rows that go through
the same outbox, send-time policy and rate limiter as every order update.

A message row is created only once its send time has come (for "local_time" campaigns,
customer by customer), so pausing or cancelling stops a campaign within one batch. The
dedupe key "campaign:<id>:<customer id>" is unique: a restarted batch cannot add a
second message for anyone.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import StrEnum

from peewee import fn
from rq import Queue

from bot.campaigns import experiments, segments
from bot.core.audit import audit
from bot.core.events import MessagesStateChanged, MessageStateChanged, publish
from bot.core.languages import preferred_languages
from bot.core.models import (
    Campaign,
    Category,
    Customer,
    Experiment,
    Message,
    Order,
    Reason,
    State,
    write_transaction,
)
from bot.core.notifications import (
    PARAMETERS,
    MissingParameter,
    TemplateSpec,
    choose_language,
    customer_locale,
    format_money,
    order_values,
    render_params,
)
from bot.core.rows import insert_messages
from bot.delivery import dispatch
from bot.policy import policy

#: What a campaign's template may say: the order parameters (of the customer's latest
#: order) and facts about the customer.
CAMPAIGN_PARAMETERS = PARAMETERS | {"first_order_number", "last_order_number", "total_spend"}
BATCH_SIZE = 500
QUEUE = "campaigns"
RUN_JOB = "jobs.campaigns.run_campaign_batch"
KIND = "campaign"


class CampaignState(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"  # creating batches
    SENDING = "sending"  # everyone targeted; some of its messages have not gone out yet
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"  # nothing of it can still be sent


#: States in which batches are created.
ACTIVE = (CampaignState.SCHEDULED, CampaignState.RUNNING)
#: States a campaign can still be paused or cancelled in: until it is done.
STOPPABLE = (*ACTIVE, CampaignState.SENDING)
#: A campaign message that has not gone out yet (cancel suppresses these, pause holds them).
WAITING = (State.QUEUED, State.DEFERRED)
#: A campaign message that may still be sent: waiting, or in a sender's hands right now.
UNSETTLED = (*WAITING, State.SENDING)
#: Until when pause holds a campaign's waiting messages (resume releases them at once).
HELD_UNTIL = datetime(9999, 12, 31)


class NotAllowed(Exception):
    """The campaign is not in a state that allows this change."""


# --- creation and state changes ---------------------------------------------------------


def create(draft: dict, actor: str, now: datetime) -> Campaign:
    """A draft campaign from `draft`'s fields (name, template, languages, category,
    params, fallbacks, segment, schedule), audited as `actor`."""
    with write_transaction():
        campaign = Campaign.create(
            name=draft["name"],
            template=draft["template"],
            languages=draft["languages"],
            category=draft["category"],
            params=draft["params"],
            fallbacks=draft["fallbacks"],
            segment=draft["segment"],
            schedule=stored_schedule(draft["schedule"]),
            created_by=actor,
            created_at=now,
            updated_at=now,
        )
        audit(actor, "create_campaign", str(campaign.id), {"name": campaign.name}, now)
    return campaign


def stored_schedule(schedule: dict | None) -> dict | None:
    """A schedule as the row keeps it (JSON): one moment for everyone (`at`, naive UTC),
    or a wall-clock `local_time` on a `date` in each customer's own zone."""
    if not schedule:
        return schedule
    if "at" in schedule:
        return {"at": schedule["at"].isoformat()}
    return {"local_time": schedule["local_time"], "date": schedule["date"].isoformat()}


def transition(campaign: Campaign, allowed: tuple, to: CampaignState, now: datetime, **fields):
    """Move `campaign` to `to` if it is in one of `allowed` (atomically); NotAllowed if not."""
    changed = (
        Campaign.update(state=to, updated_at=now, **fields)
        .where((Campaign.id == campaign.id) & Campaign.state.in_(list(allowed)))
        .execute()
    )
    if not changed:
        raise NotAllowed(f"a {campaign.state} campaign cannot become {to}")
    return Campaign.get_by_id(campaign.id)


def launch(campaign: Campaign, queues: dict[str, Queue], now: datetime) -> Campaign:
    """Start now, or at its scheduled time: the first batch job is queued for then."""
    campaign = transition(
        campaign, (CampaignState.DRAFT,), CampaignState.SCHEDULED, now, launched_at=now
    )
    schedule_batch(campaign, queues, max(first_send_time(campaign), now), now)
    return campaign


def pause(campaign: Campaign, now: datetime) -> Campaign:
    """No new batches, and the messages that wait (queued, or deferred by quiet hours or a
    cap) are held (deferred, `campaign_paused`) until resume; a message a sender holds at
    this moment may still go out. Allowed until the campaign is done."""
    with write_transaction():
        campaign = transition(campaign, STOPPABLE, CampaignState.PAUSED, now)
        Message.update(
            state=State.DEFERRED,
            reason=Reason.CAMPAIGN_PAUSED,
            next_attempt_at=HELD_UNTIL,
            updated_at=now,
        ).where((Message.campaign == campaign.id) & Message.state.in_(list(WAITING))).execute()
    return campaign


def resume(campaign: Campaign, queues: dict[str, Queue], now: datetime) -> Campaign:
    """Release the held messages (the send-time policy decides them afresh: quiet hours
    defer them again) and carry on with the batches."""
    with write_transaction():
        campaign = transition(campaign, (CampaignState.PAUSED,), CampaignState.SCHEDULED, now)
        released = (
            Message.update(state=State.QUEUED, reason=None, next_attempt_at=now, updated_at=now)
            .where(
                (Message.campaign == campaign.id)
                & (Message.state == State.DEFERRED)
                & (Message.reason == Reason.CAMPAIGN_PAUSED)
            )
            .execute()
        )
    if released:
        dispatch.kick(queues, QUEUE)
    schedule_batch(campaign, queues, max(first_send_time(campaign), now), now)
    return campaign


def cancel(campaign: Campaign, now: datetime) -> Campaign:
    """Stop for good, and suppress the campaign's messages that have not gone out yet
    (`cancelled`); allowed until the campaign is done."""
    with write_transaction():
        campaign = transition(
            campaign,
            (CampaignState.DRAFT, *STOPPABLE, CampaignState.PAUSED),
            CampaignState.CANCELLED,
            now,
            finished_at=now,
        )
        query = (
            Message.update(state=State.SUPPRESSED, reason=Reason.CANCELLED, updated_at=now)
            .where((Message.campaign == campaign.id) & Message.state.in_(list(WAITING)))
            .returning(*Message._meta.sorted_fields)
        )
        if cancelled := sorted(query.execute(), key=lambda m: m.id):
            changes = tuple(
                MessageStateChanged(m, State.SUPPRESSED, Reason.CANCELLED) for m in cancelled
            )
            publish(MessagesStateChanged(changes), now)
    return campaign


def schedule_batch(campaign: Campaign, queues: dict[str, Queue], at: datetime, now: datetime):
    if at <= now:
        queues[QUEUE].enqueue(RUN_JOB, campaign.id, result_ttl=0)
    else:
        queues[QUEUE].enqueue_at(at.replace(tzinfo=UTC), RUN_JOB, campaign.id, result_ttl=0)


# --- when ------------------------------------------------------------------------------


def send_time(campaign: Campaign, zone_name: str) -> datetime:
    """When the campaign goes to a customer in `zone_name` (naive UTC)."""
    schedule = campaign.schedule or {}
    if "at" in schedule:
        return datetime.fromisoformat(schedule["at"])
    if "local_time" in schedule:
        hour, minute = (int(part) for part in schedule["local_time"].split(":"))
        local = datetime.combine(date.fromisoformat(schedule["date"]), time(hour, minute))
        # The policy's own conversion: a wall time skipped by DST lands just after it.
        return policy.local_to_utc(local, policy.zone_for(zone_name))
    return campaign.launched_at


def first_send_time(campaign: Campaign) -> datetime:
    """The earliest moment any customer is due (local time: the easternmost zone)."""
    if "local_time" in (campaign.schedule or {}):
        return send_time(campaign, "Etc/GMT-14")
    return send_time(campaign, "UTC")


# --- batches -----------------------------------------------------------------------------


def untargeted(campaign: Campaign):
    """The segment's customers this campaign has no message for yet."""
    definition = dict(campaign.segment or {})
    if campaign.category == Category.MARKETING:
        definition["marketing_opt_in"] = True  # not even targeted without consent
    targeted = Message.select(Message.customer).where(
        (Message.campaign == campaign.id) & Message.customer.is_null(False)
    )
    return segments.segment_query(definition).where(Customer.id.not_in(targeted))


def run_batch(
    campaign_id: int,
    queues: dict[str, Queue],
    default_language: str,
    default_timezone: str,
    now: datetime,
    batch_size: int = BATCH_SIZE,
) -> dict:
    """Create and enqueue the next batch of messages that are due, then queue the next
    run (now, or when the next time zone's moment comes) or finish."""
    campaign = Campaign.get_or_none(Campaign.id == campaign_id)
    if campaign is not None and campaign.state == CampaignState.SENDING:
        return {"done": bool(finish_settled(now, [campaign_id]))}
    if campaign is None or campaign.state not in ACTIVE:
        return {"stopped": campaign.state if campaign else "missing"}
    zone = fn.COALESCE(Customer.timezone, default_timezone)
    zones = [row[0] for row in untargeted(campaign).select(zone).distinct().tuples()]
    due = {name: send_time(campaign, name) for name in zones}
    ready = [name for name, at in due.items() if at <= now]
    rows: list[dict] = []
    created: list[int] = []
    if ready:
        with write_transaction():
            # Touching the row locks it (PostgreSQL): a pause or cancel waits for this
            # batch to commit, and then holds or suppresses its rows too.
            touched = (
                Campaign.update(updated_at=now)
                .where((Campaign.id == campaign_id) & Campaign.state.in_(list(ACTIVE)))
                .execute()
            )
            campaign = Campaign.get_by_id(campaign_id)
            if not touched:  # paused while we looked
                return {"stopped": campaign.state}
            if campaign.state == CampaignState.SCHEDULED:
                campaign = transition(
                    campaign, (CampaignState.SCHEDULED,), CampaignState.RUNNING, now
                )
            customers = list(
                untargeted(campaign).where(zone.in_(ready)).order_by(Customer.id).limit(batch_size)
            )
            rows = plan_messages(campaign, customers, due, default_language, default_timezone, now)
            # Once per customer: a row a racing run of this batch created is left out.
            inserted = insert_messages(rows)
            created = [m.id for m in inserted if m.state == State.QUEUED]
            if born := [m for m in inserted if m.state == State.SUPPRESSED]:
                # Suppressed at birth (a missing parameter): one event for the batch.
                changes = tuple(MessageStateChanged(m, State.SUPPRESSED, m.reason) for m in born)
                publish(MessagesStateChanged(changes), now)
        dispatch.enqueue_sends(queues, [(message_id, QUEUE) for message_id in created])
        if len(customers) == batch_size:
            schedule_batch(campaign, queues, now, now)
            return {"created": len(rows), "enqueued": len(created), "more": True}
    later = [at for name, at in due.items() if at > now]
    if later:
        schedule_batch(campaign, queues, min(later), now)
    else:
        # Everyone is targeted: done once none of its messages can still be sent.
        Campaign.update(state=CampaignState.SENDING, updated_at=now).where(
            (Campaign.id == campaign_id) & Campaign.state.in_(list(ACTIVE))
        ).execute()
        finish_settled(now, [campaign_id])
    return {"created": len(rows), "enqueued": len(created), "more": bool(later)}


def finish_settled(now: datetime, campaign_ids: list[int] | None = None) -> int:
    """Mark `sending` campaigns (all, or those of `campaign_ids`) `done` when none of their
    messages is queued, deferred or being sent; how many became done.

    One conditional UPDATE, so any number of workers may run it at any time: the run job
    when it has targeted everyone, the send job after each drain of the campaign queue,
    and the sweeper (for the last messages settled by a receipt or an admin's cancel).
    """
    unsettled = Message.select(Message.id).where(
        (Message.campaign == Campaign.id) & Message.state.in_(list(UNSETTLED))
    )
    query = Campaign.update(state=CampaignState.DONE, finished_at=now, updated_at=now).where(
        (Campaign.state == CampaignState.SENDING) & ~fn.EXISTS(unsettled)
    )
    if campaign_ids is not None:
        query = query.where(Campaign.id.in_(campaign_ids))
    with write_transaction():
        return query.execute()


def plan_messages(
    campaign: Campaign,
    customers: list[Customer],
    due: dict[str, datetime],
    default_language: str,
    default_timezone: str,
    now: datetime,
) -> list[Message]:
    """One (unsaved) message row per customer: queued for its send time, or suppressed when a
    template parameter has no value (never sent with an empty or 'None' parameter).
    While an A/B test splits the campaign, each customer gets their variant's template,
    languages and parameters (`experiments.assign`, so a restart agrees)."""
    orders = orders_by_customer([c.id for c in customers])
    spec = base = TemplateSpec(
        kind=KIND,  # type: ignore[arg-type]  (a campaign is no order event)
        template=campaign.template,
        languages=tuple(campaign.languages),
        category=Category(campaign.category),
        body=tuple(campaign.params or ()),
    )
    experiment = campaign_experiment(campaign)
    rows = []
    for customer in customers:
        variant = None
        if experiment is not None:
            spec, variant = experiments.apply_variant(experiment, customer.id, base)
        language = choose_language(preferred_languages(customer), spec.languages, default_language)
        row = Message(
            campaign=campaign.id,
            customer=customer.id,
            phone=customer.phone,
            user_id=customer.user_id,
            dedupe_key=f"campaign:{campaign.id}:{customer.id}",
            kind=KIND,
            category=campaign.category,
            queue=QUEUE,
            template_name=spec.template,
            variant=variant,
            language=language,
            state=State.QUEUED,
            next_attempt_at=due[customer.timezone or default_timezone],
            created_at=now,
            updated_at=now,
        )
        locale = customer_locale(customer, None, default_language)  # amounts: theirs
        values = customer_values(customer, orders.get(customer.id, []), locale)
        try:
            row.params = render_params(spec, values, campaign.fallbacks or {})
        except MissingParameter as exc:
            row.state, row.reason = State.SUPPRESSED, Reason.MISSING_PARAMETER
            row.error_text = str(exc)
        if not segments.reachable(customer.phone, customer.user_id):  # as the preview counts
            row.state, row.reason = State.SUPPRESSED, Reason.INVALID_PHONE
        rows.append(row)
    return rows


def campaign_experiment(campaign: Campaign) -> Experiment | None:
    """The running (or rolled-out) A/B test that splits this campaign, if any."""
    return (
        Experiment.select()
        .where((Experiment.campaign_id == campaign.id) & Experiment.state.in_(experiments.LIVE))
        .order_by(Experiment.id)
        .first()
    )


def orders_by_customer(customer_ids: list[int]) -> dict[int, list[Order]]:
    """Each customer's orders, oldest first (one query per batch)."""
    found: dict[int, list[Order]] = defaultdict(list)
    if customer_ids:
        query = Order.select().where(Order.customer.in_(customer_ids))
        for order in query.order_by(Order.created_at, Order.id):
            found[order.customer_id].append(order)
    return found


def customer_values(customer: Customer, orders: list[Order], language: str) -> dict:
    """Every campaign parameter's value for `customer`, formatted for `language`."""
    if not orders:
        return {"customer_name": customer.name}
    first, last = orders[0], orders[-1]
    # Completed orders only, in the currency of the latest of them (never mixed).
    spent = [o for o in orders if o.total is not None and segments.is_completed(o)]
    currency = spent[-1].currency if spent else last.currency
    spend = sum((o.total for o in spent if o.currency == currency), Decimal(0))
    return {
        **order_values(last, customer, language),
        "first_order_number": first.number or first.external_id,
        "last_order_number": last.number or last.external_id,
        "total_spend": format_money(spend, currency, language),
    }


# --- progress ----------------------------------------------------------------------------


def progress(campaign: Campaign) -> dict:
    """The campaign's messages counted by state, and the suppressed ones by reason."""
    counts = (
        Message.select(Message.state, Message.reason, fn.COUNT(Message.id))
        .where(Message.campaign == campaign.id)
        .group_by(Message.state, Message.reason)
        .tuples()
    )
    by_state: dict[str, int] = defaultdict(int)
    suppressed: dict[str, int] = defaultdict(int)
    for state, reason, count in counts:
        by_state[state] += count
        if state == State.SUPPRESSED:
            suppressed[reason or ""] += count
    return {
        "targeted": sum(by_state.values()),
        "queued": sum(by_state[s] for s in (State.QUEUED, State.DEFERRED, State.SENDING)),
        "sent": sum(by_state[s] for s in (State.SENT, State.DELIVERED, State.READ)),
        "delivered": by_state[State.DELIVERED] + by_state[State.READ],
        "read": by_state[State.READ],
        "failed": by_state[State.FAILED],
        "suppressed": sum(suppressed.values()),
        "suppressed_by_reason": dict(suppressed),
        "by_state": dict(by_state),
    }
