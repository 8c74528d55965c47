"""A/B tests: stable assignment, the statistics against a worked example, order updates
sent with the customer's variant, the roll-out decision and the admin API."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta

import pytest

from bot.campaigns import experiments
from bot.core.models import AuditLog, ConversionEvent, Customer, Experiment, Message, State, utcnow
from jobs.experiments import check_rollouts
from tests.conftest import ADMIN, VIEWER, basic_auth
from tests.factories import queued_message

VARIANTS = [
    {"name": "A", "weight": 50, "template": "order_shipped"},
    {"name": "B", "weight": 30, "template": "order_shipped_v2", "body": ["order_number"]},
    {"name": "C", "weight": 20, "template": "order_shipped_v3", "languages": ["en"]},
]


def new_experiment(**fields) -> Experiment:
    values = {
        "name": "shipped copy",
        "event_kind": "shipped",
        "variants": VARIANTS,
        "goal": "read",
        "state": "running",
        "started_at": utcnow() - timedelta(hours=1),
        **fields,
    }
    return Experiment.create(**values)


# --- assignment ----------------------------------------------------------------------


def test_assignment_is_the_same_on_every_call_and_in_another_process():
    here = [experiments.assign(7, customer, VARIANTS) for customer in range(1, 201)]
    assert here == [experiments.assign(7, customer, VARIANTS) for customer in range(1, 201)]
    script = (
        "import json, sys; from bot.campaigns.experiments import assign; "
        "v = json.loads(sys.argv[1]); print(json.dumps([assign(7, c, v) for c in range(1, 201)]))"
    )
    other = subprocess.run(
        [sys.executable, "-c", script, json.dumps(VARIANTS)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(other.stdout) == here


def test_assignment_follows_the_weights_over_ten_thousand_customers():
    counts = Counter(experiments.assign(3, customer, VARIANTS) for customer in range(10_000))
    # sha256 is fixed, so these counts are too; 1.5 points is about 3 standard errors.
    for variant in VARIANTS:
        assert abs(counts[variant["name"]] / 10_000 - variant["weight"] / 100) < 0.015


def test_a_rolled_out_winner_is_everyones_variant():
    assert {experiments.assign(3, c, VARIANTS, winner="C") for c in range(100)} == {"C"}


# --- statistics ----------------------------------------------------------------------


def test_the_statistics_match_the_worked_example():
    """A: 200 sent, 60 read (p = 0.30); B: 200 sent, 84 read (p = 0.42); z = 1.96.

    Wilson, z² = 3.8416, z²/n = 0.019208, denominator 1 + z²/n = 1.019208,
    z²/4n² = 3.8416 / 160000 = 0.00002401:

    A: centre = (0.30 + 0.009604) / 1.019208 = 0.303769
       half   = 1.96 · √(0.30·0.70/200 + 0.00002401) / 1.019208
              = 1.96 · √0.00107401 / 1.019208 = 1.96 · 0.0327721 / 1.019208 = 0.0630228
       interval 0.2407 .. 0.3668
    B: centre = (0.42 + 0.009604) / 1.019208 = 0.421508
       half   = 1.96 · √(0.42·0.58/200 + 0.00002401) / 1.019208
              = 1.96 · √0.00124201 / 1.019208 = 1.96 · 0.0352422 / 1.019208 = 0.0677729
       interval 0.3537 .. 0.4893

    z-test: pooled P = 144/400 = 0.36; SE = √(0.36 · 0.64 · (1/200 + 1/200)) = √0.002304
    = 0.048; Z = (0.42 - 0.30) / 0.048 = 2.5; Φ(2.5) = 0.99379033;
    p = 2 · (1 - 0.99379033) = 0.012419 -> 0.0124.
    """
    a, b = experiments.summarise({"A": (200, 60), "B": (200, 84)})
    assert (a["rate"], a["ci_low"], a["ci_high"]) == (0.3, 0.2407, 0.3668)
    assert (b["rate"], b["ci_low"], b["ci_high"]) == (0.42, 0.3537, 0.4893)
    assert b["best"] and b["p_value"] is None
    assert a["p_value"] == 0.0124
    assert round(experiments.two_proportion_p_value(84, 200, 60, 200), 6) == 0.012419


@pytest.mark.parametrize(
    ("counts", "min_sample", "winner"),
    [
        ({"A": (200, 60), "B": (200, 84)}, 100, "B"),  # p = 0.0124 < 0.05
        ({"A": (200, 60), "B": (200, 84)}, 250, None),  # too few sent yet
        ({"A": (200, 60), "B": (200, 70)}, 100, None),  # not significant
        # three variants: B vs A p = 0.0124 but Bonferroni asks p < 0.025 of each
        ({"A": (200, 60), "B": (200, 84), "C": (200, 75)}, 100, None),
        ({"A": (200, 60), "B": (200, 84), "C": (200, 50)}, 100, "B"),
    ],
)
def test_rollout_decision(counts, min_sample, winner):
    results = experiments.summarise(counts)
    assert experiments.decide_rollout(results, min_sample=min_sample) == winner


def test_nothing_sent_gives_no_rate_and_no_decision():
    results = experiments.summarise({"A": (0, 0), "B": (0, 0)})
    assert [r["rate"] for r in results] == [None, None]
    assert experiments.decide_rollout(results, min_sample=1) is None


# --- order updates -------------------------------------------------------------------


def test_an_order_update_in_a_running_experiment_uses_the_customers_variant(app):
    experiment = new_experiment()
    message = queued_message()
    expected = experiments.assign(experiment.id, message.customer_id, VARIANTS)
    variant = next(v for v in VARIANTS if v["name"] == expected)
    assert message.variant == expected
    assert message.template_name == variant["template"]
    if "body" in variant:
        assert message.params["body"] == ["#1042"]


def test_after_roll_out_everyone_gets_the_winners_template(app):
    new_experiment(state="rolled_out", winner="B")
    message = queued_message()
    assert (message.variant, message.template_name) == ("B", "order_shipped_v2")
    assert message.params["body"] == ["#1042"]


def test_a_stopped_experiment_leaves_the_notification_map_in_charge(app):
    new_experiment(state="stopped")
    message = queued_message()
    assert (message.variant, message.template_name) == (None, "order_shipped")


def test_results_count_reads_and_conversions_per_variant(app):
    experiment = new_experiment(variants=VARIANTS[:2])
    now = utcnow()
    for number in range(4):
        customer = Customer.create(phone=f"+91981234500{number}")
        Message.create(
            customer=customer,
            phone=customer.phone,
            dedupe_key=f"m{number}",
            kind="shipped",
            variant="AB"[number % 2],
            state=State.READ if number < 2 else State.DELIVERED,
            sent_at=now,
            read_at=now if number < 2 else None,
            created_at=now,
        )
        if number == 3:
            ConversionEvent.create(
                customer=customer, order_ref="9", occurred_at=now + timedelta(days=2), source="t"
            )
    rows = experiments.results(experiment)
    assert [(r["name"], r["sent"], r["goal_hits"]) for r in rows] == [("A", 2, 1), ("B", 2, 1)]
    experiment.goal = "conversion"
    rows = experiments.results(experiment)
    assert [(r["name"], r["goal_hits"]) for r in rows] == [("A", 0), ("B", 1)]


# --- admin API -----------------------------------------------------------------------

BODY = {
    "name": "shipped copy",
    "event_kind": "shipped",
    "goal": "read",
    "variants": [
        {"name": "A", "weight": 50, "template": "order_shipped"},
        {"name": "B", "weight": 50, "template": "order_shipped_v2"},
    ],
}


def test_admin_creates_starts_shows_and_rolls_out_an_experiment(client):
    created = client.post("/admin/api/experiments", json=BODY, headers=ADMIN)
    assert created.status_code == 201, created.json
    path = f"/admin/api/experiments/{created.json['id']}"
    assert client.post(f"{path}/start", headers=ADMIN).json["state"] == "running"
    shown = client.get(path, headers=ADMIN).json
    assert [r["name"] for r in shown["results"]] == ["A", "B"]
    assert shown["significant_winner"] is None
    undecided = client.post(f"{path}/rollout", json={}, headers=ADMIN)
    assert undecided.status_code == 409
    rolled = client.post(f"{path}/rollout", json={"winner": "B", "override": True}, headers=ADMIN)
    assert (rolled.json["state"], rolled.json["winner"]) == ("rolled_out", "B")
    listed = client.get("/admin/api/experiments", headers=ADMIN).json["items"]
    assert [e["name"] for e in listed] == ["shipped copy"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"variants": BODY["variants"][:1]}, "variants"),
        ({"variants": [{**BODY["variants"][0], "weight": 0}] * 2}, "variants.0.weight"),
        ({"goal": "clicks"}, "goal"),
        ({"event_kind": "teleported"}, "event_kind"),
        ({"campaign_id": 3}, "event_kind"),  # both targets given
    ],
)
def test_an_invalid_experiment_is_rejected(client, change, field):
    answer = client.post("/admin/api/experiments", json={**BODY, **change}, headers=ADMIN)
    assert answer.status_code == 400
    assert field in answer.json["error"]["fields"]


def test_experiments_need_credentials_and_changes_need_the_admin_role(client):
    assert client.get("/admin/api/experiments").status_code == 401
    wrong = basic_auth("admin", "wrong")
    assert client.get("/admin/api/experiments", headers=wrong).status_code == 401
    assert client.post("/admin/api/experiments", json=BODY, headers=VIEWER).status_code == 403


def test_a_shop_conversion_is_recorded_once(client):
    customer = Customer.create(phone="+919812345678")
    body = {"phone": "+919812345678", "order_id": "1043", "occurred_at": "2025-01-02T10:00:00Z"}
    first = client.post("/admin/api/conversions", json=body, headers=ADMIN)
    again = client.post("/admin/api/conversions", json=body, headers=ADMIN)
    assert first.status_code == again.status_code == 201
    assert first.json["id"] == again.json["id"]
    assert first.json["customer_id"] == customer.id
    unknown = client.post(
        "/admin/api/conversions", json={**body, "phone": "+919800000000"}, headers=ADMIN
    )
    assert unknown.status_code == 400


def test_a_conversion_is_recorded_once_per_customer_and_order_and_audited_once(app):
    customer = Customer.create(phone="+919812345678")
    at = datetime(2025, 1, 2, 10, 0)
    first = experiments.record_conversion(customer, "1043", at, "shop", "admin", utcnow())
    later = at + timedelta(hours=1)
    again = experiments.record_conversion(customer, "1043", later, "crm", "crm", utcnow())
    assert again.id == first.id
    assert (again.occurred_at, again.source) == (at, "shop")  # the first record stands
    [entry] = AuditLog.select().where(AuditLog.action == "record_conversion")
    assert (entry.actor, entry.subject) == ("admin", str(customer.id))


# --- automatic roll-out --------------------------------------------------------------


def seed_reads(reads: dict[str, tuple[int, int]]) -> None:
    """Sent "shipped" messages per variant: {variant: (sent, read)}."""
    now = utcnow()
    for variant, (sent, read) in reads.items():
        for n in range(sent):
            customer = Customer.create(phone=f"+9198{ord(variant):03d}{n:05d}")
            Message.create(
                customer=customer,
                phone=customer.phone,
                dedupe_key=f"auto:{variant}:{n}",
                kind="shipped",
                variant=variant,
                state=State.READ if n < read else State.DELIVERED,
                sent_at=now,
                read_at=now if n < read else None,
                created_at=now,
            )


def test_auto_rollout_waits_for_a_significant_winner(app):
    experiment = new_experiment(variants=VARIANTS[:2], auto_rollout=True, min_sample=20)
    seed_reads({"A": (30, 10), "B": (30, 11)})
    assert check_rollouts() == []
    experiment = Experiment.get_by_id(experiment.id)
    assert (experiment.state, experiment.winner) == ("running", None)
    assert not AuditLog.select().where(AuditLog.action == "roll_out_experiment").exists()


def test_auto_rollout_rolls_out_a_significant_winner_once(app):
    experiment = new_experiment(variants=VARIANTS[:2], auto_rollout=True, min_sample=20)
    manual = new_experiment(name="manual", event_kind="placed", variants=VARIANTS[:2])
    seed_reads({"A": (30, 5), "B": (30, 25)})
    assert check_rollouts() == [{"experiment": experiment.id, "winner": "B"}]
    experiment = Experiment.get_by_id(experiment.id)
    assert (experiment.state, experiment.winner) == ("rolled_out", "B")
    assert Experiment.get_by_id(manual.id).state == "running"  # no auto_rollout
    assert check_rollouts() == []  # a second run does nothing
    audits = list(AuditLog.select().where(AuditLog.action == "roll_out_experiment"))
    assert [(a.actor, a.subject, a.details["winner"]) for a in audits] == [
        ("system", str(experiment.id), "B")
    ]
    assert queued_message().template_name == "order_shipped_v2"


# --- roll-outs end, and give way to the template map ----------------------------------


def test_a_roll_out_ends_with_stop_and_the_map_is_in_charge_again(client):
    experiment = new_experiment(state="rolled_out", winner="B")
    assert queued_message(event_id="before", order_id="1").template_name == "order_shipped_v2"
    stopped = client.post(f"/admin/api/experiments/{experiment.id}/stop", headers=ADMIN)
    assert stopped.status_code == 200, stopped.json
    assert (stopped.json["state"], stopped.json["winner"]) == ("stopped", "B")
    message = queued_message(event_id="after", order_id="2")
    assert (message.variant, message.template_name) == (None, "order_shipped")
    again = client.post("/admin/api/experiments", json={**BODY, "name": "round 2"}, headers=ADMIN)
    started = client.post(f"/admin/api/experiments/{again.json['id']}/start", headers=ADMIN)
    assert started.status_code == 200, started.json


def test_another_live_experiment_is_named_when_a_start_is_refused(client):
    live = new_experiment(state="rolled_out", winner="B")
    again = client.post("/admin/api/experiments", json={**BODY, "name": "round 2"}, headers=ADMIN)
    refused = client.post(f"/admin/api/experiments/{again.json['id']}/start", headers=ADMIN)
    assert refused.status_code == 409
    message = refused.json["error"]["message"]
    assert f"{live.id} ('shipped copy', rolled_out)" in message and "stop it first" in message


def test_a_template_edit_wins_over_a_rolled_out_experiment(client):
    experiment = new_experiment(state="rolled_out", winner="B")
    edit = {"template": "order_shipped_v9", "languages": ["en"], "body": ["order_number"]}
    response = client.put("/admin/api/templates/shipped", json=edit, headers=ADMIN)
    assert response.status_code == 200, response.json
    assert response.json["ended_experiments"] == [
        {"id": experiment.id, "name": "shipped copy", "state": "rolled_out"}
    ]
    message = queued_message()
    assert (message.variant, message.template_name) == (None, "order_shipped_v9")
    assert Experiment.get_by_id(experiment.id).state == "stopped"
    [stop] = AuditLog.select().where(AuditLog.action == "stop_experiment")
    assert (stop.subject, stop.details["reason"]) == (str(experiment.id), "template_edit")


def test_a_template_edit_stops_a_running_experiment_on_that_event_only(client):
    shipped = new_experiment()
    placed = new_experiment(name="placed copy", event_kind="placed")
    edit = {"template": "order_shipped_v9", "languages": ["en"], "body": ["order_number"]}
    response = client.put("/admin/api/templates/shipped", json=edit, headers=ADMIN)
    assert [e["id"] for e in response.json["ended_experiments"]] == [shipped.id]
    assert Experiment.get_by_id(placed.id).state == "running"
    assert queued_message().template_name == "order_shipped_v9"


def test_rolling_out_a_variant_that_has_not_won_needs_an_override(client):
    experiment = new_experiment(variants=VARIANTS[:2], min_sample=20)
    seed_reads({"A": (30, 5), "B": (30, 25)})
    path = f"/admin/api/experiments/{experiment.id}/rollout"
    refused = client.post(path, json={"winner": "A"}, headers=ADMIN)
    assert refused.status_code == 409
    assert refused.json["error"]["code"] == "not_the_winner"
    assert "'B' won" in refused.json["error"]["message"]
    assert Experiment.get_by_id(experiment.id).state == "running"
    forced = client.post(path, json={"winner": "A", "override": True}, headers=ADMIN)
    assert (forced.json["state"], forced.json["winner"]) == ("rolled_out", "A")
    [rollout] = AuditLog.select().where(AuditLog.action == "roll_out_experiment")
    assert rollout.details["override"] is True and rollout.details["significant_winner"] == "B"


def test_the_significant_winner_rolls_out_without_an_override(client):
    experiment = new_experiment(variants=VARIANTS[:2], min_sample=20)
    seed_reads({"A": (30, 5), "B": (30, 25)})
    path = f"/admin/api/experiments/{experiment.id}/rollout"
    named = client.post(path, json={"winner": "B"}, headers=ADMIN)
    assert (named.status_code, named.json["winner"]) == (200, "B")
    [rollout] = AuditLog.select().where(AuditLog.action == "roll_out_experiment")
    assert rollout.details["override"] is False


def test_naming_a_variant_while_none_has_won_needs_an_override(client):
    experiment = new_experiment(variants=VARIANTS[:2])
    path = f"/admin/api/experiments/{experiment.id}/rollout"
    refused = client.post(path, json={"winner": "B"}, headers=ADMIN)
    assert (refused.status_code, refused.json["error"]["code"]) == (409, "not_the_winner")
    assert "no variant has won significantly" in refused.json["error"]["message"]
