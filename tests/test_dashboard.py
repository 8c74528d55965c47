"""The dashboard (`/admin/`) and the RQ jobs page (`/admin/rq`), through the Flask client."""

from __future__ import annotations

import json
import re
from datetime import datetime, time, timedelta

from rq import Queue, SimpleWorker
from rq.registry import FailedJobRegistry

from bot.core.models import (
    Alert,
    AuditLog,
    Campaign,
    Category,
    ConsentEvent,
    Customer,
    Experiment,
    Message,
    MessagePricing,
    State,
    utcnow,
)
from bot.observability import analytics, spend
from tests.conftest import ADMIN, ADMIN_PASSWORD, VIEWER, basic_auth

#: What `seed_messages` makes, as the dashboard should show it.
FUNNEL = [5, 4, 3]  # sent, delivered, read over the window
SUPPRESSED = {"opted_out": 2, "quiet_hours": 1}
#: Per day, counting back from today: 2 days ago, yesterday, today.
DELIVERY_RATE = [66.7, 100.0, None]  # None: nothing was sent today
READ_RATE = [50.0, 100.0, None]
OPT_OUTS = [1, 2, 0]
FAILURE_TEXT = "Message undeliverable: the number is not on WhatsApp"


def seed_messages() -> datetime:
    """Messages in every state on the two days before today, their opt-outs, and the
    analytics rollup over them; returns the moment used as "now"."""
    now = utcnow()
    today = now.date()
    two_days_ago = datetime.combine(today - timedelta(days=2), time(10))
    yesterday = datetime.combine(today - timedelta(days=1), time(10))
    seeds = [
        (two_days_ago, "order_shipped", State.READ, {}),
        (two_days_ago, "order_shipped", State.DELIVERED, {}),
        (two_days_ago, "order_shipped", State.SENT, {}),
        (
            two_days_ago,
            "order_shipped",
            State.FAILED,
            {"error_code": "131026", "error_text": FAILURE_TEXT},
        ),
        (two_days_ago, "order_shipped", State.SUPPRESSED, {"reason": "opted_out"}),
        (yesterday, "order_placed", State.READ, {}),
        (yesterday, "order_placed", State.READ, {}),
        (
            yesterday,
            "order_placed",
            State.FAILED,
            {"error_code": "131049", "error_text": "Not delivered to maintain ecosystem health"},
        ),
        (yesterday, "order_placed", State.SUPPRESSED, {"reason": "quiet_hours"}),
        (yesterday, "order_placed", State.SUPPRESSED, {"reason": "opted_out"}),
    ]
    for n, (at, template, state, extra) in enumerate(seeds):
        customer = Customer.create(phone=f"+9198123456{n:02d}")
        reached = [State.SENT, State.DELIVERED, State.READ]
        Message.create(
            customer=customer,
            phone=customer.phone,
            dedupe_key=f"seed:{n}",
            kind="shipped",
            category=Category.UTILITY,
            template_name=template,
            language="en",
            state=state,
            created_at=at,
            updated_at=at + timedelta(minutes=5),
            sent_at=at + timedelta(seconds=1) if state in reached else None,
            delivered_at=at + timedelta(seconds=5) if state in reached[1:] else None,
            read_at=at + timedelta(minutes=2) if state == State.READ else None,
            failed_at=at + timedelta(minutes=5) if state == State.FAILED else None,
            **extra,
        )
    for at, phone in ((two_days_ago, "+919812345601"), (yesterday, "+919812345606")):
        ConsentEvent.create(
            customer=Customer.get(phone=phone),
            category="all",
            action="opt_out",
            source="keyword",
            created_at=at + timedelta(hours=1),
        )
    ConsentEvent.create(
        customer=Customer.get(phone="+919812345607"),
        category="marketing",
        action="opt_out",
        source="keyword",
        created_at=yesterday + timedelta(hours=2),
    )
    for back in range(3):
        analytics.rollup_day(today - timedelta(days=back), now)
    return now


#: This month's priced messages seed_spend makes: (template, category, billable, country).
PRICED = [
    ("order_shipped", "utility", True, "IN"),
    ("order_shipped", "utility", True, "IN"),
    ("order_shipped", "utility", False, "IN"),
    ("diwali_sale", "marketing", True, "IN"),
]
SPEND_BY_CATEGORY = {"marketing": 0.86, "utility": 0.23}  # at bot/core/rate_card.toml


def seed_spend() -> None:
    """PRICED as delivered messages priced today, rolled up (after seed_messages)."""
    now = utcnow()
    for n, (template, category, billable, country) in enumerate(PRICED):
        customer = Customer.create(phone=f"+9198765432{n:02d}")
        Message.create(
            customer=customer,
            phone=customer.phone,
            dedupe_key=f"priced:{n}",
            kind="shipped",
            category=category,
            template_name=template,
            language="en",
            state=State.DELIVERED,
            provider="meta",
            provider_message_id=f"wamid.P{n}",
            delivered_at=now,
        )
        MessagePricing.create(
            provider="meta",
            provider_message_id=f"wamid.P{n}",
            billable=billable,
            category=category,
            type="regular" if billable else "free_customer_service",
            pricing_model="PMP",
            country=country,
            priced_at=now,
        )
    spend.rollup_day(now.date(), now)


