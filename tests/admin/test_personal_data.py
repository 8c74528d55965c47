"""Personal data in admin answers: only a role that may export gets exports, no admin
answer is kept by a browser cache, filters take `%` and `_` literally, and the CSV
export and import cannot be turned against a spreadsheet or the whole import."""

from __future__ import annotations

import csv
import io
import json

import pytest

from bot.core.models import AuditLog, Customer, utcnow
from tests.conftest import ADMIN, VIEWER

ASHA, RAVI = "+919812345678", "+919876543210"
EXPORTS = ["/admin/api/customers/export.csv", f"/admin/api/customers/{ASHA}/export"]


def customer(phone: str, name: str = "", tags: list[str] | None = None) -> Customer:
    now = utcnow()
    return Customer.create(phone=phone, name=name, tags=tags or [], created_at=now, updated_at=now)


@pytest.mark.parametrize("path", EXPORTS)
def test_a_viewer_may_not_export_personal_data(client, path):
    customer(ASHA, "Asha")
    response = client.get(path, headers=VIEWER)
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"
    assert ASHA not in response.get_data(as_text=True)
    assert not AuditLog.select().where(AuditLog.action.contains("export")).exists()


@pytest.mark.parametrize("path", EXPORTS)
def test_an_admin_may_export_personal_data(client, path):
    customer(ASHA, "Asha")
    assert client.get(path, headers=ADMIN).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/api/customers",
        "/admin/api/customers/export.csv",
        f"/admin/api/customers/{ASHA}/export",
        "/admin/api/audit-log",
        "/admin/api/customers/999",  # a 404 is an admin answer too
    ],
)
def test_admin_answers_are_never_stored_by_a_cache(client, path):
    customer(ASHA, "Asha")
    response = client.get(path, headers=ADMIN)
    assert response.headers["Cache-Control"] == "no-store"


def test_a_refused_login_is_not_stored_by_a_cache_either(client):
    assert client.get("/admin/api/customers").headers["Cache-Control"] == "no-store"


# --- LIKE wildcards --------------------------------------------------------------------


@pytest.fixture
def tagged(app):
    customer(ASHA, "Asha 50% off", ["vip_2024", "50%"])
    customer(RAVI, "Ravi 5000 off", ["vipX2024", "5000"])


def found(client, query: str) -> list[str]:
    answer = client.get(f"/admin/api/customers?{query}", headers=ADMIN).get_json()
    return [item["phone"] for item in answer["items"]]


@pytest.mark.parametrize(
    ("query", "phones"),
    [
        ("tag=vip_2024", [ASHA]),
        ("tag=50%25", [ASHA]),
        ("tag=%25", []),
        ("tag=_", []),
        ("q=50%25", [ASHA]),
        ("q=%25", [ASHA]),  # only Asha's name holds a "%"
        ("q=_", []),
        ("q=Asha", [ASHA]),
    ],
)
def test_customer_filters_take_percent_and_underscore_literally(client, tagged, query, phones):
    assert found(client, query) == phones


@pytest.mark.parametrize(
    ("tags", "count"), [(["vip_2024"], 1), (["%"], 0), (["vip_____"], 0), (["50%"], 1)]
)
def test_segments_take_percent_and_underscore_literally(client, tagged, tags, count):
    response = client.post("/admin/api/segments/preview", json={"tags_any": tags}, headers=ADMIN)
    assert response.get_json()["matched"] == count  # the filters' own count


def test_the_csv_export_tag_filter_takes_the_tag_literally(client, tagged):
    text = client.get("/admin/api/customers/export.csv?tag=vip_2024", headers=ADMIN).text
    assert [row["phone"] for row in csv.DictReader(io.StringIO(text))] == [ASHA]


# --- CSV export and import --------------------------------------------------------------


@pytest.mark.parametrize("breaker", ["\r", "\n", "\r\n", '"', ","])
def test_the_export_quotes_every_field_with_a_line_break_quote_or_comma(client, breaker):
    customer(ASHA, f"Asha{breaker}=1+2")
    customer(RAVI, "Ravi")
    text = client.get("/admin/api/customers/export.csv", headers=ADMIN).get_data(as_text=True)
    # What a spreadsheet does: split on any line break outside quotes.
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert [row[1] for row in rows[1:]] == [ASHA, RAVI]  # no row begins inside Asha's name
    assert rows[1][2] == f"Asha{breaker}=1+2"


def test_the_export_still_defuses_a_cell_that_starts_a_formula(client):
    customer(ASHA, "\r=1+2")
    text = client.get("/admin/api/customers/export.csv", headers=ADMIN).get_data(as_text=True)
    (row,) = list(csv.DictReader(io.StringIO(text, newline="")))
    assert row["name"] == "'\r=1+2"


def test_an_import_row_with_a_nul_is_rejected_with_its_reason_and_the_others_import(client):
    data = f"phone,name,tags\n{ASHA},As\x00ha,vip\n{RAVI},Ravi,vip\n+919812300001,Meena,a\x00b\n"
    response = client.post(
        "/admin/api/customers/import",
        data=data.encode(),
        content_type="text/csv",
        headers=ADMIN,
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["imported"] == 1
    assert [(row["row"], sorted(row["errors"])) for row in body["rejected"]] == [
        (2, ["name"]),
        (4, ["tags"]),
    ]
    assert "NUL" in json.dumps(body["rejected"])
    assert [c.phone for c in Customer.select()] == [RAVI]
