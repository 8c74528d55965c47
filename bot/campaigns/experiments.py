"""A/B tests: which variant a customer gets, how each variant did, and when one has won.

Assignment and the statistics are pure functions over plain values; `variant_for` and
`results` are the two places that read the database.

Statistics (95%, z = 1.96, the textbook constant, so a worked example can be checked by
hand):

- rate p = hits / sent, where sent counts messages that reached `sent` or later;
- Wilson score interval: (p + z²/2n ± z·√(p(1-p)/n + z²/4n²)) / (1 + z²/n);
- two-proportion z-test against the best variant, with the pooled rate
  P = (h1 + h2) / (n1 + n2): Z = (p1 - p2) / √(P(1-P)(1/n1 + 1/n2)) and the two-sided
  p-value 2·(1 - Φ(|Z|)), Φ the standard normal CDF (`statistics.NormalDist`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from bisect import bisect_right
from collections import defaultdict
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import accumulate
from statistics import NormalDist

from bot.core.audit import audit
from bot.core.models import (
    ConversionEvent,
    Customer,
    Experiment,
    InboundMessage,
    Message,
    State,
    utcnow,
    write_transaction,
)
from bot.core.notifications import TemplateSpec

Z95 = 1.96
REPLY_WINDOW = timedelta(hours=24)
MAX_VARIANTS = 4
GOALS = ("read", "reply", "conversion")


class Phase(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    STOPPED = "stopped"
    ROLLED_OUT = "rolled_out"


#: Phases in which new messages use an experiment's templates.
LIVE = (Phase.RUNNING, Phase.ROLLED_OUT)


# --- assignment -------------------------------------------------------------------


def assign(
    experiment_id: int, customer_id: int, variants: list[dict], winner: str | None = None
) -> str:
    """The variant `customer_id` gets in this experiment: the winner once rolled out,
    else a point in [0, total weight) from sha256("experiment:customer"), looked up in
    the cumulative weights. The hash, not Python's salted `hash()`, so every process and
    every restart agrees.
    """
    if winner:
        return winner
    digest = hashlib.sha256(f"{experiment_id}:{customer_id}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    bounds = list(accumulate(v["weight"] for v in variants))
    return variants[bisect_right(bounds, fraction * bounds[-1])]["name"]


def variant_for(spec: TemplateSpec, customer_id: int | None) -> tuple[TemplateSpec, str | None]:
    """The notification map's `spec`, or the customer's variant of it when a live
    experiment applies to its event kind; and the variant's name (None without one)."""
    if customer_id is None:
        return spec, None
    experiment = (
        Experiment.select()
        .where((Experiment.event_kind == spec.kind) & Experiment.state.in_(LIVE))
        .order_by(Experiment.id)
        .first()
    )
    if experiment is None:
        return spec, None
    return apply_variant(experiment, customer_id, spec)


def apply_variant(
    experiment: Experiment, customer_id: int, spec: TemplateSpec
) -> tuple[TemplateSpec, str]:
    """`spec` as the customer's variant changes it (template, languages, body
    parameters; the spec's own where the variant sets none), and the variant's name."""
    name = assign(experiment.id, customer_id, experiment.variants, experiment.winner)
    variant = next(v for v in experiment.variants if v["name"] == name)
    changed = dataclasses.replace(
        spec,
        template=variant.get("template") or spec.template,
        languages=tuple(variant.get("languages") or spec.languages),
        body=tuple(variant["body"]) if "body" in variant else spec.body,
    )
    return changed, name


# --- statistics (pure) ------------------------------------------------------------


