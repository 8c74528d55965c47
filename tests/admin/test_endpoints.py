"""The admin API's endpoints: happy paths and refusals (roles, cross-site requests, rate
limits, invalid input naming the field, oversized bodies), and the audit trail."""

from __future__ import annotations

import json
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.core.models import AuditLog, ConsentEvent, Customer, Message, Reason, State
from tests.conftest import ADMIN, ADMIN_PASSWORD, VIEWER, basic_auth
from tests.factories import queued_message

JSON = {"Content-Type": "application/json"}


def post(client, path, body=None, headers=ADMIN, method="post"):
    return getattr(client, method)(path, data=json.dumps(body or {}), headers={**headers, **JSON})


def test_customers_can_be_created_found_updated_and_audited(client):
    created = post(
        client,
        "/admin/api/customers",
        {"phone": "098123 45678", "country": "IN", "name": "Asha", "tags": ["vip"]},
    )
    assert created.status_code == 201
    customer = created.get_json()
    assert (customer["phone"], customer["timezone"]) == ("+919812345678", "Asia/Kolkata")
    found = client.get("/admin/api/customers?q=98123&tag=vip", headers=ADMIN).get_json()
    assert [c["id"] for c in found["items"]] == [customer["id"]] and found["next_after"] is None
    changed = post(
        client, f"/admin/api/customers/{customer['id']}", {"language": "hi"}, method="patch"
    )
    assert changed.get_json()["language"] == "hi"
    entry = AuditLog.select().where(AuditLog.action == "update_customer").get()
    assert entry.actor == "admin" and entry.details["after"]["language"] == "hi"
    assert "98123" not in json.dumps(entry.details)  # the audit log keeps no phone number


def test_duplicate_customer_is_409_and_a_bad_phone_is_400_naming_it(client):
    post(client, "/admin/api/customers", {"phone": "+919812345678"})
    assert post(client, "/admin/api/customers", {"phone": "+919812345678"}).status_code == 409
    bad = post(client, "/admin/api/customers", {"phone": "12"})
    assert bad.status_code == 400 and "phone" in bad.get_json()["error"]["fields"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone": "+919812345678", "language": "klingon"}, "language"),
        ({"phone": "+919812345678", "timezone": "Mars/Olympus"}, "timezone"),
        ({"phone": "+919812345678", "tags": "vip"}, "tags"),
        ({"phone": "+919812345678", "shoe_size": 9}, "shoe_size"),
        ({"name": "No phone"}, "phone"),
    ],
)
def test_invalid_customer_bodies_name_the_field_and_change_nothing(client, body, field):
    response = post(client, "/admin/api/customers", body)
    assert response.status_code == 400
    assert field in response.get_json()["error"]["fields"]
    assert Customer.select().count() == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("after=-1", "after"),
        ("state=lost", "state"),
        ("since=yesterday", "since"),
        ("colour=red", "colour"),
    ],
)
def test_invalid_query_strings_name_the_field(client, query, field):
    response = client.get(f"/admin/api/messages?{query}", headers=ADMIN)
    assert response.status_code == 400
    assert field in response.get_json()["error"]["fields"]


def test_admin_consent_change_is_in_the_ledger(client):
    customer = post(client, "/admin/api/customers", {"phone": "+919812345678"}).get_json()
    response = post(
        client,
        f"/admin/api/customers/{customer['id']}/consent",
        {"category": "marketing", "action": "opt_in", "note": "signed up in store"},
    )
    assert response.get_json()["marketing_opt_in"] is True
    [event] = client.get(
        f"/admin/api/customers/{customer['id']}/consent", headers=ADMIN
    ).get_json()["items"]
    assert (event["source"], event["action"], event["evidence"]["note"]) == (
        "admin",
        "opt_in",
        "signed up in store",
    )


def test_messages_are_filtered_paged_cancelled_and_shown_with_receipts(client):
    ids = [
        queued_message(event_id=f"e{i}", order_id=str(i), phone=f"+91981234567{i}").id
        for i in range(3)
    ]
    first = client.get("/admin/api/messages?state=queued&limit=2", headers=ADMIN).get_json()
    second = client.get(
        f"/admin/api/messages?state=queued&limit=2&after={first['next_after']}", headers=ADMIN
    ).get_json()
    assert [m["id"] for m in first["items"] + second["items"]] == ids and second[
        "next_after"
    ] is None
    cancelled = post(client, f"/admin/api/messages/{ids[0]}/cancel")
    assert (cancelled.get_json()["state"], cancelled.get_json()["reason"]) == (
        "suppressed",
        "cancelled",
    )
    assert post(client, f"/admin/api/messages/{ids[0]}/cancel").status_code == 409
    shown = client.get(f"/admin/api/messages/{ids[1]}", headers=ADMIN).get_json()
    assert shown["status_events"] == [] and shown["template"] == "order_shipped"
    listed = client.get("/admin/api/messages?reason=cancelled", headers=ADMIN).get_json()["items"]
    assert [m["id"] for m in listed] == [ids[0]]


def test_orders_are_looked_up_with_their_events_and_messages(client):
    message = queued_message(order_id="1042")
    [order] = client.get("/admin/api/orders?external_id=1042", headers=ADMIN).get_json()["items"]
    detail = client.get(f"/admin/api/orders/{order['id']}", headers=ADMIN).get_json()
    assert detail["number"] == "#1042" and detail["stage"] == "shipped"
    assert [m["id"] for m in detail["messages"]] == [message.id] and len(detail["events"]) == 1


