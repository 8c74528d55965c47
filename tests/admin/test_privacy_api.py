"""The admin API's data-request endpoints: export and erase one number, and the audit
log of both; behind the admin's credentials, with the number validated."""

from __future__ import annotations

import pytest

from bot.core.models import AuditLog, Customer, Suppression
from bot.policy.privacy import is_suppressed, suppression_hash
from tests.conftest import ADMIN, SECRETS, basic_auth
from tests.test_privacy import customer_with_history

ASHA = "+919812345678"


@pytest.fixture
def admin(make_app, settings, run_jobs):
    app = make_app(settings)
    customer_with_history(ASHA, "1042", run_jobs)
    customer_with_history("+919876543210", "2077", run_jobs)
    return app.test_client()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/admin/api/customers/+919812345678/export"),
        ("delete", "/admin/api/customers/+919812345678"),
        ("get", "/admin/api/audit-log"),
    ],
)
@pytest.mark.parametrize("headers", [{}, basic_auth("admin", "wrong")])
def test_data_requests_need_the_admins_credentials(admin, method, path, headers):
    response = getattr(admin, method)(path, headers=headers)
    assert response.status_code == 401
    assert Customer.select().count() == 2 and not AuditLog.select().exists()


@pytest.mark.parametrize("written", ["+919812345678", "%2B919812345678", "919812345678"])
def test_export_accepts_e164_with_or_without_its_plus(admin, written):
    response = admin.get(f"/admin/api/customers/{written}/export", headers=ADMIN)
    assert response.status_code == 200
    body = response.get_json()
    assert body["customer"]["phone"] == ASHA
    assert [o["external_id"] for o in body["orders"]] == ["1042"]


def test_export_is_written_to_the_audit_log(admin):
    admin.get("/admin/api/customers/919812345678/export", headers=ADMIN)
    entry = AuditLog.get()
    assert (entry.actor, entry.action) == ("admin", "export")
    assert entry.subject == suppression_hash(ASHA, SECRETS["suppression_salt"])
    assert entry.details["messages"] == 1


def test_export_of_an_unknown_number_is_404(admin):
    response = admin.get("/admin/api/customers/+447911123456/export", headers=ADMIN)
    assert response.status_code == 404


@pytest.mark.parametrize("written", ["12345", "not-a-number", "+00000000000"])
def test_an_invalid_number_is_400_naming_phone(admin, written):
    for response in (
        admin.get(f"/admin/api/customers/{written}/export", headers=ADMIN),
        admin.delete(f"/admin/api/customers/{written}", headers=ADMIN),
    ):
        assert response.status_code == 400
        assert "phone" in response.get_json()["error"]["fields"]
    assert not Suppression.select().exists()


def test_delete_erases_the_customer_and_answers_the_counts(admin):
    response = admin.delete("/admin/api/customers/%2B919812345678", headers=ADMIN)
    assert response.status_code == 200
    body = response.get_json()
    assert body["erased"]["customers"] == 1 and body["erased"]["messages"] == 1
    assert body["subject"] == suppression_hash(ASHA, SECRETS["suppression_salt"])
    assert is_suppressed(ASHA, SECRETS["suppression_salt"])
    assert admin.get(f"/admin/api/customers/{ASHA}/export", headers=ADMIN).status_code == 404


def test_delete_is_idempotent_and_blocks_unknown_numbers_too(admin):
    admin.delete(f"/admin/api/customers/{ASHA}", headers=ADMIN)
    again = admin.delete(f"/admin/api/customers/{ASHA}", headers=ADMIN)
    stranger = admin.delete("/admin/api/customers/447911123456", headers=ADMIN)
    assert again.status_code == stranger.status_code == 200
    assert set(again.get_json()["erased"].values()) == {0}
    assert set(stranger.get_json()["erased"].values()) == {0}
    assert is_suppressed("+447911123456", SECRETS["suppression_salt"])


def test_audit_log_lists_exports_and_erasures_newest_first(admin):
    admin.get(f"/admin/api/customers/{ASHA}/export", headers=ADMIN)
    admin.delete(f"/admin/api/customers/{ASHA}", headers=ADMIN)
    entries = admin.get("/admin/api/audit-log", headers=ADMIN).get_json()["entries"]
    assert [e["action"] for e in entries] == ["erase", "export"]
    assert entries[0]["actor"] == "admin" and entries[0]["created_at"].endswith("Z")
    assert "9812345678" not in str(entries)
    limited = admin.get("/admin/api/audit-log?limit=1", headers=ADMIN).get_json()["entries"]
    assert [e["action"] for e in limited] == ["erase"]


@pytest.mark.parametrize("limit", ["0", "501", "ten", "-1", ""])
def test_audit_log_limit_out_of_range_is_400_naming_limit(admin, limit):
    response = admin.get(f"/admin/api/audit-log?limit={limit}", headers=ADMIN)
    assert response.status_code == 400
    assert "limit" in response.get_json()["error"]["fields"]