def wilson_interval(hits: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for hits / n; (0, 1) when nothing was sent."""
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_p_value(h1: int, n1: int, h2: int, n2: int) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test; None when it is undefined
    (no messages on one side, or every message or none hit the goal)."""
    if not n1 or not n2:
        return None
    pooled = (h1 + h2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if variance == 0:
        return None
    z = (h1 / n1 - h2 / n2) / math.sqrt(variance)
    return 2 * (1 - NormalDist().cdf(abs(z)))


def summarise(counts: dict[str, tuple[int, int]]) -> list[dict]:
    """Per variant (in the given order) {name, sent, goal_hits, rate, ci_low, ci_high,
    p_value, best}: `p_value` compares it with the best variant (None for the best)."""
    best = max(counts, key=lambda name: _rate(*reversed(counts[name])) or 0.0)
    rows = []
    for name, (sent, hits) in counts.items():
        low, high = wilson_interval(hits, sent)
        p_value = None if name == best else two_proportion_p_value(*counts[best][::-1], hits, sent)
        rows.append(
            {
                "name": name,
                "sent": sent,
                "goal_hits": hits,
                "rate": _rate(hits, sent),
                "ci_low": round(low, 4),
                "ci_high": round(high, 4),
                "p_value": None if p_value is None else round(p_value, 4),
                "best": name == best,
            }
        )
    return rows


def _rate(hits: int, sent: int) -> float | None:
    return round(hits / sent, 4) if sent else None


def decide_rollout(results: list[dict], alpha: float = 0.05, min_sample: int = 100) -> str | None:
    """The variant to roll out, or None while the test is undecided.

    The best variant wins when every variant has at least `min_sample` sent and the best
    beats each other variant with p < alpha / (k - 1): Bonferroni's correction, since
    with four variants the best is compared three times.
    """
    if len(results) < 2 or any(row["sent"] < min_sample for row in results):
        return None
    threshold = alpha / (len(results) - 1)
    best = next(row for row in results if row["best"])
    others = [row for row in results if not row["best"]]
    beaten = all(
        row["p_value"] is not None and row["p_value"] < threshold and row["rate"] < best["rate"]
        for row in others
    )
    return best["name"] if beaten else None


# --- roll-out (writes the database) ------------------------------------------------


def roll_out(
    experiment: Experiment,
    winner: str,
    actor: str,
    now: datetime,
    significant: str | None = None,
) -> Experiment | None:
    """Make `winner` everyone's variant from now on, audited as `actor` (with the
    significant winner, so an override of the statistics shows in the log); the updated
    experiment, or None when it is no longer running (someone else moved it first).

    A roll-out lasts until the experiment is stopped or its event's template is edited
    (`end_live`): then the notification map is in charge again."""
    with write_transaction():
        changed = (
            Experiment.update(state=Phase.ROLLED_OUT, winner=winner, updated_at=now)
            .where((Experiment.id == experiment.id) & (Experiment.state == Phase.RUNNING))
            .execute()
        )
        if not changed:
            return None
        details = {
            "before": Phase.RUNNING,
            "after": Phase.ROLLED_OUT,
            "winner": winner,
            "significant_winner": significant,
            "override": winner != significant,
        }
        audit(actor, "roll_out_experiment", str(experiment.id), details, now)
    return Experiment.get_by_id(experiment.id)


def end_live(event_kind: str, actor: str, now: datetime, reason: str) -> list[dict]:
    """Stop every live (running or rolled-out) experiment on the order event
    `event_kind`, audited as `actor` with `reason`: its messages go back to the
    notification map. [{id, name, state}] of those stopped, with the state they were in.
    Call it inside the transaction that changes the event's mapping."""
    live = Experiment.select().where(
        (Experiment.event_kind == event_kind) & Experiment.state.in_(LIVE)
    )
    ended = []
    for experiment in live.order_by(Experiment.id):
        Experiment.update(state=Phase.STOPPED, stopped_at=now, updated_at=now).where(
            Experiment.id == experiment.id
        ).execute()
        details = {"before": experiment.state, "after": Phase.STOPPED, "reason": reason}
        audit(actor, "stop_experiment", str(experiment.id), details, now)
        ended.append({"id": experiment.id, "name": experiment.name, "state": experiment.state})
    return ended


def check_rollouts(now: datetime | None = None) -> list[dict]:
    """Roll out the significant winner of every running auto-roll-out experiment;
    [{experiment, winner}] of those rolled out."""
    now = now or utcnow()
    rolled = []
    running = Experiment.select().where(
        (Experiment.state == Phase.RUNNING) & (Experiment.auto_rollout == True)  # noqa: E712
    )
    for experiment in running.order_by(Experiment.id):
        rows = results(experiment, now)
        winner = decide_rollout(rows, min_sample=experiment.min_sample)
        if winner and roll_out(experiment, winner, "system", now):
            rolled.append({"experiment": experiment.id, "winner": winner})
    return rolled


# --- conversions (writes the database) ----------------------------------------------


def record_conversion(
    customer: Customer,
    order_ref: str,
    occurred_at: datetime,
    source: str,
    actor: str,
    now: datetime,
) -> ConversionEvent:
    """Record an order the shop counts toward the "conversion" goal (`occurred_at` naive
    UTC). Idempotent per customer and order: the first record stands, and only it is
    audited, as `actor`."""
    with write_transaction():
        conversion, created = ConversionEvent.get_or_create(
            customer=customer,
            order_ref=order_ref,
            defaults={"occurred_at": occurred_at, "source": source, "created_at": now},
        )
        if created:
            details = {"after": {"order_ref": conversion.order_ref, "source": conversion.source}}
            audit(actor, "record_conversion", str(customer.id), details, now)
    return conversion


# --- results (reads the database) --------------------------------------------------


def results(experiment: Experiment, now: datetime | None = None) -> list[dict]:
    """`summarise` of the experiment's sent messages and their goal hits so far."""
    now = now or utcnow()
    sent = list(_sent_messages(experiment, now))
    hits = _goal_hits(experiment, sent)
    counts = {v["name"]: [0, 0] for v in experiment.variants}
    for message_id, _, variant, _ in sent:
        if variant in counts:
            counts[variant][0] += 1
            counts[variant][1] += message_id in hits
    return summarise({name: (n, h) for name, (n, h) in counts.items()})


def _sent_messages(experiment: Experiment, now: datetime):
    """(id, customer, variant, sent_at) of the messages sent while it was live.

    Message.variant holds only the variant's name, so an order experiment's messages are
    those of its event kind created between its start and its stop."""
    if experiment.started_at is None:
        return []
    where = (
        Message.variant.is_null(False)
        & Message.sent_at.is_null(False)
        & (Message.created_at >= experiment.started_at)
        & (Message.created_at <= (experiment.stopped_at or now))
    )
    if experiment.event_kind:
        where &= Message.kind == experiment.event_kind
    campaign = Message._meta.fields.get("campaign")  # added by the campaigns migration
    if experiment.campaign_id is not None and campaign is not None:
        where &= campaign == experiment.campaign_id
    columns = (Message.id, Message.customer, Message.variant, Message.sent_at)
    return list(Message.select(*columns).where(where).tuples())


def _goal_hits(experiment: Experiment, sent: list[tuple]) -> set[int]:
    """The ids of the `sent` messages that reached the experiment's goal."""
    if not sent:
        return set()
    ids = [row[0] for row in sent]
    if experiment.goal == "read":
        read = Message.select(Message.id).where(
            Message.id.in_(ids) & (Message.read_at.is_null(False) | (Message.state == State.READ))
        )
        return {m.id for m in read}
    if experiment.goal == "reply":
        model, moment, window = InboundMessage, InboundMessage.occurred_at, REPLY_WINDOW
    else:
        model, moment = ConversionEvent, ConversionEvent.occurred_at
        window = timedelta(days=experiment.conversion_days)
    customers = {row[1] for row in sent if row[1] is not None}
    moments: dict[int, list[datetime]] = defaultdict(list)
    query = model.select(model.customer, moment).where(model.customer.in_(list(customers)))
    for customer, at in query.tuples():
        moments[customer].append(at)
    return {
        message_id
        for message_id, customer, _, sent_at in sent
        if any(sent_at <= at <= sent_at + window for at in moments.get(customer, ()))
    }