def test_editing_the_template_map_changes_the_next_message(client):
    templates = client.get("/admin/api/templates", headers=ADMIN).get_json()
    assert {t["event"] for t in templates["items"]} >= {"shipped", "placed"}
    response = post(
        client,
        "/admin/api/templates/shipped",
        {"template": "shipped_v2", "languages": ["en"], "body": ["customer_name", "order_number"]},
        method="put",
    )
    assert response.status_code == 200
    assert queued_message().template_name == "shipped_v2"


def test_a_template_edit_naming_an_unknown_parameter_is_refused(client):
    response = post(
        client,
        "/admin/api/templates/shipped",
        {"template": "t", "languages": ["en"], "body": ["shoe_size"]},
        method="put",
    )
    assert response.status_code == 400
    assert "customer_name" in response.get_json()["error"]["fields"]["body.0"][0]  # the choices
    assert (
        post(
            client,
            "/admin/api/templates/teleported",
            {"template": "t", "languages": ["en"]},
            method="put",
        ).status_code
        == 404
    )


def test_policy_settings_change_at_run_time(client):
    response = post(
        client,
        "/admin/api/settings",
        {"marketing_daily_cap": 2, "quiet_hours_marketing": "off"},
        method="patch",
    )
    body = response.get_json()
    assert (body["marketing_daily_cap"], body["quiet_hours_marketing"]) == (2, "off")
    assert body["overridden"] == ["marketing_daily_cap", "quiet_hours_marketing"]
    from bot.extensions import services

    assert services().sender().rules.caps["marketing"].daily == 2


@pytest.mark.parametrize(
    "body",
    [
        {"quiet_hours_marketing": "late"},
        {"send_rate_per_second": 0},
        {"messaging_tier": "lots"},
        {"colour": "red"},
    ],
)
def test_invalid_policy_settings_are_refused(client, body):
    response = post(client, "/admin/api/settings", body, method="patch")
    assert response.status_code == 400
    assert client.get("/admin/api/settings", headers=ADMIN).get_json()["overridden"] == []


def test_a_viewer_can_read_but_not_write(client):
    assert client.get("/admin/api/customers", headers=VIEWER).status_code == 200
    response = post(client, "/admin/api/customers", {"phone": "+919812345678"}, headers=VIEWER)
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"
    assert Customer.select().count() == 0


def test_a_write_without_json_or_custom_header_is_refused(client):
    form = {
        "Content-Type": "application/x-www-form-urlencoded",
        **basic_auth("admin", ADMIN_PASSWORD),
    }
    message = queued_message()
    response = client.post(f"/admin/api/messages/{message.id}/cancel", data="x=1", headers=form)
    assert (
        response.status_code == 403 and response.get_json()["error"]["code"] == "cross_site_request"
    )
    assert Message.get_by_id(message.id).state == State.QUEUED


def test_repeated_failed_logins_lock_the_address_out(client):
    wrong = basic_auth("admin", "guess")
    assert [client.get("/admin/api/customers", headers=wrong).status_code for _ in range(5)] == [
        401
    ] * 5
    locked = client.get("/admin/api/customers", headers=ADMIN)  # even the right password now
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0


def test_the_admin_rate_limit_answers_429_with_retry_after(make_app, settings):
    client = make_app(settings.replace(admin_rate_limit="3/minute")).test_client()
    codes = [client.get("/admin/api/customers", headers=ADMIN).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    response = client.get("/admin/api/customers", headers=ADMIN)
    assert (
        response.get_json()["error"]["code"] == "too_many_requests"
        and response.headers["Retry-After"]
    )


def test_an_oversized_body_is_413(client):
    response = post(
        client, "/admin/api/customers", {"phone": "+919812345678", "name": "x" * (2 * 1024 * 1024)}
    )
    assert response.status_code == 413


def test_dead_letter_retry_is_audited(client, run_jobs):
    message = queued_message()
    Message.update(state=State.FAILED, reason=Reason.RETRIES_EXHAUSTED).execute()
    assert post(client, f"/admin/api/messages/{message.id}/retry").status_code == 202
    assert AuditLog.select().where(AuditLog.action == "retry_message").count() == 1
    assert ConsentEvent.select().count() == 0


def test_the_audit_log_pages_newest_first(client):
    for i in range(3):
        post(client, "/admin/api/customers", {"phone": f"+91981234567{i}"})
    first = client.get("/admin/api/audit-log?limit=2", headers=ADMIN).get_json()
    rest = client.get(
        f"/admin/api/audit-log?limit=2&before={first['next_before']}", headers=ADMIN
    ).get_json()
    ids = [e["id"] for e in first["entries"] + rest["entries"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 3 and rest["next_before"] is None


def test_message_time_filters_understand_offsets(client):
    from bot.core.models import utcnow

    message = queued_message()
    created = Message.get_by_id(message.id).created_at
    # The same instant written in India's offset: still "since" that moment.
    local = (created.replace(tzinfo=UTC).astimezone(ZoneInfo("Asia/Kolkata"))).isoformat()
    found = client.get(
        "/admin/api/messages", query_string={"since": local}, headers=ADMIN
    ).get_json()["items"]
    assert [m["id"] for m in found] == [message.id]
    later = (utcnow() + timedelta(hours=1)).isoformat() + "+00:00"
    assert (
        client.get("/admin/api/messages", query_string={"since": later}, headers=ADMIN).get_json()[
            "items"
        ]
        == []
    )