def chart_spec(html: str, chart_id: str) -> dict:
    found = re.search(rf"id=\"chart-{chart_id}\" data-chart='([^']*)'", html)
    assert found, f"no chart {chart_id}"
    return json.loads(found.group(1).replace("&#34;", '"').replace("&amp;", "&"))


def explode() -> None:
    raise RuntimeError("provider timed out")


def failed_job(redis_conn) -> str:
    queue = Queue("orders", connection=redis_conn)
    job = queue.enqueue("tests.test_dashboard.explode")
    SimpleWorker([queue], connection=redis_conn).work(burst=True)
    assert job.id in FailedJobRegistry(queue=queue)
    return job.id


def test_dashboard_needs_a_login(client):
    assert client.get("/admin/").status_code == 401
    assert client.get("/admin/", headers=basic_auth("admin", "wrong")).status_code == 401
    assert client.get("/admin/rq").status_code == 401
    assert client.get("/admin/static/dashboard.js").status_code == 401


def test_dashboard_shows_the_funnel_rates_failures_and_suppressions(client):
    seed_messages()

    response = client.get("/admin/", headers=ADMIN)

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert chart_spec(html, "funnel")["series"][0]["values"] == FUNNEL
    rates = {s["label"]: s["values"][-3:] for s in chart_spec(html, "rates")["series"]}
    assert rates == {"delivery rate": DELIVERY_RATE, "read rate": READ_RATE}
    assert chart_spec(html, "opt_outs")["series"][0]["values"][-3:] == OPT_OUTS
    assert len(chart_spec(html, "volume")["labels"]) == 14
    assert FAILURE_TEXT in html and "131026" in html
    assert "+919812345603" not in html and "+91********03" in html
    for reason, count in SUPPRESSED.items():
        assert f'<tr data-reason="{reason}"><th scope="row">{reason}</th><td>{count}</td>' in html
    assert '<tr data-template="order_shipped">' in html
    assert "No active alerts." in html


def test_dashboard_shows_queue_depths_and_firing_alerts(client, redis_conn):
    Queue("orders", connection=redis_conn).enqueue("tests.test_dashboard.explode")
    now = utcnow()
    Alert.create(
        key="failure_rate",
        state="firing",
        severity="critical",
        text="12% of sends failed in the last 15 minutes",
        fired_at=now,
        notified_at=now,
    )
    Alert.create(
        key="queue_age:orders",
        state="resolved",
        severity="warning",
        text="cleared long ago",
        fired_at=now,
        notified_at=now,
        resolved_at=now,
    )

    html = client.get("/admin/", headers=ADMIN).get_data(as_text=True)

    orders = html[html.index('data-queue="orders"') :]
    assert re.search(r"data-waiting>1<", orders)
    assert "12% of sends failed in the last 15 minutes" in html
    assert "cleared long ago" not in html
    assert "never" in html  # no message was ever sent


def test_dashboard_shows_this_months_spend_per_category_and_template(client):
    seed_messages()
    seed_spend()

    html = client.get("/admin/", headers=ADMIN).get_data(as_text=True)

    chart = chart_spec(html, "spend")
    assert (
        dict(zip(chart["labels"], chart["series"][0]["values"], strict=True)) == SPEND_BY_CATEGORY
    )
    total = re.search(r"<span class=\"value\" data-spend>([^<]*)</span>", html).group(1)
    assert total == "INR 1.09"
    assert re.search(r"<span class=\"value\" data-billable>3</span>", html)
    table = html[html.index('id="spend-by-template"') :]
    table = table[: table.index("</table>")]
    assert "diwali_sale" in table and "order_shipped" in table
    assert "effective 2026-01-01" in html


def test_dashboard_works_on_an_empty_database(client):
    response = client.get("/admin/", headers=ADMIN)
    assert response.status_code == 200
    assert "No messages in these two weeks." in response.get_data(as_text=True)


def test_viewer_can_view_the_dashboard_and_jobs_but_not_retry(client, redis_conn):
    job_id = failed_job(redis_conn)
    assert client.get("/admin/", headers=VIEWER).status_code == 200
    assert client.get("/admin/rq", headers=VIEWER).status_code == 200
    response = client.post(f"/admin/rq/jobs/{job_id}/requeue", headers=VIEWER)
    assert response.status_code == 403


def test_chart_library_is_served_by_the_app_itself(client):
    response = client.get("/admin/static/vendor/chartjs/chart.umd.min.js", headers=ADMIN)
    assert response.status_code == 200
    assert b"Chart.js v4.6.1" in response.data
    html = client.get("/admin/", headers=ADMIN).get_data(as_text=True)
    assert 'src="/admin/static/vendor/chartjs/chart.umd.min.js"' in html
    assert "<script>" not in html  # no inline script: the CSP would refuse it


