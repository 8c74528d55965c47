"""Campaigns: segments, scheduling (one moment, or each customer's local time), batches
through the outbox and the send-time policy, pause/resume/cancel, personalization and the
admin API."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from bot.campaigns import campaigns, experiments, segments
from bot.core.models import (
    Campaign,
    Customer,
    Experiment,
    InboundMessage,
    Message,
    Order,
    Reason,
    State,
    utcnow,
)
from bot.extensions import services
from tests.conftest import ADMIN, VIEWER

KOLKATA = "+919812345678"
MUMBAI = "+919812345679"
DELHI = "+919812345670"
NEW_YORK = "+12125550123"
DELIVERED_OR_SENT = {State.SENT, State.DELIVERED, State.READ}


@pytest.fixture
def daytime(time_machine):
    """11:30 in Kolkata: outside marketing quiet hours, time frozen."""
    time_machine.move_to(datetime(2030, 1, 10, 6, 0), tick=False)


def customer(phone: str = KOLKATA, **fields) -> Customer:
    fields.setdefault("timezone", "Asia/Kolkata")
    fields.setdefault("marketing_opt_in", True)
    fields.setdefault("name", "Asha")
    return Customer.create(phone=phone, **fields)


def draft(**fields) -> Campaign:
    fields.setdefault("name", "Diwali")
    fields.setdefault("template", "diwali_sale")
    fields.setdefault("languages", ["en"])
    fields.setdefault("params", ["customer_name"])
    return Campaign.create(created_by="tests", **fields)


def run_batch(campaign: Campaign, batch_size: int = 500) -> dict:
    return campaigns.run_batch(
        campaign.id, services().queues, "en", "Asia/Kolkata", utcnow(), batch_size
    )


def messages(campaign: Campaign) -> list[Message]:
    return list(Message.select().where(Message.campaign == campaign.id).order_by(Message.id))


# --- segments ------------------------------------------------------------------------


def test_segment_filters_by_tags_language_country_orders_and_replies(app):
    asha = customer(KOLKATA, tags=["vip"], language="hi")
    customer(MUMBAI, tags=["new"], language="en")
    bob = customer(NEW_YORK, tags=["vip"], language="en", timezone="America/New_York")
    customer(DELHI, tags=["vip"], opted_out=True)
    Order.create(source="generic", external_id="1", customer=asha, total=Decimal("1500"))
    Order.create(source="generic", external_id="2", customer=asha, total=Decimal("700"))
    InboundMessage.create(
        provider="sandbox",
        provider_message_id="in-1",
        phone=bob.phone,
        customer=bob,
        type="text",
        occurred_at=utcnow(),
    )

    def ids(definition: dict) -> set[int]:
        return {c.id for c in segments.segment_query(definition)}

    assert ids({"tags_any": ["vip"]}) == {asha.id, bob.id}  # never the opted-out one
    assert ids({"languages": ["hi"]}) == {asha.id}
    assert ids({"countries": ["US"]}) == {bob.id}
    assert ids({"min_orders": 2, "min_spend": "2000"}) == {asha.id}
    assert ids({"min_spend": "5000"}) == set()
    assert ids({"last_order_after": utcnow().date().isoformat()}) == {asha.id}
    assert ids({"has_replied": True}) == {bob.id}
    assert ids({"has_replied": False, "countries": ["IN"]}) == {asha.id, asha.id + 1}
    assert segments.preview({"tags_any": ["vip", "new"]})["count"] == 3


def test_a_segment_with_an_unknown_key_is_refused(app):
    from marshmallow import ValidationError

    with pytest.raises(ValidationError):
        segments.preview({"tag": ["vip"]})


# --- scheduling ----------------------------------------------------------------------


def test_a_scheduled_campaign_fires_exactly_at_its_time(client, run_jobs, time_machine):
    at = datetime(2030, 1, 10, 6, 0)  # 11:30 in Kolkata: outside quiet hours
    time_machine.move_to(at - timedelta(hours=1), tick=False)
    customer()
    created = client.post(
        "/admin/api/campaigns",
        json={
            "name": "Sale",
            "template": "diwali_sale",
            "languages": ["en"],
            "params": ["customer_name"],
            "schedule": {"at": "2030-01-10T06:00:00Z"},
        },
        headers=ADMIN,
    )
    assert created.status_code == 201, created.json
    campaign_id = created.json["id"]
    launched = client.post(f"/admin/api/campaigns/{campaign_id}/launch", headers=ADMIN)
    assert launched.json["state"] == "scheduled"

    time_machine.move_to(at - timedelta(seconds=1), tick=False)
    run_jobs()
    assert Message.select().count() == 0  # nothing created, nothing enqueued before

    time_machine.move_to(at, tick=False)
    run_jobs()
    (message,) = Message.select()
    assert message.sent_at == at and message.state in DELIVERED_OR_SENT
    assert message.params["body"] == ["Asha"] and message.queue == "campaigns"
    shown = client.get(f"/admin/api/campaigns/{campaign_id}", headers=ADMIN).json
    assert shown["state"] == "done" and shown["progress"]["sent"] == 1


def test_a_local_time_campaign_reaches_each_customer_at_their_own_hour(app, run_jobs, time_machine):
    time_machine.move_to(datetime(2030, 1, 10, 0, 0), tick=False)
    india = customer(KOLKATA)
    usa = customer(NEW_YORK, timezone="America/New_York")
    campaign = draft(schedule={"local_time": "10:00", "date": "2030-01-10"})
    campaigns.launch(campaign, services().queues, utcnow())
    run_jobs()
    assert Message.select().count() == 0

    time_machine.move_to(datetime(2030, 1, 10, 4, 29), tick=False)
    run_jobs()
    assert Message.select().count() == 0
    time_machine.move_to(datetime(2030, 1, 10, 4, 30), tick=False)  # 10:00 in Kolkata
    run_jobs()
    (first,) = messages(campaign)
    assert first.customer_id == india.id and first.sent_at == datetime(2030, 1, 10, 4, 30)
    assert first.state in DELIVERED_OR_SENT

    time_machine.move_to(datetime(2030, 1, 10, 15, 0), tick=False)  # 10:00 in New York (EST)
    run_jobs()
    second = messages(campaign)[1]
    assert second.customer_id == usa.id and second.sent_at == datetime(2030, 1, 10, 15)
    assert second.state in DELIVERED_OR_SENT
    assert Campaign.get_by_id(campaign.id).state == "done"


# --- batches, restarts, pause and cancel ---------------------------------------------


def test_a_restarted_batch_creates_no_duplicates_and_sends_each_customer_once(
    app, run_jobs, daytime
):
    for phone in (KOLKATA, MUMBAI, DELHI):
        customer(phone)
    campaign = draft()
    campaigns.launch(campaign, services().queues, utcnow())
    run_batch(campaign)
    run_batch(campaign)  # a restart, or a second copy of the job
    run_jobs()
    rows = messages(campaign)
    assert len(rows) == 3 and len({m.customer_id for m in rows}) == 3
    assert all(m.state in DELIVERED_OR_SENT for m in rows)
    assert {m.dedupe_key for m in rows} == {f"campaign:{campaign.id}:{m.customer_id}" for m in rows}


def test_pause_between_batches_stops_new_messages_and_resume_carries_on(app):
    for phone in (KOLKATA, MUMBAI, DELHI):
        customer(phone)
    campaign = draft()
    campaigns.launch(campaign, services().queues, utcnow())
    run_batch(campaign, batch_size=1)
    campaigns.pause(Campaign.get_by_id(campaign.id), utcnow())
    assert run_batch(campaign, batch_size=1) == {"stopped": "paused"}
    assert len(messages(campaign)) == 1

    campaigns.resume(Campaign.get_by_id(campaign.id), services().queues, utcnow())
    for _ in range(3):
        run_batch(campaign, batch_size=1)
    assert len(messages(campaign)) == 3
    # Everyone targeted, but their messages are still queued: not done yet.
    assert Campaign.get_by_id(campaign.id).state == "sending"


def test_cancel_suppresses_the_queued_messages(app, run_jobs):
    customer(KOLKATA)
    customer(MUMBAI)
    campaign = draft()
    campaigns.launch(campaign, services().queues, utcnow())
    run_batch(campaign, batch_size=1)
    campaigns.cancel(Campaign.get_by_id(campaign.id), utcnow())
    run_jobs()
    (message,) = messages(campaign)
    assert (message.state, message.reason) == (State.SUPPRESSED, Reason.CANCELLED)
    assert campaigns.progress(campaign)["suppressed_by_reason"] == {"cancelled": 1}


# --- policy and personalization ------------------------------------------------------


def test_marketing_targets_only_opted_in_customers(app, run_jobs, daytime):
    opted_in = customer(KOLKATA)
    customer(MUMBAI, marketing_opt_in=False)
    customer(DELHI, opted_out=True)
    campaign = draft()
    campaigns.launch(campaign, services().queues, utcnow())
    run_jobs()
    assert [m.customer_id for m in messages(campaign)] == [opted_in.id]


def test_quiet_hours_still_defer_campaign_messages(app, run_jobs, time_machine):
    time_machine.move_to(datetime(2030, 1, 10, 17, 0), tick=False)  # 22:30 in Kolkata
    customer()
    campaign = draft()
    campaigns.launch(campaign, services().queues, utcnow())
    run_jobs()
    (message,) = messages(campaign)
    assert (message.state, message.reason) == (State.DEFERRED, Reason.QUIET_HOURS)


def test_a_missing_parameter_suppresses_the_message_with_a_reason(app, run_jobs, daytime):
    nameless = customer(KOLKATA, name=None)
    customer(MUMBAI, name=None)
    buyer = customer(DELHI)
    Order.create(
        source="generic", external_id="9", number="#9", customer=buyer, total=1299, currency="INR"
    )
    campaign = draft(params=["customer_name", "total_spend"], fallbacks={})
    campaigns.launch(campaign, services().queues, utcnow())
    run_jobs()
    rows = {m.customer_id: m for m in messages(campaign)}
    assert (rows[nameless.id].state, rows[nameless.id].reason) == (
        State.SUPPRESSED,
        Reason.MISSING_PARAMETER,
    )
    assert rows[buyer.id].params["body"] == ["Asha", "₹1,299.00"]
    assert campaigns.progress(campaign)["suppressed_by_reason"] == {"missing_parameter": 2}


def test_a_fallback_fills_a_missing_customer_name(app, run_jobs, daytime):
    customer(name=None)
    campaign = draft(fallbacks={"customer_name": "there"})
    campaigns.launch(campaign, services().queues, utcnow())
    run_jobs()
    (message,) = messages(campaign)
    assert message.params["body"] == ["there"] and message.state in DELIVERED_OR_SENT


# --- admin API -----------------------------------------------------------------------


def test_segment_preview_counts_and_refuses_unknown_keys(client):
    customer(KOLKATA, tags=["vip"])
    customer(MUMBAI)
    answer = client.post("/admin/api/segments/preview", json={"tags_any": ["vip"]}, headers=ADMIN)
    assert answer.status_code == 200 and answer.json["count"] == 1
    bad = client.post("/admin/api/segments/preview", json={"tag": "vip"}, headers=ADMIN)
    assert bad.status_code == 400


def test_campaign_endpoints_validate_and_need_the_admin_role(client):
    body = {"name": "Sale", "template": "diwali_sale", "languages": ["en"]}
    assert client.post("/admin/api/campaigns", json=body, headers=VIEWER).status_code == 403
    assert client.post("/admin/api/campaigns", json=body).status_code == 401
    bad = {**body, "params": ["password"], "schedule": {"local_time": "25:00"}}
    refused = client.post("/admin/api/campaigns", json=bad, headers=ADMIN)
    assert refused.status_code == 400
    created = client.post("/admin/api/campaigns", json=body, headers=ADMIN).json
    path = f"/admin/api/campaigns/{created['id']}"
    assert client.post(f"{path}/pause", headers=ADMIN).status_code == 409  # still a draft
    assert client.post(f"{path}/cancel", headers=VIEWER).status_code == 403
    assert client.post(f"{path}/cancel", headers=ADMIN).json["state"] == "cancelled"
    listed = client.get("/admin/api/campaigns?state=cancelled", headers=VIEWER).json
    assert [c["id"] for c in listed["items"]] == [created["id"]]


# --- A/B tests -------------------------------------------------------------------------


def test_a_campaign_experiment_splits_customers_stably_across_a_restart(app, daytime):
    for n in range(20):
        customer(f"+91981234{n:04d}")
    campaign = draft()
    experiment = Experiment.create(
        name="diwali copy",
        campaign_id=campaign.id,
        goal="read",
        state="running",
        started_at=utcnow(),
        variants=[
            {"name": "A", "weight": 50},
            {"name": "B", "weight": 50, "template": "diwali_sale_v2", "body": []},
        ],
    )
    campaigns.launch(campaign, services().queues, utcnow())
    run_batch(campaign, batch_size=7)
    run_batch(campaign, batch_size=7)  # the worker restarts mid-campaign
    run_batch(campaign, batch_size=7)
    rows = messages(campaign)
    assert len(rows) == 20 and {m.variant for m in rows} == {"A", "B"}
    for m in rows:
        expected = experiments.assign(experiment.id, m.customer_id, experiment.variants)
        assert m.variant == expected
        if m.variant == "A":
            assert (m.template_name, m.params["body"]) == ("diwali_sale", ["Asha"])
        else:
            assert (m.template_name, m.params["body"]) == ("diwali_sale_v2", [])


@pytest.mark.parametrize(
    ("schedule", "stored"),
    [
        (None, None),
        ({"at": datetime(2030, 1, 10, 6, 0)}, {"at": "2030-01-10T06:00:00"}),
        (
            {"local_time": "10:00", "date": date(2030, 1, 10)},
            {"local_time": "10:00", "date": "2030-01-10"},
        ),
    ],
)
def test_a_campaign_keeps_its_schedule_as_json(schedule, stored):
    assert campaigns.stored_schedule(schedule) == stored


# --- done only when nothing of it can still be sent (issue 17, item 2) -------------------


@pytest.fixture
def quiet_night(time_machine):
    """22:30 in Kolkata: marketing waits for the end of quiet hours, time frozen."""
    time_machine.move_to(datetime(2030, 1, 10, 17, 0), tick=False)


def launch_via_api(client, run_jobs) -> int:
    created = client.post(
        "/admin/api/campaigns",
        json={"name": "Night", "template": "diwali_sale", "languages": ["en"]},
        headers=ADMIN,
    ).json
    client.post(f"/admin/api/campaigns/{created['id']}/launch", headers=ADMIN)
    run_jobs()
    return created["id"]


def test_a_campaign_whose_messages_wait_for_quiet_hours_is_sending_not_done(
    client, run_jobs, quiet_night, time_machine
):
    customer(KOLKATA)
    customer(MUMBAI)
    campaign_id = launch_via_api(client, run_jobs)
    shown = client.get(f"/admin/api/campaigns/{campaign_id}", headers=ADMIN).json
    assert shown["state"] == "sending" and shown["finished_at"] is None
    assert shown["progress"]["queued"] == 2 and shown["progress"]["sent"] == 0

    time_machine.move_to(datetime(2030, 1, 11, 3, 30), tick=False)  # 09:00 in Kolkata
    run_jobs()
    shown = client.get(f"/admin/api/campaigns/{campaign_id}", headers=ADMIN).json
    assert shown["state"] == "done" and shown["progress"]["sent"] == 2
    cancel = client.post(f"/admin/api/campaigns/{campaign_id}/cancel", headers=ADMIN)
    assert cancel.status_code == 409


def test_cancel_while_messages_wait_for_quiet_hours_suppresses_them(
    client, run_jobs, quiet_night, time_machine
):
    customer(KOLKATA)
    campaign_id = launch_via_api(client, run_jobs)
    cancelled = client.post(f"/admin/api/campaigns/{campaign_id}/cancel", headers=ADMIN)
    assert cancelled.status_code == 200, cancelled.json
    assert cancelled.json["state"] == "cancelled"
    assert cancelled.json["progress"]["suppressed_by_reason"] == {"cancelled": 1}

    time_machine.move_to(datetime(2030, 1, 11, 3, 30), tick=False)  # quiet hours are over
    run_jobs()
    (message,) = Message.select()
    assert (message.state, message.reason) == (State.SUPPRESSED, Reason.CANCELLED)
    assert message.sent_at is None


def test_pause_holds_messages_waiting_for_quiet_hours_until_resume(
    client, run_jobs, quiet_night, time_machine
):
    customer(KOLKATA)
    campaign_id = launch_via_api(client, run_jobs)
    paused = client.post(f"/admin/api/campaigns/{campaign_id}/pause", headers=ADMIN)
    assert paused.status_code == 200 and paused.json["state"] == "paused"

    time_machine.move_to(datetime(2030, 1, 11, 3, 30), tick=False)  # quiet hours are over
    run_jobs()
    (message,) = Message.select()
    assert (message.state, message.reason) == (State.DEFERRED, Reason.CAMPAIGN_PAUSED)
    assert client.get(f"/admin/api/campaigns/{campaign_id}", headers=ADMIN).json["state"] == (
        "paused"
    )

    resumed = client.post(f"/admin/api/campaigns/{campaign_id}/resume", headers=ADMIN)
    assert resumed.status_code == 200
    run_jobs()
    message = Message.get_by_id(message.id)
    assert message.state in DELIVERED_OR_SENT and message.sent_at == datetime(2030, 1, 11, 3, 30)
    assert client.get(f"/admin/api/campaigns/{campaign_id}", headers=ADMIN).json["state"] == "done"


def test_the_sweeper_finishes_a_campaign_whose_last_message_an_admin_cancelled(
    app, run_jobs, quiet_night
):
    from bot.delivery.sending import cancel_message
    from jobs.sweep import sweep_once

    customer(KOLKATA)
    campaign = draft()
    campaigns.launch(campaign, services().queues, utcnow())
    run_jobs()
    (message,) = messages(campaign)
    assert Campaign.get_by_id(campaign.id).state == "sending"
    assert cancel_message(message.id, "tests", utcnow())
    assert sweep_once(services(), utcnow())["campaigns_done"] == 1
    assert Campaign.get_by_id(campaign.id).state == "done"


# --- what the preview counts, and what spend is (issue 17, item 4) -----------------------


def test_the_preview_counts_who_a_marketing_campaign_sends_to_and_why_not_the_others(
    client, run_jobs, daytime
):
    from bot.policy.privacy import suppression_hash

    for n in range(6):
        customer(f"+9198123400{n + 10:02d}", tags=["vip"])
    for n in range(3):
        customer(f"+9198123410{n + 10:02d}", tags=["vip"], marketing_opt_in=False)
    customer("+919812342000", tags=["vip"], opted_out=True)
    customer("+919812342001", tags=["vip"], opted_out=True, marketing_opt_in=False)
    erased = customer("+919812343001", tags=["vip"])
    from bot.core.models import Suppression

    salt = services().settings.suppression_salt
    Suppression.create(phone_hash=suppression_hash(erased.phone, salt), reason="erased")

    answer = client.post("/admin/api/segments/preview", json={"tags_any": ["vip"]}, headers=ADMIN)
    assert answer.status_code == 200, answer.json
    assert answer.json == {
        "count": 6,
        "matched": 12,
        "excluded": {"invalid_phone": 0, "erased": 1, "opted_out": 2, "no_marketing_consent": 3},
    }
    utility = client.post(
        "/admin/api/segments/preview",
        json={"tags_any": ["vip"], "category": "utility"},
        headers=ADMIN,
    ).json
    assert utility["count"] == 9 and utility["excluded"]["no_marketing_consent"] == 0

    # The campaign sends to exactly the previewed count.
    created = client.post(
        "/admin/api/campaigns",
        json={
            "name": "VIP",
            "template": "diwali_sale",
            "languages": ["en"],
            "segment": {"tags_any": ["vip"]},
        },
        headers=ADMIN,
    ).json
    client.post(f"/admin/api/campaigns/{created['id']}/launch", headers=ADMIN)
    run_jobs()
    progress = client.get(f"/admin/api/campaigns/{created['id']}", headers=ADMIN).json["progress"]
    assert progress["sent"] == 6 and progress["suppressed_by_reason"] == {"erased": 1}, progress


def test_spend_counts_only_completed_orders_and_never_adds_currencies(app, run_jobs, daytime):
    asha = customer(KOLKATA)
    ravi = customer(MUMBAI)
    mixed = customer(DELHI)

    def order(who: Customer, n: int, total: str, currency: str = "INR", **fields) -> None:
        Order.create(
            source="generic",
            external_id=f"{who.id}-{n}",
            number=f"#{who.id}{n}",
            customer=who,
            total=Decimal(total),
            currency=currency,
            **fields,
        )

    order(asha, 1, "1500", status="paid", stage="delivered")
    order(asha, 2, "800")
    order(ravi, 1, "1500", status="paid", stage="cancelled")  # cancelled: not spend
    order(ravi, 2, "900", status="refunded")
    order(ravi, 3, "800", status="wc-cancelled")
    order(ravi, 4, "2000", status="abandoned")
    order(mixed, 1, "1500", currency="INR")
    order(mixed, 2, "1500", currency="USD")  # 1500 INR + 1500 USD is not 3000 of anything

    def ids(definition: dict) -> set[int]:
        return {c.id for c in segments.segment_query(definition)}

    assert ids({"min_spend": "2000"}) == {asha.id}
    assert ids({"min_spend": "1500", "spend_currency": "USD"}) == {mixed.id}
    assert ids({"min_spend": "1500", "spend_currency": "INR"}) == {asha.id, mixed.id}
    assert ids({"min_spend": "3000"}) == set()

    campaign = draft(params=["total_spend"], segment={"min_orders": 1})
    campaigns.launch(campaign, services().queues, utcnow())
    run_jobs()
    spend = {m.customer_id: m.params["body"] for m in messages(campaign)}
    assert spend[asha.id] == ["₹2,300.00"]
    assert spend[ravi.id] == ["₹0.00"]


def test_spend_currency_needs_min_spend_and_a_real_currency(client):
    for segment in ({"spend_currency": "INR"}, {"min_spend": "10", "spend_currency": "RUPEE"}):
        answer = client.post("/admin/api/segments/preview", json=segment, headers=ADMIN)
        assert answer.status_code == 400, segment


def test_a_customer_known_only_by_username_is_counted_targeted_and_sent_to_by_bsuid(
    client, run_jobs, daytime
):
    """PROVIDERS.md §9.1: a username user has a BSUID and no number; marketing may go to
    the BSUID. An erased one is excluded like an erased number."""
    from bot.core.models import Suppression
    from bot.delivery.providers import sandbox
    from bot.policy.privacy import suppression_hash

    customer(tags=["vip"])
    customer(None, user_id="IN.13491208655302741918", tags=["vip"])
    gone = customer(None, user_id="IN.99991208655302741918", tags=["vip"])
    customer(None, tags=["vip"])  # neither: nothing to send to
    salt = services().settings.suppression_salt
    Suppression.create(phone_hash=suppression_hash(gone.user_id, salt), reason="erased")

    answer = client.post("/admin/api/segments/preview", json={"tags_any": ["vip"]}, headers=ADMIN)
    assert answer.json == {
        "count": 2,
        "matched": 4,
        "excluded": {"invalid_phone": 1, "erased": 1, "opted_out": 0, "no_marketing_consent": 0},
    }
    campaign = draft(segment={"tags_any": ["vip"]})
    client.post(f"/admin/api/campaigns/{campaign.id}/launch", headers=ADMIN)
    run_jobs()
    progress = client.get(f"/admin/api/campaigns/{campaign.id}", headers=ADMIN).json["progress"]
    assert progress["sent"] == 2, progress
    sent = sandbox.recorded(services().redis)
    recipients = {(item["to"], item["recipient_user_id"]) for item in sent}
    assert recipients == {(KOLKATA, None), (None, "IN.13491208655302741918")}
