"""The admin API's customers CSV: `POST /admin/api/customers/import` (text/csv or a
multipart `file`) with its per-row report, and the streamed `export.csv`."""

from __future__ import annotations

import csv
import io

import pytest

from bot.core.models import AuditLog, ConsentEvent, Customer
from tests.conftest import ADMIN, basic_auth

IMPORT = "/admin/api/customers/import"
EXPORT = "/admin/api/customers/export.csv"
#: Writes under /admin need JSON or this header (bot/web/auth.py); a CSV upload sends it.
UPLOAD = {**ADMIN, "X-Requested-With": "dakiya"}
ASHA = "+919812345678"

FILE = """\
phone,name,language,tags,marketing_consent,opted_out
098123 45678,Asha,hi,vip,yes,
+919876543210,Ravi,en,,,yes
12345,Bad Phone,,,,
+919812300001,Bad Language,klingon,,,
"""


def upload(client, text: str | bytes, query: str = "", headers: dict | None = None):
    data = text.encode() if isinstance(text, str) else text
    return client.post(
        IMPORT + query,
        data=data,
        headers={**UPLOAD, **(headers or {})},
        content_type="text/csv; charset=utf-8",
    )


@pytest.mark.parametrize(
    ("method", "path"), [("post", IMPORT), ("get", EXPORT), ("post", IMPORT + "?dry_run=true")]
)
@pytest.mark.parametrize("headers", [{}, basic_auth("admin", "wrong")])
def test_import_and_export_need_credentials(client, method, path, headers):
    response = getattr(client, method)(
        path,
        data=FILE if method == "post" else None,
        content_type="text/csv",
        headers={**headers, "X-Requested-With": "dakiya"},
    )
    assert response.status_code == 401
    assert not Customer.select().exists() and not AuditLog.select().exists()


def test_import_answers_counts_and_each_rejected_row_with_its_fields(client):
    response = upload(client, FILE)
    assert response.status_code == 200
    body = response.get_json()
    assert (body["imported"], body["created"], body["updated"]) == (2, 2, 0)
    assert body["dry_run"] is False and len(body["import_id"]) == 36
    assert body["rejected"] == [
        {"row": 4, "phone": "invalid: …45", "errors": {"phone": ["not a valid phone number"]}},
        {
            "row": 5,
            "phone": "+91********01",
            "errors": {"language": ["not a known language (e.g. en, hi, pt-BR)"]},
        },
    ]
    assert sorted(c.phone for c in Customer.select()) == [ASHA, "+919876543210"]
    assert {(e.source, e.evidence["import_id"]) for e in ConsentEvent.select()} == {
        ("csv_import", body["import_id"])
    }
    entry = AuditLog.get()
    assert (entry.actor, entry.action) == ("admin", "import_customers")
    assert entry.details["rejected"] == 2


def test_a_multipart_file_field_is_imported_too(client):
    response = client.post(
        IMPORT,
        data={"file": (io.BytesIO(FILE.encode()), "customers.csv")},
        headers=UPLOAD,
        content_type="multipart/form-data",
    )
    assert response.status_code == 200 and response.get_json()["imported"] == 2


def test_a_form_without_the_file_field_is_400(client):
    response = client.post(
        IMPORT, data={"other": "x"}, headers=UPLOAD, content_type="multipart/form-data"
    )
    assert response.status_code == 400
    assert "file" in response.get_json()["error"]["fields"]


def test_other_content_types_are_415(client):
    response = client.post(IMPORT, json={"phone": ASHA}, headers=UPLOAD)
    assert response.status_code == 415
    assert not Customer.select().exists()


def test_a_byte_order_mark_is_handled(client):
    response = upload(client, "\ufeffPhone,Name\n+919812345678,Asha\n".encode())
    assert response.get_json()["created"] == 1
    assert Customer.get().name == "Asha"


def test_an_unknown_column_rejects_the_whole_file_naming_it(client):
    response = upload(client, "phone,name,email\n+919812345678,Asha,a@example.com\n")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "unknown_columns" and "email" in error["message"]
    assert error["fields"] == {"columns": ["unknown column: email"]}
    assert not Customer.select().exists() and not AuditLog.select().exists()


@pytest.mark.parametrize("text", ["", "+919812345678,Asha\n"])
def test_an_empty_file_or_one_without_a_header_is_400(client, text):
    response = upload(client, text)
    assert response.status_code == 400
    assert not Customer.select().exists()


def test_more_than_ten_thousand_rows_is_413_saying_so(client):
    text = "phone\n" + "".join(f"+9198{n:08d}\n" for n in range(10_001))
    response = upload(client, text)
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_many_rows"
    assert "10000" in response.get_json()["error"]["message"]


def test_the_import_takes_files_bigger_than_other_request_bodies(make_app, settings):
    client = make_app(settings.replace(max_body_bytes=256)).test_client()
    text = "phone,name\n" + "".join(f"+91981230{n:04d},Customer {n}\n" for n in range(20))
    assert len(text) > 256
    assert upload(client, text).get_json()["created"] == 20


def test_a_dry_run_reports_and_writes_nothing(client):
    response = upload(client, FILE, "?dry_run=true")
    body = response.get_json()
    assert response.status_code == 200 and body["dry_run"] is True
    assert (body["imported"], len(body["rejected"])) == (2, 2)
    assert not Customer.select().exists()
    assert not ConsentEvent.select().exists() and not AuditLog.select().exists()


def test_a_bad_dry_run_value_is_400_naming_it(client):
    response = upload(client, FILE, "?dry_run=perhaps")
    assert response.status_code == 400
    assert "dry_run" in response.get_json()["error"]["fields"]


def test_export_streams_csv_with_filters_and_is_audited(client):
    upload(client, FILE)
    response = client.get(EXPORT + "?opted_out=false", headers=ADMIN)
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["phone"], r["name"], r["tags"]) for r in rows] == [(ASHA, "Asha", "vip")]
    entry = AuditLog.select().order_by(AuditLog.id.desc()).get()
    assert (entry.action, entry.details) == ("export_customers", {"filters": {"opted_out": False}})


def test_export_by_tag(client):
    upload(client, FILE)
    response = client.get(EXPORT + "?tag=vip", headers=ADMIN)
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["phone"] for r in rows] == [ASHA]


def test_an_unknown_export_filter_is_400(client):
    assert client.get(EXPORT + "?country=IN", headers=ADMIN).status_code == 400


def test_an_export_round_trips_through_the_import(client):
    upload(client, FILE)
    exported = client.get(EXPORT, headers=ADMIN).get_data()
    events = ConsentEvent.select().count()
    body = upload(client, exported).get_json()
    assert (body["created"], body["updated"], body["unchanged"], body["rejected"]) == (0, 0, 2, [])
    assert ConsentEvent.select().count() == events
    assert client.get(EXPORT, headers=ADMIN).get_data() == exported
