"""Issue 17, item 10: the smaller defects a shop owner hit (search by a number as typed,
the 409 naming the customer, changing a number, re-imports, the import report's
invalid numbers, canonical time zones, the Meta handshake, analytics' default range
and the sandbox's failure numbers). The CLI's are in tests/test_cli.py."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from zoneinfo import available_timezones

import pytest
from babel.core import get_global
from phonenumbers.tzdata import TIMEZONE_DATA

from bot.core import phones, zones
from bot.core.models import AuditLog, Customer, Message, Reason, State, db, utcnow
from bot.delivery.providers.base import ErrorKind, OutboundMessage, ProviderError
from bot.delivery.providers.sandbox import SandboxProvider
from bot.observability.analytics import summary
from tests.conftest import ADMIN
from tests.factories import queued_message

ASHA, RAVI = "+919811122233", "+919876543210"
CUSTOMERS = "/admin/api/customers"


def customer(phone: str, name: str = "") -> Customer:
    now = utcnow()
    return Customer.create(phone=phone, name=name, tags=[], created_at=now, updated_at=now)


# --- (a) search by a number as typed ------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "q=98111%2022233",  # with the space people type
        "q=+91+98111+22233",  # "+91 98111 22233" with the + left unencoded: a space
        "q=%2B91-98111-22233",
        "q=(98111)%2022233",
        "q=098111%2022233",  # the trunk 0: the number it is in DEFAULT_REGION (IN)
        "q=22233",
        "q=Asha",
    ],
)
def test_customers_are_found_by_their_number_as_typed(client, query):
    customer(ASHA, "Asha")
    customer(RAVI, "Ravi")
    answer = client.get(f"{CUSTOMERS}?{query}", headers=ADMIN)
    assert answer.status_code == 200
    assert [item["phone"] for item in answer.get_json()["items"]] == [ASHA]


def test_a_number_search_does_not_match_another_number(client):
    customer(ASHA, "Asha")
    found = client.get(f"{CUSTOMERS}?q=98111%2099999", headers=ADMIN).get_json()["items"]
    assert found == []


# --- (b) the duplicate's 409 names the customer ----------------------------------------------


def test_adding_a_known_number_answers_409_naming_the_customer_who_has_it(client):
    known = customer(ASHA, "Asha")
    response = client.post(
        CUSTOMERS, json={"phone": "98111 22233", "country": "IN", "name": "A"}, headers=ADMIN
    )
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "exists" and f"customer {known.id}" in error["message"]
    assert error["fields"] == {"phone": [f"customer {known.id} has this phone number"]}
    assert response.headers["Location"] == f"{CUSTOMERS}/{known.id}"
    assert Customer.get_by_id(known.id).name == "Asha"


# --- (c) changing a customer's number --------------------------------------------------------


def test_a_customers_number_can_be_changed_and_is_audited_masked(client):
    message = queued_message(phone=RAVI)  # still waiting to be sent
    ravi = message.customer
    Customer.update(last_inbound_at=utcnow()).where(Customer.id == ravi.id).execute()
    response = client.patch(
        f"{CUSTOMERS}/{ravi.id}", json={"phone": "98111 22233", "country": "IN"}, headers=ADMIN
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["phone"] == ASHA
    changed = Customer.get_by_id(ravi.id)
    assert changed.phone == ASHA and changed.last_inbound_at is None  # the window was RAVI's
    assert Message.get_by_id(message.id).phone == ASHA  # what waits goes to the new number
    entry = AuditLog.get(AuditLog.action == "update_customer")
    assert entry.details["before"]["phone"] == phones.mask(RAVI)
    assert entry.details["after"]["phone"] == phones.mask(ASHA)
    assert RAVI not in str(entry.details) and ASHA not in str(entry.details)


def test_changing_to_a_taken_number_is_409_naming_who_has_it(client):
    asha, ravi = customer(ASHA, "Asha"), customer(RAVI, "Ravi")
    response = client.patch(f"{CUSTOMERS}/{ravi.id}", json={"phone": ASHA}, headers=ADMIN)
    assert response.status_code == 409
    assert f"customer {asha.id}" in response.get_json()["error"]["message"]
    assert Customer.get_by_id(ravi.id).phone == RAVI


def test_changing_to_a_number_that_is_not_one_is_400_naming_the_field(client):
    ravi = customer(RAVI, "Ravi")
    response = client.patch(f"{CUSTOMERS}/{ravi.id}", json={"phone": "12345"}, headers=ADMIN)
    assert response.status_code == 400
    assert list(response.get_json()["error"]["fields"]) == ["phone"]
    assert Customer.get_by_id(ravi.id).phone == RAVI


# --- (d) and (e) the import report -----------------------------------------------------------

IMPORT = "/admin/api/customers/import"
FILE = "phone,name,language,tags\n+919811122233,Asha,hi,vip\n+919876543210,Ravi,en,\n"


def upload(client, text: str) -> dict:
    response = client.post(
        IMPORT, data=text.encode(), headers=ADMIN, content_type="text/csv; charset=utf-8"
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_reimporting_an_unchanged_file_reports_its_rows_unchanged(client):
    first = upload(client, FILE)
    assert (first["created"], first["updated"], first["unchanged"]) == (2, 0, 0)
    before = {c.id: c.updated_at for c in Customer.select()}
    again = upload(client, FILE)
    assert (again["created"], again["updated"], again["unchanged"], again["imported"]) == (
        0,
        0,
        2,
        2,
    )
    assert {c.id: c.updated_at for c in Customer.select()} == before
    edited = upload(client, FILE.replace("Ravi,en", "Ravi Kumar,en"))
    assert (edited["created"], edited["updated"], edited["unchanged"]) == (0, 1, 1)


def test_an_invalid_number_is_shown_as_invalid_not_as_a_masked_number(client):
    report = upload(client, "phone,name\n12345,Bad\n+91 98111 22233,Asha\n")
    [rejected] = report["rejected"]
    assert rejected["phone"] == "invalid: …45"  # not "+12*45", which looks like a number


# --- (f) canonical time zones ----------------------------------------------------------------


def test_a_number_gives_its_time_zone_under_the_canonical_name():
    assert phones.time_zone(ASHA) == "Asia/Kolkata"  # phonenumbers says "Asia/Calcutta"
    assert phones.time_zone("+9779812345678") == "Asia/Kathmandu"  # not "Asia/Katmandu"


def test_no_zone_phonenumbers_knows_is_stored_under_an_old_name():
    old_names = {old for old, new in get_global("zone_aliases").items() if old != new} - {"UTC"}
    given = {zone for value in TIMEZONE_DATA.values() for zone in value}
    assert "Asia/Calcutta" in given & old_names  # what the table is for
    for zone in given - {"Etc/Unknown"}:
        assert zones.canonical(zone) not in old_names
        assert zones.canonical(zone) in available_timezones()


def test_an_order_for_an_indian_number_stores_asia_kolkata(app):
    assert queued_message(phone=ASHA).customer.timezone == "Asia/Kolkata"


def test_an_old_zone_name_given_by_an_admin_or_a_file_is_stored_canonical(client):
    ravi = customer(RAVI, "Ravi")
    response = client.patch(
        f"{CUSTOMERS}/{ravi.id}", json={"timezone": "Asia/Calcutta"}, headers=ADMIN
    )
    assert response.status_code == 200 and response.get_json()["timezone"] == "Asia/Kolkata"
    upload(client, "phone,timezone\n+919811122233,asia/calcutta\n")
    assert Customer.get(Customer.phone == ASHA).timezone == "Asia/Kolkata"


def test_the_migration_renames_stored_old_zone_names(app):
    calcutta, kathmandu, utc = customer(ASHA), customer(RAVI), customer("+447911123456")
    zulu = customer("+447911123457")
    Customer.update(timezone="Zulu").where(Customer.id == zulu.id).execute()
    Customer.update(timezone="Asia/Calcutta").where(Customer.id == calcutta.id).execute()
    Customer.update(timezone="Asia/Katmandu").where(Customer.id == kathmandu.id).execute()
    Customer.update(timezone="UTC").where(Customer.id == utc.id).execute()
    path = Path(__file__).parent.parent / "migrations" / "0018_canonical_timezones.py"
    spec = importlib.util.spec_from_file_location("canonical_timezones", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    migration.up(None, db)
    stored = [Customer.get_by_id(c.id).timezone for c in (calcutta, kathmandu, utc, zulu)]
    assert stored == ["Asia/Kolkata", "Asia/Kathmandu", "UTC", "UTC"]


# --- (g) the Meta handshake without a verify token --------------------------------------------


def test_the_handshake_without_a_configured_token_says_so(make_app, settings):
    client = make_app(replace(settings, meta_verify_token="")).test_client()
    response = client.get(
        "/webhooks/whatsapp/meta?hub.mode=subscribe&hub.verify_token=x&hub.challenge=42"
    )
    assert response.status_code == 403
    message = response.get_json()["error"]["message"]
    assert "META_VERIFY_TOKEN is not configured" in message and "hub.mode" not in message


def test_the_handshake_with_a_token_still_checks_the_mode(client):
    response = client.get("/webhooks/whatsapp/meta?hub.mode=unsubscribe&hub.verify_token=x")
    assert response.status_code == 403
    assert response.get_json()["error"]["message"] == "hub.mode must be subscribe"


# --- (i) analytics without a range ---------------------------------------------------------------


def test_analytics_without_a_range_answers_the_last_14_days(client, time_machine):
    time_machine.move_to(datetime(2024, 3, 14, 12, 0), tick=False)
    response = client.get("/admin/api/analytics", headers=ADMIN)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == summary(date(2024, 3, 1), date(2024, 3, 14), "day")
    days = client.get("/admin/api/analytics?to=2024-03-05", headers=ADMIN).get_json()
    assert days == summary(date(2024, 2, 21), date(2024, 3, 5), "day")
    since = client.get("/admin/api/analytics?from=2024-03-10", headers=ADMIN).get_json()
    assert since == summary(date(2024, 3, 10), date(2024, 3, 14), "day")


def test_analytics_from_after_today_without_to_is_400_naming_to(client, time_machine):
    time_machine.move_to(datetime(2024, 3, 14, 12, 0), tick=False)
    response = client.get("/admin/api/analytics?from=2024-03-20", headers=ADMIN)
    assert response.status_code == 400 and "to" in response.get_json()["error"]["fields"]


# --- (j) the sandbox's failure numbers ---------------------------------------------------------


@pytest.mark.parametrize(
    ("ending", "kind", "code"),
    [
        ("0000", ErrorKind.PERMANENT, "131026"),
        ("0500", ErrorKind.RETRY, "131000"),
        ("0429", ErrorKind.RATE_LIMITED, "130429"),
        ("0504", ErrorKind.AMBIGUOUS, "timeout"),
    ],
)
def test_sandbox_numbers_ending_in_a_trigger_fail_with_its_error_class(
    settings, ending, kind, code
):
    sandbox = SandboxProvider(settings)
    with pytest.raises(ProviderError) as failed:
        sandbox.send(OutboundMessage(message_id=1, to=f"+9198123{ending}", callback_data="x"))
    assert (failed.value.kind, failed.value.code) == (kind, code)
    assert (failed.value.retry_after is not None) == (kind is ErrorKind.RATE_LIMITED)


def test_a_sandbox_retry_number_becomes_a_dead_letter_an_admin_can_retry(
    make_app, settings, run_jobs
):
    client = make_app(replace(settings, max_send_attempts=1)).test_client()
    message = queued_message(phone="+919812340500")
    run_jobs()
    failed = Message.get_by_id(message.id)
    assert (failed.state, failed.reason, failed.error_code) == (
        State.FAILED,
        Reason.RETRIES_EXHAUSTED,
        "131000",
    )
    assert client.post(f"/admin/api/messages/{message.id}/retry", headers=ADMIN).status_code == 202
