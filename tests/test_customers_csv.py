"""Customers CSV import and export: every row checked before anything is written, each
good row written whole with its consent ledger entries, bad rows reported by field."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest

from bot.core.errors import ApiError
from bot.core.models import AuditLog, ConsentEvent, Customer, Message, Reason, State, utcnow
from bot.customers import customers_csv
from bot.customers.customers_csv import export_customers, import_customers, read_csv, validate_row
from bot.policy import consent
from tests.factories import queued_message

NOW = datetime(2026, 11, 25, 6, 0)
ASHA = "+919812345678"
RAVI = "+919876543210"

MIXED = """\
phone,name,language,timezone,tags,country,marketing_consent,opted_out
098123 45678,Asha,hi-in,asia/kolkata,vip; diwali | vip,,yes,
07911 123456,Tom,en,,,GB,,no
12345,Bad Phone,en,,,,,
+919812300001,Bad Language,klingon,,,,,
+919812300002,Bad Zone,en,Mars/Olympus,,,,
+919812300003,Bad Boolean,en,,,,maybe,
+91 98123 45678,Asha Again,,,,,,
,No Phone,en,,,,,
"""


def import_text(text: str, **kwargs):
    return import_customers(text.encode(), "IN", "admin", NOW, salt="", **kwargs)


def row(**values) -> dict:
    return {"phone": ASHA, **values}


# --- checking one row (pure) ---------------------------------------------------------


def test_a_good_row_keeps_only_the_fields_it_gives_in_canonical_spelling():
    checked = validate_row(
        2,
        row(
            phone="098123 45678",
            language="hi-in",
            timezone="asia/kolkata",
            tags=" vip;diwali|vip ;",
            marketing_consent="YES",
            opted_out="",
        ),
        "IN",
    )
    assert not checked.errors
    assert checked.phone == ASHA
    assert checked.fields == {
        "language": "hi-IN",
        "timezone": "Asia/Kolkata",
        "tags": ["vip", "diwali"],
    }
    assert (checked.marketing, checked.opted_out) == (True, None)


def test_country_is_the_region_for_numbers_written_without_a_plus():
    assert validate_row(2, row(phone="020 7946 0018", country="gb"), "IN").phone == "+442079460018"
    assert validate_row(2, row(phone="020 7946 0018"), "IN").phone == "+912079460018"
    assert validate_row(2, row(phone="+442079460018", country="IN"), "IN").phone == "+442079460018"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"phone": "12345"}, "phone"),
        ({"phone": "  "}, "phone"),
        ({"country": "XX"}, "country"),
        ({"language": "klingon"}, "language"),
        ({"language": "und"}, "language"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"marketing_consent": "maybe"}, "marketing_consent"),
        ({"opted_out": "y"}, "opted_out"),
        ({"name": "x" * 201}, "name"),
        ({None: ["surplus"]}, "row"),
    ],
)
def test_a_bad_value_rejects_the_row_naming_its_field(values, field):
    checked = validate_row(5, {**row(), **values}, "IN")
    assert list(checked.errors) == [field]


@pytest.mark.parametrize(("written", "meaning"), [("yes", True), ("True", True), ("1", True)])
def test_booleans_read_yes_true_and_1_and_their_opposites(written, meaning):
    assert validate_row(2, row(opted_out=written), "IN").opted_out is meaning
    opposite = {"yes": "no", "True": "false", "1": "0"}[written]
    assert validate_row(2, row(opted_out=opposite), "IN").opted_out is (not meaning)


# --- reading the file ----------------------------------------------------------------


def test_header_is_case_insensitive_and_a_utf8_bom_is_ignored():
    rows = read_csv("\ufeffPhone , NAME\n+919812345678,Asha\n".encode())
    assert rows == [(2, {"phone": "+919812345678", "name": "Asha"})]


def test_blank_rows_are_skipped_but_rows_keep_their_spreadsheet_numbers():
    rows = read_csv(b"phone,name\n\n+919812345678,Asha\n,\n+919876543210,Ravi\n")
    assert [number for number, _ in rows] == [3, 5]


@pytest.mark.parametrize(
    ("data", "code", "named"),
    [
        (b"phone,name,email\n+919812345678,Asha,a@example.com\n", "unknown_columns", "email"),
        (b"+919812345678,Asha\n", "unknown_columns", "+919812345678"),
        (b"name,language\nAsha,hi\n", "missing_columns", "phone"),
        (b"phone,PHONE\n1,2\n", "duplicate_columns", "phone"),
        (b"phone,marketing_consent,marketing_opt_in\n", "duplicate_columns", "marketing_consent"),
        (b"", "invalid_csv", "empty"),
        (b"\n\n", "invalid_csv", "header"),
        ("phone,name\n+919812345678,Zoë\n".encode("latin-1"), "invalid_csv", "UTF-8"),
    ],
)
def test_a_file_that_is_not_a_customers_file_is_refused_whole(data, code, named):
    with pytest.raises(ApiError) as refused:
        read_csv(data)
    assert (refused.value.status, refused.value.code) == (400, code)
    assert named in refused.value.message


def test_more_than_the_row_limit_is_413(monkeypatch):
    monkeypatch.setattr(customers_csv, "MAX_ROWS", 2)
    read_csv(b"phone\n+919812345678\n+919876543210\n")
    with pytest.raises(ApiError) as refused:
        read_csv(b"phone\n+919812345678\n+919876543210\n+447911123456\n")
    assert (refused.value.status, refused.value.code) == (413, "too_many_rows")


# --- importing -----------------------------------------------------------------------


def test_good_rows_are_imported_and_bad_rows_reported_by_field_with_nothing_written(app):
    report = import_text(MIXED)
    assert (report.imported, report.created, report.updated) == (2, 2, 0)
    assert {r.row: list(r.errors) for r in report.rejected} == {
        4: ["phone"],
        5: ["language"],
        6: ["timezone"],
        7: ["marketing_consent"],
        8: ["phone"],
        9: ["phone"],
    }
    duplicate = next(r for r in report.rejected if r.row == 8)
    assert duplicate.errors["phone"] == ["duplicate of row 2"]
    assert sorted(c.phone for c in Customer.select()) == ["+447911123456", ASHA]
    asha = Customer.get(Customer.phone == ASHA)
    assert (asha.name, asha.language, asha.timezone) == ("Asha", "hi-IN", "Asia/Kolkata")
    assert asha.tags == ["vip", "diwali"] and asha.marketing_opt_in


def test_a_new_customer_without_a_time_zone_gets_the_one_its_number_pins_down(app):
    import_text("phone\n+919812345678\n")
    assert Customer.get().timezone == "Asia/Kolkata"  # phonenumbers' "Asia/Calcutta", renamed


def test_consent_columns_write_ledger_entries_with_the_file_row_as_evidence(app):
    report = import_text(
        "phone,marketing_consent,opted_out\n+919812345678,yes,\n,,\n+919876543210,,yes\n"
    )
    events = {(e.customer.phone, e.category, e.action): e for e in ConsentEvent.select()}
    assert set(events) == {(ASHA, "marketing", "opt_in"), (RAVI, "all", "opt_out")}
    assert {e.source for e in events.values()} == {"csv_import"}
    assert events[(RAVI, "all", "opt_out")].evidence == {
        "file_row": 4,
        "import_id": report.import_id,
    }
    assert Customer.get(Customer.phone == RAVI).opted_out


def test_importing_the_same_file_again_updates_without_duplicates_or_new_consent(app):
    first = import_text(MIXED)
    events = ConsentEvent.select().count()
    second = import_text(MIXED.replace("Tom", "Thomas"))
    assert (second.created, second.updated, second.unchanged) == (0, 1, 1)  # Tom; Asha
    assert Customer.select().count() == 2 and ConsentEvent.select().count() == events
    assert Customer.get(Customer.phone == "+447911123456").name == "Thomas"
    assert first.import_id != second.import_id


def test_an_empty_cell_leaves_the_field_as_it_is(app):
    import_text("phone,name,language,tags\n+919812345678,Asha,hi,vip\n")
    import_text("phone,name,language,tags\n+919812345678,,,\n")
    asha = Customer.get()
    assert (asha.name, asha.language, asha.tags) == ("Asha", "hi", ["vip"])


def test_opting_out_by_import_suppresses_what_is_still_queued(app):
    message = queued_message()
    import_text("phone,opted_out\n+919812345678,yes\n")
    message = Message.get_by_id(message.id)
    assert (message.state, message.reason) == (State.SUPPRESSED, Reason.OPTED_OUT)


def test_an_import_cannot_lift_a_customers_own_stop_and_the_row_changes_nothing(app):
    asha = Customer.create(phone=ASHA, name="Asha")
    consent.record_opt_out(asha, consent.ALL, "keyword", {"text": "STOP"}, NOW)
    consent.record_opt_in(asha, consent.MARKETING, "shopify", {}, NOW)
    consent.record_opt_out(asha, consent.MARKETING, "button", {}, NOW)
    report = import_text("phone,name,opted_out,marketing_consent\n+919812345678,Asha K,no,yes\n")
    assert report.imported == 0
    assert set(report.rejected[0].errors) == {"opted_out", "marketing_consent"}
    assert "keyword" in report.rejected[0].errors["opted_out"][0]
    asha = Customer.get()
    assert (asha.name, asha.opted_out, asha.marketing_opt_in) == ("Asha", True, False)
    assert ConsentEvent.select().count() == 3


def test_a_number_another_request_adds_during_the_import_is_rejected_and_left_alone(
    app, monkeypatch
):
    checked = customers_csv.consent_conflicts

    def customer_stops_meanwhile(row, customer):
        conflicts = checked(row, customer)  # checked against no customer: none
        asha = Customer.create(phone=ASHA, name="Asha")  # their STOP, between read and write
        consent.record_opt_out(asha, consent.ALL, "keyword", {"text": "STOP"}, NOW)
        return conflicts

    monkeypatch.setattr(customers_csv, "consent_conflicts", customer_stops_meanwhile)
    report = import_text("phone,name,opted_out\n+919812345678,Asha K,no\n")
    assert (report.created, report.updated) == (0, 0)
    assert report.rejected[0].errors == {
        "phone": ["changed during the import; import this row again"]
    }
    asha = Customer.get()
    assert (asha.name, asha.opted_out) == ("Asha", True)
    assert ConsentEvent.select().count() == 1


def test_an_import_may_lift_an_opt_out_an_import_recorded(app):
    import_text("phone,opted_out\n+919812345678,yes\n")
    report = import_text("phone,opted_out,marketing_consent\n+919812345678,no,yes\n")
    assert report.updated == 1 and not report.rejected
    asha = Customer.get()
    assert not asha.opted_out and asha.marketing_opt_in
    assert [e.action for e in ConsentEvent.select().order_by(ConsentEvent.id)] == [
        "opt_out",
        "opt_in",
        "opt_in",
    ]


def test_a_crash_part_way_leaves_whole_rows_and_a_second_run_finishes(app, monkeypatch):
    real = consent.record_opt_in

    def fail_for_ravi(customer, *args):
        if customer.phone == RAVI:
            raise RuntimeError("boom")
        return real(customer, *args)

    monkeypatch.setattr(customers_csv, "WRITE_BATCH", 1)
    monkeypatch.setattr(consent, "record_opt_in", fail_for_ravi)
    text = "phone,marketing_consent\n+919812345678,yes\n+919876543210,yes\n"
    with pytest.raises(RuntimeError):
        import_text(text)
    assert [(c.phone, c.marketing_opt_in) for c in Customer.select()] == [(ASHA, True)]
    assert ConsentEvent.select().count() == 1

    monkeypatch.setattr(consent, "record_opt_in", real)
    report = import_text(text)
    assert (report.created, report.updated, report.unchanged) == (1, 0, 1)
    assert ConsentEvent.select().count() == 2


def test_a_dry_run_reports_the_same_and_writes_nothing(app):
    Customer.create(phone="+447911123456", name="Tom")
    report = import_text(MIXED, dry_run=True)
    assert report.dry_run and (report.created, report.updated) == (1, 1)
    assert len(report.rejected) == 6
    assert Customer.select().count() == 1
    assert not ConsentEvent.select().exists() and not AuditLog.select().exists()


def test_one_audit_row_with_counts_and_no_phone_numbers(app):
    report = import_text(MIXED)
    entry = AuditLog.get()
    assert (entry.actor, entry.action, entry.subject) == (
        "admin",
        "import_customers",
        report.import_id,
    )
    assert entry.details == {
        "rows": 8,
        "imported": 2,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "rejected": 6,
    }
    assert "9812" not in str(entry.details)


def test_the_report_masks_numbers_and_lists_rejected_rows_in_file_order(app):
    body = import_text(MIXED).as_json()
    assert [r["row"] for r in body["rejected"]] == [4, 5, 6, 7, 8, 9]
    assert body["rejected"][0] == {
        "row": 4,
        "phone": "invalid: …45",
        "errors": {"phone": ["not a valid phone number"]},
    }
    assert body["rejected"][4]["phone"] == "+91********78"
    assert body["rejected"][5]["phone"] is None


# --- exporting -----------------------------------------------------------------------


def exported(tag=None, opted_out=None) -> list[dict]:
    return list(csv.DictReader(io.StringIO("".join(export_customers(tag, opted_out)))))


def test_export_writes_the_import_columns_and_what_only_dakiya_knows(app):
    import_text("phone,name,tags,opted_out\n+919812345678,Asha,vip;diwali,yes\n")
    (asha,) = exported()
    assert list(asha) == list(customers_csv.EXPORT_COLUMNS)
    assert asha["phone"] == ASHA and asha["tags"] == "vip;diwali" and asha["country"] == "IN"
    assert (asha["opted_out"], asha["marketing_opt_in"]) == ("yes", "no")
    assert asha["created_at"] == "2026-11-25T06:00:00Z"


def test_export_filters_by_tag_exactly_and_by_opt_out(app):
    import_text(
        "phone,tags,opted_out\n+919812345678,vip,yes\n+919876543210,VIP;vip2,no\n"
        "+447911123456,vip;x,no\n"
    )
    assert [r["phone"] for r in exported(tag="vip")] == [ASHA, "+447911123456"]
    assert [r["phone"] for r in exported(opted_out=False)] == [RAVI, "+447911123456"]
    assert [r["phone"] for r in exported(tag="vip", opted_out=False)] == ["+447911123456"]


def test_export_reads_the_customers_a_batch_at_a_time(app, monkeypatch):
    monkeypatch.setattr(customers_csv, "EXPORT_BATCH", 2)
    import_text(
        "phone\n+919812345678\n+919876543210\n+447911123456\n+919812300001\n+919812300002\n"
    )
    chunks = list(export_customers(None, None))
    assert len(chunks) == 1 + 3  # the header, then batches of 2, 2 and 1
    assert "".join(chunks).count("\n") == 6


def test_text_a_spreadsheet_would_run_as_a_formula_is_quoted_and_comes_back_intact(app):
    import_text('phone,name,tags\n+919812345678,=HYPERLINK("x"),-vip;@home\n')
    (asha,) = exported()
    assert asha["name"] == '\'=HYPERLINK("x")' and asha["tags"] == "'-vip;'@home"
    import_text("".join(export_customers(None, None)))
    customer = Customer.get()
    assert (customer.name, customer.tags) == ('=HYPERLINK("x")', ["-vip", "@home"])


def test_an_export_imports_back_unchanged(app):
    import_text(MIXED)
    import_text("phone,opted_out\n+447911123456,yes\n")
    before = [
        (c.phone, c.name, c.language, c.timezone, c.tags, c.opted_out, c.marketing_opt_in)
        for c in Customer.select().order_by(Customer.id)
    ]
    events = ConsentEvent.select().count()
    report = import_text("".join(export_customers(None, None)))
    assert (report.unchanged, report.updated, report.created, report.rejected) == (2, 0, 0, [])
    after = [
        (c.phone, c.name, c.language, c.timezone, c.tags, c.opted_out, c.marketing_opt_in)
        for c in Customer.select().order_by(Customer.id)
    ]
    assert after == before and ConsentEvent.select().count() == events


@pytest.mark.parametrize("tag", ["v_p", "50%", 'say "hi"', "back\\slash", "टैग"])
def test_export_tag_filter_takes_tags_with_like_wildcards_and_quotes_literally(app, tag):
    Customer.create(phone=ASHA, tags=[tag])
    Customer.create(phone=RAVI, tags=["vip", "500", "say hi"])
    assert [r["phone"] for r in exported(tag=tag)] == [ASHA]


def test_a_bulk_upsert_is_checked_by_the_import_rules_and_audited(app):
    items = [
        {"phone": "+919812345678", "name": "Asha", "tags": ["vip", "diwali"], "language": None},
        {"phone": "12"},
    ]
    report = customers_csv.upsert_customers(items, "IN", "crm", utcnow(), salt="")

    assert (report.created, report.updated) == (1, 0)
    assert [(row.row, list(row.errors)) for row in report.rejected] == [(1, ["phone"])]
    customer = Customer.get()
    assert (customer.name, customer.tags, customer.language) == ("Asha", ["vip", "diwali"], None)
    [entry] = AuditLog.select()
    assert (entry.action, entry.actor, entry.details["rejected"]) == ("upsert_customers", "crm", 1)