def test_jobs_page_lists_a_failed_job_with_its_error(client, redis_conn):
    job_id = failed_job(redis_conn)

    html = client.get("/admin/rq", headers=ADMIN).get_data(as_text=True)

    assert job_id in html
    assert "tests.test_dashboard.explode()" in html
    assert "RuntimeError: provider timed out" in html
    assert "No worker is running" in html


def test_retry_puts_a_failed_job_back_on_its_queue(client, redis_conn):
    job_id = failed_job(redis_conn)
    queue = Queue("orders", connection=redis_conn)

    response = client.post(f"/admin/rq/jobs/{job_id}/requeue", headers=ADMIN)

    assert response.status_code == 200
    assert response.json == {"requeued": [job_id]}
    assert job_id not in FailedJobRegistry(queue=queue)
    assert queue.job_ids == [job_id]
    entry = AuditLog.get(AuditLog.action == "requeue_job")
    assert (entry.actor, entry.subject) == ("admin", job_id)


def test_retry_needs_the_header_a_cross_site_form_cannot_send(client, redis_conn):
    job_id = failed_job(redis_conn)
    response = client.post(
        f"/admin/rq/jobs/{job_id}/requeue", headers=basic_auth("admin", ADMIN_PASSWORD)
    )
    assert response.status_code == 403
    assert response.json["error"]["code"] == "cross_site_request"


def test_retry_all_and_delete(client, redis_conn):
    first, second = failed_job(redis_conn), failed_job(redis_conn)
    queue = Queue("orders", connection=redis_conn)

    assert client.delete(f"/admin/rq/jobs/{first}", headers=ADMIN).json == {"deleted": [first]}
    response = client.post("/admin/rq/queues/orders/requeue-failed", headers=ADMIN)

    assert response.json == {"requeued": [second]}
    assert queue.job_ids == [second]
    assert FailedJobRegistry(queue=queue).count == 0


def test_retry_of_an_unknown_or_unfailed_job_is_refused(client, redis_conn):
    assert client.post("/admin/rq/jobs/nope/requeue", headers=ADMIN).status_code == 404
    job = Queue("orders", connection=redis_conn).enqueue("tests.test_dashboard.explode")
    response = client.post(f"/admin/rq/jobs/{job.id}/requeue", headers=ADMIN)
    assert response.status_code == 409
    assert client.post("/admin/rq/queues/nope/requeue-failed", headers=ADMIN).status_code == 404


def test_dashboard_shows_campaign_progress_and_experiment_results(client):
    now = utcnow()
    campaign = Campaign.create(
        name="Diwali", template="diwali_sale", created_by="t", state="running"
    )
    experiment = Experiment.create(
        name="diwali copy",
        campaign_id=campaign.id,
        goal="read",
        state="running",
        started_at=now - timedelta(hours=1),
        min_sample=1,
        variants=[{"name": "A", "weight": 50}, {"name": "B", "weight": 50}],
    )
    # A: 4 sent, 1 read; B: 4 sent, 4 read; plus one queued and one suppressed.
    seeds = [("A", State.READ)] + [("A", State.DELIVERED)] * 3 + [("B", State.READ)] * 4
    seeds += [("A", State.QUEUED), ("B", State.SUPPRESSED)]
    for n, (variant, state) in enumerate(seeds):
        customer = Customer.create(phone=f"+9198123456{n:02d}")
        sent = state in (State.READ, State.DELIVERED)
        Message.create(
            customer=customer,
            campaign=campaign,
            phone=customer.phone,
            dedupe_key=f"campaign:{campaign.id}:{customer.id}",
            kind="campaign",
            variant=variant,
            state=state,
            reason="opted_out" if state == State.SUPPRESSED else None,
            created_at=now,
            sent_at=now if sent else None,
            read_at=now if state == State.READ else None,
        )

    html = client.get("/admin/", headers=ADMIN).get_data(as_text=True)

    assert (
        f'<tr data-campaign="{campaign.id}"><th scope="row">Diwali</th><td>running</td>'
        "<td>10</td><td>1</td><td>8</td><td>1</td></tr>"
    ) in html
    row = re.search(rf'<tr data-variant="{experiment.id}:A">(.*?)</tr>', html).group(1)
    assert "<td>4</td><td>1</td><td>25.0%</td>" in row
    assert "<td>0.0285</td>" in row  # p-value against B: pooled z-test, z = 2.19
    row = re.search(rf'<tr data-variant="{experiment.id}:B">(.*?)</tr>', html).group(1)
    assert "B ★" in row and "<td>4</td><td>4</td><td>100.0%</td>" in row
    assert "<td>–</td>" in row  # the best variant has no p-value
    assert "<span data-winner>B</span>" in html
